"""Requests publish monitoring records: counted off the request path, flushed on SIGTERM,
and the same counts a batch job of the same rows gives."""

from __future__ import annotations

import io
import json
from pathlib import Path

import batchpred_cli
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from server_harness import Credit, start_server, stop
from sklearn.metrics import log_loss

from batch.cli.sample_data import TARGET, credit_table
from batch.models import open_package
from batch.models.cache import process_cache
from batch.monitoring.baseline import read_baseline
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


def _watched(pkg: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The credit package with a baseline, deployed as "watched": (package, home)."""
    home = tmp_path / "home"
    assert batchpred_cli.invoke("deploy", "create", "watched", "--model", str(pkg),
                                home=home).returncode == 0
    return pkg, home


def test_requests_are_recorded_and_flushed_when_the_server_stops(
        credit: Credit, watched_credit: Path, tmp_path: Path) -> None:
    pkg, home = _watched(watched_credit, tmp_path)
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

    drift = batchpred_cli.invoke("drift", "watched", "--format", "json", home=home)
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["rows"] == 300
    only_batch = batchpred_cli.invoke("drift", "watched", "--source", "batch", "--format", "json",
                                      home=home)
    assert json.loads(only_batch.stdout)["rows"] == 0  # every record came from requests
    only_rt = batchpred_cli.invoke("drift", "watched", "--source", "realtime", "--format", "json",
                                   home=home)
    assert json.loads(only_rt.stdout)["window"]["source"] == "realtime"
    health = batchpred_cli.invoke("health", "watched", "--format", "json", home=home)
    assert health.returncode == 0, health.stderr
    realtime = json.loads(health.stdout)["sources"]["realtime"]
    assert realtime["requests"] == 4 and realtime["rows"] == 300
    assert realtime["user_error_rate"] == pytest.approx(1 / 4)

    # the deployment tracks accuracy (its package names loan_id): every row is logged
    # under its id, and actuals uploaded later join them as they join a job's
    logged = store.read("watched", "predictions").table.sort_by("row")
    assert set(logged.column("source").to_pylist()) == {"realtime"}
    sent = credit.table.slice(0, 300)
    assert logged.column("association_id").to_pylist() == [
        str(v) for v in sent.column("loan_id").to_pylist()]
    assert logged.column("row").to_pylist() == list(range(300))
    scored = score_batch(sent.to_batches()[0], open_package(pkg),
                         process_cache().get(open_package(pkg)), ScoringOptions())
    expected = scored.column(f"{TARGET}_yes_PREDICTION").to_pylist()
    assert logged.column("prediction").to_pylist() == pytest.approx(expected, abs=1e-12)
    truth = credit_table(300, seed=8)  # the rows the fixture serves, with their outcome
    actuals = tmp_path / "actuals.csv"
    pcsv.write_csv(truth.select(["loan_id", TARGET]), actuals)
    upload = batchpred_cli.invoke("actuals", "upload", "watched", "--input", str(actuals),
                                  "--association-id-column", "loan_id", "--actual-column",
                                  TARGET, home=home)
    assert upload.returncode == 0, upload.stderr
    accuracy = batchpred_cli.invoke("accuracy", "watched", "--format", "json", home=home)
    doc = json.loads(accuracy.stdout)
    assert doc["matched"] == 300
    y = [v == "yes" for v in truth.column(TARGET).to_pylist()]
    (model,) = doc["models"].values()
    assert model["metrics"]["logloss"] == pytest.approx(log_loss(y, expected), abs=1e-9)


def test_requests_are_segmented_by_consumer(credit: Credit, watched_credit: Path,
                                            tmp_path: Path) -> None:
    _, home = _watched(watched_credit, tmp_path)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - token: loan-app-0123456789abcdef\n    consumer: loan-app\n"
                      "  - token: back-office-0123456789ab\n    consumer: back-office\n")
    server = start_server(home, "--tokens", str(tokens), "--flush-seconds", "600",
                          ready=lambda r: r.status_code == 200)
    sent = {"loan-app": (0, 120), "back-office": (120, 30)}
    try:
        with server.client() as client:
            for token, (start, rows) in zip(("loan-app-0123456789abcdef",
                                             "back-office-0123456789ab"), sent.values(),
                                            strict=True):
                for part in range(2):
                    answer = client.post(
                        "/deployments/watched/predictions",
                        content=_csv(credit.table.slice(start + part * rows // 2, rows // 2)),
                        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
                    assert answer.status_code == 200, answer.text
            bad = client.post("/deployments/watched/predictions", content=b"{",
                              headers={"Content-Type": "application/json",
                                       "Authorization": "Bearer back-office-0123456789ab"})
            assert bad.status_code == 400
    finally:
        stop(server)
    stats = MonitoringStore(str(home / "monitoring")).read("watched", "stats").table
    assert set(stats.column("consumer").to_pylist()) == {"loan-app", "back-office"}
    assert set(stats.column("remote_address").to_pylist()) == {"127.0.0.1"}
    for consumer, (_, rows) in sent.items():
        drift = batchpred_cli.invoke("drift", "watched", "--consumer", consumer, "--format",
                                     "json", home=home)
        assert drift.returncode == 0, drift.stderr
        doc = json.loads(drift.stdout)
        assert doc["rows"] == rows and doc["window"]["consumer"] == consumer
    health = batchpred_cli.invoke("health", "watched", "--format", "json", home=home)
    consumers = json.loads(health.stdout)["consumers"]
    assert {name: (f["requests"], f["rows"]) for name, f in consumers.items()} == {
        "loan-app": (2, 120), "back-office": (3, 30)}
    assert consumers["back-office"]["user_error_rate"] == pytest.approx(1 / 3)
    table = batchpred_cli.invoke("health", "watched", home=home)
    assert "requests per consumer:" in table.stdout and "back-office" in table.stdout


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
