"""Requests publish monitoring records: counted off the request path, flushed on SIGTERM,
and the same counts a batch job of the same rows gives."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import batchpred_cli
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from server_harness import Credit, start_server, stop

from batch.models import open_package
from batch.models.builder import training_table
from batch.models.cache import process_cache
from batch.monitoring.baseline import build_baseline, read_baseline, write_baseline
from batch.monitoring.drift import merge_table
from batch.monitoring.stats import ChunkStats, count_chunk
from batch.monitoring.store import MonitoringStore
from batch.scoring.chunk import score_batch
from batch.scoring.columns import ScoringOptions
from batch.scoring.features import coerce_features


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    return sink.getvalue()


def test_requests_are_recorded_and_flushed_when_the_server_stops(
        credit: Credit, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(credit.package, pkg)
    package = open_package(pkg)
    write_baseline(package, build_baseline(package, training_table(
        str(credit.package.parent / "train.csv"))))
    home = tmp_path / "home"
    assert batchpred_cli.run("deploy", "create", "watched", "--model", str(pkg),
                             home=home).returncode == 0
    server = start_server(home, "--flush-seconds", "600",  # only the stop flushes
                          ready=lambda r: r.status_code == 200)
    try:
        with server.client() as client:
            for part in range(3):
                rows = credit.table.slice(part * 100, 100)
                answer = client.post("/deployments/watched/predictions", content=_csv(rows),
                                     headers={"Content-Type": "text/csv"})
                assert answer.status_code == 200, answer.text
            bad = client.post("/deployments/watched/predictions", content=b"not,csv\n\x00",
                              headers={"Content-Type": "application/json"})
            assert bad.status_code == 400
        store = MonitoringStore(str(home / "monitoring"))
        assert store.read("watched", "health").table.num_rows == 0  # not flushed yet
    finally:
        stop(server)  # SIGTERM: the lifespan ends and the micro-chunk goes out

    stats = store.read("watched", "stats").table
    assert set(stats.column("source").to_pylist()) == {"realtime"}
    (merged,) = merge_table(stats).values()
    published = ChunkStats(merged.fingerprint, merged.rows, tuple(merged.columns.values()))
    assert published == _counted_as_a_job(pkg, credit.table.slice(0, 300))
    records = store.read("watched", "health").table.to_pylist()
    assert sum(h["requests"] for h in records) == 4 and sum(h["rows_in"] for h in records) == 300
    assert sum(h["user_errors"] for h in records) == 1
    assert sum(sum(h["latency_counts"]) for h in records) == 4

    drift = batchpred_cli.run("drift", "watched", "--format", "json", home=home)
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["rows"] == 300
    only_batch = batchpred_cli.run("drift", "watched", "--source", "batch", "--format", "json",
                                   home=home)
    assert json.loads(only_batch.stdout)["rows"] == 0  # every record came from requests
    only_rt = batchpred_cli.run("drift", "watched", "--source", "realtime", "--format", "json",
                                home=home)
    assert json.loads(only_rt.stdout)["window"]["source"] == "realtime"
    health = batchpred_cli.run("health", "watched", "--format", "json", home=home)
    assert health.returncode == 0, health.stderr
    realtime = json.loads(health.stdout)["sources"]["realtime"]
    assert realtime["requests"] == 4 and realtime["rows"] == 300
    assert realtime["user_error_rate"] == pytest.approx(1 / 4)


def _counted_as_a_job(package_path: Path, table: pa.Table) -> ChunkStats:
    package = open_package(package_path)
    baseline = read_baseline(package)
    assert baseline is not None
    batch = table.combine_chunks().to_batches()[0]
    features = coerce_features(batch, package.manifest)
    scored = score_batch(batch, package, process_cache().get(package), ScoringOptions(),
                         features=features)
    return count_chunk(baseline, features.columns, scored, codes=features.codes)


@pytest.mark.parametrize("flag", ["--no-monitoring"])
def test_no_monitoring_publishes_nothing(credit: Credit, tmp_path: Path, flag: str) -> None:
    home = tmp_path / "home"
    server = start_server(home, "--model", str(credit.package), flag,
                          ready=lambda r: r.status_code == 200)
    try:
        with server.client() as client:
            answer = client.post("/predictions", content=_csv(credit.table.slice(0, 10)),
                                 headers={"Content-Type": "text/csv"})
            assert answer.status_code == 200
    finally:
        stop(server)
    assert not (home / "monitoring").exists()
