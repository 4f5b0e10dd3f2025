"""The accuracy stage: a job's prediction log joined to actuals uploaded before and after
it, in several uploads, shuffled, with duplicates (the last received wins); every metric
equals scikit-learn on the same rows; the estimate before actuals lands near the truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from batch.cli.sample_data import TARGET, credit_table
from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.models import open_package
from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
from batch.monitoring.records import ACTUALS_SCHEMA
from batch.monitoring.store import MonitoringStore

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _upload(home: Path, upload: str, ids: list[str], labels: list[str], *,
            received: datetime) -> None:
    """Actuals records as an upload stores them."""
    n = len(ids)
    who = {"schema_version": [1] * n, "deployment_id": ["acc"] * n, "model_id": [""] * n,
           "role": [""] * n, "source": ["actuals"] * n, "job_id": [upload] * n,
           "chunk_index": [0] * n, "ts_start": [received] * n, "ts_end": [received] * n,
           "hour": [received.replace(minute=0, second=0, microsecond=0)] * n,
           "consumer": [None] * n, "remote_address": [None] * n}
    table = pa.table({**who, "association_id": ids, "seq": list(range(n)),
                      "actual_value": [None] * n, "actual_label": labels,
                      "timestamp": [None] * n, "was_acted_on": [None] * n},
                     schema=ACTUALS_SCHEMA)
    MonitoringStore(str(home / "monitoring")).publish("acc", upload, {"actuals": table})


@pytest.fixture
def truth(workload) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Each loan's actual outcome (the rows the workload scores, with their target)."""
    table = credit_table(60_000, seed=4)
    return dict(zip((str(v) for v in table.column("loan_id").to_pylist()),
                    table.column(TARGET).to_pylist(), strict=True))


def test_metrics_equal_sklearn_whenever_the_actuals_arrived(watched, workload, home, tmp_path,
                                                             truth) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("acc", open_package(watched))
    registry.update_settings("acc", registry.get("acc").settings.model_copy(
        update={"association_id": "loan_id"}))
    ids = list(truth)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    # before the job: a third of the ids, half of them with the wrong outcome
    early = [ids[i] for i in rng.permutation(len(ids))[:20_000]]
    wrong = {"yes": "no", "no": "yes"}
    _upload(home, "u1", early, [wrong[truth[i]] if k % 2 else truth[i]
                                for k, i in enumerate(early)], received=now - timedelta(hours=2))
    out = tmp_path / "out.csv"
    run_job(JobSpec(model="acc", input=str(workload.csv), output=str(out), chunk_rows=9_000,
                    passthrough=("loan_id",), job_id="acc-job"))
    # after it: the rest, shuffled, in two uploads, with the early ones corrected and some
    # ids sent twice (the later row wins)
    rest = [ids[i] for i in rng.permutation(len(ids))][:50_000]
    twice = rest[:1_000]
    _upload(home, "u2", rest[:25_000] + twice, [truth[i] for i in rest[:25_000]]
            + [wrong[truth[i]] for i in twice], received=now - timedelta(minutes=30))
    _upload(home, "u3", rest[25_000:] + early + twice,
            [truth[i] for i in rest[25_000:] + early + twice], received=now - timedelta(minutes=5))

    doc = run_accuracy(AccuracyRequest("acc", since=_EPOCH))
    scored = pcsv.read_csv(out)
    have = set(rest) | set(early)
    keep = np.array([str(v) in have for v in scored.column("loan_id").to_pylist()])
    y = np.array([truth[str(v)] == "yes" for v in scored.column("loan_id").to_pylist()])[keep]
    p = scored.column(f"{TARGET}_yes_PREDICTION").to_numpy()[keep]
    assert doc["matched"] == int(keep.sum()) and doc["predictions"] == scored.num_rows
    (model,) = doc["models"].values()
    m = model["metrics"]
    assert m["logloss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=0.005)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p > 0.5), abs=1e-9)
    assert m["f1"] == pytest.approx(f1_score(y, p > 0.5), abs=1e-9)
    # the estimate (from every prediction, actuals or not) lands near the realised figures
    assert model["estimated"]["accuracy"] == pytest.approx(m["accuracy"], abs=0.05)
    assert doc["status"]["metric"] == "auc" and doc["status"]["colour"] in {
        "green", "yellow", "red"}
    assert doc["holdout"]["auc"] is not None  # the baseline scored its training sample

    # counted a share of the ids at a time (spilled to disk by hash of the id), the same
    # document, to the last digit, also hour by hour
    import batch.monitoring.by_id as by_id

    hourly = AccuracyRequest("acc", since=_EPOCH, until=datetime.now(UTC), by="hour")
    whole = run_accuracy(hourly)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(by_id, "ROWS_PER_SHARE", 7_000)
        shared = run_accuracy(hourly)
        assert {k: v for k, v in shared.items() if k != "over_time"} == {
            k: v for k, v in whole.items() if k != "over_time"}
        assert shared["over_time"] == whole["over_time"] and len(whole["over_time"]) >= 1
        assert {k: v for k, v in whole.items() if k not in ("over_time", "window")} == {
            k: v for k, v in doc.items() if k not in ("over_time", "window")}


def test_the_accuracy_command_prints_a_table_and_json(watched, workload, home, tmp_path,
                                                      batchpred, truth) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("acc", open_package(watched))
    registry.update_settings("acc", registry.get("acc").settings.model_copy(
        update={"association_id": "loan_id"}))
    run_job(JobSpec(model="acc", input=str(workload.csv), output=str(tmp_path / "o.csv"),
                    job_id="acc-cli"))
    ids = list(truth)[:5_000]
    _upload(home, "u1", ids, [truth[i] for i in ids], received=datetime.now(UTC))
    table = batchpred("accuracy", "acc", "--since", "1d", "--by", "hour")
    assert table.returncode == 0, table.stderr
    assert "accuracy" in table.stdout.splitlines()[0] and "5,000 with actuals" in table.stdout
    doc = json.loads(batchpred("accuracy", "acc", "--format", "json").stdout)
    assert doc["matched"] == 5_000 and doc["over_time"] == []
