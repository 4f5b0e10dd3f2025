"""Monitoring in a job: each chunk counted where it is scored, each input row exactly once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobStore
from batch.models import open_package
from batch.models.cache import process_cache
from batch.monitoring.baseline import build_baseline, read_baseline, write_baseline
from batch.monitoring.stats import ChunkStats, count_chunk
from batch.scoring.chunk import score_batch
from batch.scoring.columns import ScoringOptions
from batch.scoring.features import coerce_features


@pytest.fixture(scope="module")
def watched(workload, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The workload's package with a baseline from its training data."""
    path = tmp_path_factory.mktemp("watched") / "pkg"
    shutil.copytree(workload.package, path)
    training = pcsv.read_csv(workload.package.parent / "train.csv")
    write_baseline(open_package(path), build_baseline(open_package(path), training))
    return path


def _whole(package_path: Path, table: pa.Table) -> ChunkStats:
    """The input counted in one piece, outside any job: the reference."""
    package = open_package(package_path)
    baseline = read_baseline(package)
    assert baseline is not None
    batch = table.combine_chunks().to_batches()[0]
    scored = score_batch(batch, package, process_cache().get(package), ScoringOptions())
    return count_chunk(baseline, coerce_features(batch, package.manifest).columns, scored)


def _job(watched: Path, workload, out: Path, job_id: str, **kw: object) -> JobSpec:  # type: ignore[no-untyped-def]
    kw.setdefault("monitoring", True)
    return JobSpec(model=str(watched), input=str(workload.csv), output=str(out),
                   passthrough=("loan_id",), job_id=job_id, **kw)


@pytest.mark.parametrize("shape", [{"chunk_rows": 60_000, "workers": 0},
                                   {"chunk_rows": 1_700, "workers": 0},
                                   {"chunk_size": "64KB", "workers": 2}],
                         ids=["one-chunk", "36-chunks", "byte-ranges-on-2-workers"])
def test_merged_counts_are_the_same_however_the_job_is_cut(watched, workload, home, tmp_path,
                                                           shape) -> None:  # type: ignore[no-untyped-def]
    report = run_job(_job(watched, workload, tmp_path / "out.csv", "cut-1", **shape))
    assert report.monitoring.startswith("on (baseline ")
    assert JobStore().stats("cut-1") == _whole(watched, workload.table)
    if shape.get("chunk_rows") == 1_700:
        assert report.chunks == 36  # 60,000 rows in chunks of 1,700


def test_a_resumed_job_counts_every_row_once(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = _job(watched, workload, tmp_path / "out.csv", "half-1", chunk_rows=2_000, workers=0)
    first = run_job(spec, until_chunk=11)
    assert first.status == "running" and len(JobStore().chunks("half-1")) == 11
    run_job(spec.model_copy(update={"resume": True}))
    assert JobStore().stats("half-1") == _whole(watched, workload.table)


def test_monitoring_off_says_why(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bare = run_job(JobSpec(model=str(workload.package), input=str(workload.csv),
                           output=str(tmp_path / "a.csv"), job_id="bare-1", workers=0,
                           monitoring=True))
    assert bare.monitoring.startswith("off: the package has no baseline (add one with "
                                      "`batchpred baseline ")
    off = run_job(JobSpec(model=str(watched), input=str(workload.csv),
                          output=str(tmp_path / "b.csv"), job_id="off-1", workers=0))
    assert off.monitoring == "off: not asked for (--monitoring)"  # the default, for now
    assert JobStore().stats("bare-1") is None and JobStore().stats("off-1") is None
