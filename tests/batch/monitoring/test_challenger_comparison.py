"""The challenger comparison on records laid out over hours: agreement, the difference,
accuracy on the same rows (scikit-learn's), the paired difference with its 95% interval
(scipy's t), latency, and the recommendation by the contract's rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.metrics import log_loss, roc_auc_score

from batch.deployments import DeploymentRegistry
from batch.monitoring.challengers import ChallengersRequest, run_challengers
from batch.monitoring.records import (
    ACTUALS_SCHEMA,
    ChunkFacts,
    Producer,
    health_table,
    predictions_table,
)
from batch.monitoring.store import MonitoringStore
from batch.scoring.prediction_log import LOG_SCHEMA

HOURS = 6
ROWS = 400  # per hour
START = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)


def _log(ids: list[str], p: np.ndarray) -> pa.RecordBatch:
    labels = np.where(p > 0.5, "yes", "no")
    probs = np.column_stack([1 - p, p]).reshape(-1)
    return pa.RecordBatch.from_arrays([
        pa.array(ids), pa.array(np.arange(len(ids)), pa.int64()), pa.array(p),
        pa.array(labels.tolist()),
        pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * len(ids) + 1, 2, dtype=np.int32)),
                                 pa.array(probs))], schema=LOG_SCHEMA)


@pytest.fixture
def world(tmp_path: Path, logistic_package):  # type: ignore[no-untyped-def]
    """A deployment of the logistic package, a store with HOURS one-chunk jobs of the
    champion and a challenger that knows more, and every actual; returns what a test
    needs to check the document independently."""
    registry = DeploymentRegistry(tmp_path / "home")
    deployment = registry.create("cmp", logistic_package.package)
    store = MonitoringStore(str(tmp_path / "store"))
    rng = np.random.default_rng(7)
    truth, champ, chal, hours = [], [], [], []
    for h in range(HOURS):
        y = rng.random(ROWS) < 0.4
        noise = rng.normal(size=ROWS)
        a = 1 / (1 + np.exp(-(1.0 * (2 * y - 1) + 1.2 * noise)))  # the champion: weaker
        b = 1 / (1 + np.exp(-(1.6 * (2 * y - 1) + 1.2 * noise)))  # the challenger: sharper
        ids = [f"h{h}-{i}" for i in range(ROWS)]
        at = START + timedelta(hours=h)
        job = f"job{h}"
        fact = ChunkFacts(0, ROWS, 0, 1.0, at, None, score_seconds=1.0)
        slow = ChunkFacts(0, ROWS, 0, 1.3, at, None, score_seconds=1.3)
        challenger = Producer("cmp", "c" * 64, job, role="challenger")
        champion = Producer("cmp", deployment.package_digest, job)
        store.publish("cmp", job, {
            "predictions": pa.concat_tables([
                predictions_table(champion, [fact], [_log(ids, a)]),
                predictions_table(challenger, [slow], [_log(ids, b)])]),
            "health": pa.concat_tables([health_table(champion, [fact]),
                                        health_table(challenger, [slow])])})
        truth.append(y), champ.append(a), chal.append(b), hours.append(ids)
    ids = [i for part in hours for i in part]
    y = np.concatenate(truth)
    n = len(ids)
    received = datetime(2026, 12, 1, tzinfo=UTC)
    store.publish("cmp", "up", {"actuals": pa.table({
        "schema_version": [1] * n, "deployment_id": ["cmp"] * n, "model_id": [""] * n,
        "role": [""] * n, "source": ["actuals"] * n, "job_id": ["up"] * n,
        "chunk_index": [0] * n, "ts_start": [received] * n, "ts_end": [received] * n,
        "hour": [received] * n, "consumer": [None] * n, "remote_address": [None] * n,
        "association_id": ids, "seq": list(range(n)), "actual_value": [None] * n,
        "actual_label": np.where(y, "yes", "no").tolist(), "timestamp": [None] * n,
        "was_acted_on": [None] * n}, schema=ACTUALS_SCHEMA)})
    request = ChallengersRequest("cmp", since=START - timedelta(days=1),
                                 until=START + timedelta(days=1), store=str(tmp_path / "store"))
    return registry, request, truth, champ, chal


def test_the_comparison_matches_independent_figures(world) -> None:  # type: ignore[no-untyped-def]
    registry, request, truth, champ, chal = world
    doc = run_challengers(request, registry)
    (c,) = doc["challengers"]
    y, a, b = np.concatenate(truth), np.concatenate(champ), np.concatenate(chal)
    assert c["rows"] == c["matched"] == HOURS * ROWS
    assert c["agreement"] == pytest.approx(float(np.mean((a > 0.5) == (b > 0.5))), abs=1e-12)
    assert c["difference"]["mean"] == pytest.approx(float(np.mean(b - a)), abs=1e-12)
    assert c["champion_metrics"]["logloss"] == pytest.approx(log_loss(y, a), abs=1e-9)
    assert c["challenger_metrics"]["auc"] == pytest.approx(roc_auc_score(y, b), abs=0.005)
    # the paired AUC difference per hour, and scipy's t interval over the hours
    d = np.array([roc_auc_score(t, q) - roc_auc_score(t, p)
                  for t, p, q in zip(truth, champ, chal, strict=True)])
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    paired = c["paired"]
    assert paired["buckets"] == HOURS
    assert paired["mean"] == pytest.approx(d.mean(), abs=0.005)
    assert paired["low"] == pytest.approx(low, abs=0.01)
    assert paired["high"] == pytest.approx(high, abs=0.01)
    assert paired["low"] > 0
    assert c["latency_ratio"] == pytest.approx(1.3)
    assert c["recommendation"]["action"] == "promote"


def test_a_slow_challenger_is_not_promoted(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, request, *_ = world
    store = MonitoringStore(request.store)
    at = START + timedelta(minutes=5)
    slow = ChunkFacts(1, ROWS, 0, 9.0, at, None, score_seconds=9.0)
    store.publish("cmp", "late", {"health": health_table(
        Producer("cmp", "c" * 64, "late", role="challenger"), [slow] * 3)})
    (c,) = run_challengers(request, registry)["challengers"]
    assert c["latency_ratio"] > 1.5
    assert c["recommendation"]["action"] == "keep"
    assert "latency" in c["recommendation"]["why"]
