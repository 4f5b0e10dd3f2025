"""Scoring workers limit native thread pools to their share of the cores."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.models.builder import PackageSpec, create_package
from batch.models.manifest import TargetType

CUSTOM = '''
import pandas as pd
from threadpoolctl import threadpool_info


def load_model(path):
    return None


def score(frame, model, **kwargs):
    # the threads this process's native pools (BLAS, OpenMP) actually use
    used = max((p["num_threads"] for p in threadpool_info()), default=0)
    return pd.DataFrame({"Predictions": [float(used)] * len(frame)})
'''


def test_workers_run_with_one_thread_each_on_two_cores(home, tmp_path: Path,
                                                      started_workers) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "custom.py").write_text(CUSTOM)
    pcsv.write_csv(pa.table({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]}), tmp_path / "t.csv")
    package = create_package(tmp_path / "pkg", PackageSpec(
        artifact=hooks, training_data=str(tmp_path / "t.csv"), target="y",
        target_type=TargetType.REGRESSION))
    pcsv.write_csv(pa.table({"x": [float(i) for i in range(4000)]}), tmp_path / "in.csv")
    workers = 2
    job = JobSpec(model=str(package.path), input=str(tmp_path / "in.csv"),
                  output=str(tmp_path / "out.csv"), chunk_rows=500, workers=workers,
                  preflight_rows=0, job_id="threads")
    report = run_job(job, workers=started_workers(job))
    assert len(report.model_loads) == 2  # this process and one worker process
    share = max(1, (os.cpu_count() or 1) // workers)
    values = set(pcsv.read_csv(tmp_path / "out.csv").column("y_PREDICTION").to_pylist())
    assert values == {float(share)}, values
