"""The monitoring store on S3 (moto's server): a job publishes there, the stages read it
(the commands run in this process; their scoring workers are processes all the same)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import pyarrow.csv as pcsv
import pytest
from batchpred_cli import Batchpred

from batch.cli.sample_data import TARGET, credit_table, train_model
from batch.models.builder import PackageSpec, create_package, training_table
from batch.monitoring.baseline import build_baseline, write_baseline
from batch.monitoring.store import MonitoringStore
from connectors.storage import StorageOptions

if TYPE_CHECKING:
    from conftest import S3  # the fixture's type; several conftest modules exist


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and store."""
    return Batchpred(home, in_process=True)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("s3-monitoring")
    train = credit_table(3000, seed=5)
    pcsv.write_csv(train, root / "train.csv")
    joblib.dump(train_model(train), root / "model.joblib")
    package = create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk"))
    write_baseline(package, build_baseline(package, training_table(str(root / "train.csv"))))
    pcsv.write_csv(credit_table(8000, seed=6).drop_columns([TARGET]), root / "score.csv")
    return package.path, root / "score.csv"


def test_a_job_publishes_to_s3_and_the_drift_stage_reads_it(
        watched, s3: S3, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package, data = watched
    store = ["--monitoring-store", s3.uri("monitoring"),
             "--monitoring-store-option", f"endpoint_url={s3.endpoint}"]
    for job in ("s3-a", "s3-b"):
        result = batchpred("score", "--model", str(package), "--input", str(data), "--output",
                           str(tmp_path / f"{job}.csv"), "--chunk-rows", "1000", "--job-id",
                           job, "--quiet", *store)
        assert result.returncode == 0, result.stderr
    keys = s3.objects("monitoring/")
    stats = [k for k in keys if k.startswith("monitoring/deployment=credit-risk/kind=stats/")]
    assert len(stats) == 2 and any(k.startswith("monitoring/baselines/") for k in keys)
    read = ["--store", s3.uri("monitoring"), "--store-option", f"endpoint_url={s3.endpoint}"]
    result = batchpred("drift", "credit-risk", "--since", "2h", "--format", "json", *read)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rows"] == 16_000 and doc["jobs"] == ["s3-a", "s3-b"]
    assert doc["status"]["colour"] in ("green", "yellow", "red")

    result = batchpred("monitoring", "compact", "credit-risk", "--all-days", *read)
    assert result.returncode == 0, result.stderr
    assert sum("kind=stats" in k for k in s3.objects("monitoring/")) == 1
    again = batchpred("drift", "credit-risk", "--since", "2h", "--format", "json", *read)
    compacted = json.loads(again.stdout)
    assert compacted["features"] == doc["features"] and compacted["rows"] == 16_000


def test_a_broken_object_in_the_s3_store_is_skipped_with_a_warning(s3: S3) -> None:
    s3.put("mon/deployment=d/kind=stats/date=2026-11-20/job-x.parquet", b"PAR1 broken")
    store = MonitoringStore(s3.uri("mon"), StorageOptions(endpoint_url=s3.endpoint))
    found = store.read("d", "stats")
    assert found.table.num_rows == 0 and len(found.warnings) == 1
    assert found.warnings[0].startswith("skipped s3://bucket/mon/deployment=d/kind=stats/")


def test_a_prediction_log_streams_to_s3_whole_or_not_at_all(s3: S3) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa

    from batch.monitoring.records import ChunkFacts, Producer, prediction_rows
    from batch.scoring.prediction_log import LOG_SCHEMA

    store = MonitoringStore(s3.uri("logs"), StorageOptions(endpoint_url=s3.endpoint))
    producer = Producer("d", "e" * 64, "job-1")
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)

    def part(i: int) -> pa.Table:
        log = pa.RecordBatch.from_arrays(
            [pa.array([f"{i}-{r}" for r in range(500)]), pa.array(range(500), pa.int64()),
             pa.array([0.25] * 500), pa.array(["no"] * 500),
             pa.array([[0.75, 0.25]] * 500, pa.list_(pa.float64()))], schema=LOG_SCHEMA)
        return prediction_rows(producer, ChunkFacts(i, 500, 0, 0.1, at, None), log)

    def broken():  # type: ignore[no-untyped-def]
        yield part(0)
        raise RuntimeError("cut")

    with pytest.raises(RuntimeError):
        store.publish_parts("d", "job-1", "predictions", broken())
    assert s3.objects("logs/") == []  # the multipart upload was aborted, not completed
    store.publish_parts("d", "job-1", "predictions", (part(i) for i in range(3)))
    found = store.read("d", "predictions")
    assert found.warnings == [] and found.table.num_rows == 1_500
    assert sorted(set(found.table.column("chunk_index").to_pylist())) == [0, 1, 2]
