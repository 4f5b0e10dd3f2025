"""Monitoring in a job: each chunk counted where it is scored, each input row exactly once,
and the records published to the monitoring store give the same drift however the job ran
(the job killed with ``kill -9`` is the installed script's process; its resume runs here)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from batchpred_cli import Batchpred

from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobStore
from batch.models import open_package
from batch.models.cache import process_cache
from batch.monitoring.baseline import read_baseline
from batch.monitoring.drift import merge_table
from batch.monitoring.stage import DriftRequest, run_drift
from batch.monitoring.stats import ChunkStats, count_chunk
from batch.monitoring.store import MonitoringStore
from batch.scoring.chunk import score_batch
from batch.scoring.columns import ScoringOptions
from batch.scoring.features import coerce_features


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


def _published(home: Path, job_id: str | None = None) -> ChunkStats:
    """The job's records as the store has them, merged."""
    table = MonitoringStore(str(home / "monitoring")).read("hooked", "stats",
                                                           job_id=job_id).table
    merged = merge_table(table)
    assert len(merged) == 1
    (only,) = merged.values()
    return ChunkStats(only.fingerprint, only.rows, tuple(only.columns.values()))


def _drift(home: Path, job_id: str) -> dict[str, Any]:
    """The drift document of one job, less what names the job and the window."""
    doc = run_drift(DriftRequest("hooked", since=_EPOCH, job_id=job_id))
    for key in ("window", "jobs"):
        doc.pop(key)
    return doc


_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

SHAPES = [{"chunk_rows": 60_000, "workers": 0}, {"chunk_rows": 1_700, "workers": 0},
          {"chunk_size": "64KB", "workers": 2},
          {"chunk_size": "64KB", "workers": 2, "executor": "dask"}]


@pytest.mark.parametrize("shape", SHAPES, ids=["one-chunk", "36-chunks",
                                               "byte-ranges-on-2-workers", "dask-local-cluster"])
def test_merged_counts_are_the_same_however_the_job_is_cut(watched, workload, home, tmp_path,
                                                           shape) -> None:  # type: ignore[no-untyped-def]
    report = run_job(_job(watched, workload, tmp_path / "out.csv", "cut-1", **shape))
    assert report.monitoring.startswith("on (baseline ")
    whole = _whole(watched, workload.table)
    assert JobStore().stats("cut-1") == whole
    assert _published(home) == whole  # the records in the store: the same counts
    if shape.get("chunk_rows") == 1_700:
        assert report.chunks == 36  # 60,000 rows in chunks of 1,700
    assert len(report.monitoring_records) == 2  # stats and health, one file each


def test_the_drift_document_is_bit_identical_however_the_job_is_cut(
        watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    docs = []
    for i, shape in enumerate(SHAPES):
        run_job(_job(watched, workload, tmp_path / f"out{i}.csv", f"shape-{i}", **shape))
        docs.append(_drift(home, f"shape-{i}"))
    assert all(doc == docs[0] for doc in docs[1:])
    assert docs[0]["rows"] == 60_000 and docs[0]["features"][0]["mean"] is not None


def test_a_resumed_job_counts_every_row_once(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = _job(watched, workload, tmp_path / "out.csv", "half-1", chunk_rows=2_000, workers=0)
    first = run_job(spec, until_chunk=11)
    assert first.status == "running" and len(JobStore().chunks("half-1")) == 11
    assert not (home / "monitoring").exists()  # records go out with the output, not before
    run_job(spec.model_copy(update={"resume": True}))
    assert JobStore().stats("half-1") == _whole(watched, workload.table)
    assert _published(home) == _whole(watched, workload.table)


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """Commands in this process; ``batchpred.start`` still starts the installed script."""
    return Batchpred(home, in_process=True)


def _manifest_lines(home: Path, job: str) -> int:
    path = home / "jobs" / job / "manifest.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_minus_nine_then_resume_publishes_each_row_once(
        watched, workload, home, batchpred, tmp_path) -> None:  # type: ignore[no-untyped-def]
    args = ["score", "--model", str(watched), "--input", str(workload.csv), "--output",
            str(tmp_path / "out.csv"), "--chunk-rows", "1000", "--workers", "2", "--job-id",
            "k", "--quiet"]
    for point in (10, 35):
        proc = batchpred.start(*args, *(["--resume"] if point > 10 else []),
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _manifest_lines(home, "k") < point and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    result = batchpred(*args, "--resume")
    assert result.returncode == 0, result.stderr
    again = batchpred(*args, "--resume")  # finished: publishes nothing twice
    assert again.returncode == 0
    assert _published(home) == _whole(watched, workload.table)
    files = list((home / "monitoring").rglob("*.parquet"))
    assert len(files) == 2, files  # one stats and one health file for the job


def test_monitoring_off_says_why(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bare = run_job(JobSpec(model=str(workload.package), input=str(workload.csv),
                           output=str(tmp_path / "a.csv"), job_id="bare-1", workers=0,
                           monitoring=True))
    assert bare.monitoring.startswith("off: the package has no baseline (add one with "
                                      "`batchpred baseline ")
    off = run_job(JobSpec(model=str(watched), input=str(workload.csv),
                          output=str(tmp_path / "b.csv"), job_id="off-1", workers=0,
                          monitoring=False))
    assert off.monitoring == "off: --no-monitoring"
    assert JobStore().stats("bare-1") is None and JobStore().stats("off-1") is None
    store = MonitoringStore(str(home / "monitoring"))
    assert store.read("hooked", "stats").table.num_rows == 0  # no baseline: no stats
    assert store.read("hooked", "health").table.num_rows > 0  # but its health, yes
    assert off.monitoring_records == []
