"""The same job on a real Dask ``LocalCluster``: identical output, one model load per worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.errors import ConfigError


def _spec(workload, out: Path, **kw) -> JobSpec:  # type: ignore[no-untyped-def]
    return JobSpec(model=str(workload.package), input=str(workload.csv), output=str(out),
                   passthrough=("loan_id",), chunk_size="400KB", **kw)


def test_local_cluster_matches_local_run(workload, home, tmp_path: Path) -> None:
    local = run_job(_spec(workload, tmp_path / "local.csv", workers=2, job_id="local"))
    dask = run_job(_spec(workload, tmp_path / "dask.csv", workers=2, executor="dask",
                         job_id="dask"))
    assert dask.chunks == local.chunks > 4
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(dask.model_loads) == 2 and set(dask.model_loads.values()) == {1}


def test_unreachable_scheduler_is_a_clear_error(workload, home, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot reach the scheduler"):
        run_job(_spec(workload, tmp_path / "o.csv", executor="dask",
                      dask_address="tcp://127.0.0.1:9", job_id="nowhere"))
    assert not (tmp_path / "o.csv").exists()
