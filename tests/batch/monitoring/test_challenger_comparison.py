"""The challenger comparison on records laid out over hours: agreement, the difference,
accuracy on the same rows (scikit-learn's), the paired difference with its 95% interval
(scipy's t), latency, the recommendation by the contract's rule, and the comparison's
colour (grey: nothing to judge; yellow: a challenger to promote; green: the champion
holds)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.metrics import log_loss, roc_auc_score

from batch.deployments import DeploymentRegistry
from batch.models import open_package
from batch.monitoring.challengers import (
    ChallengersRequest,
    challengers_status,
    run_challengers,
)
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
    """A deployment of the logistic package with challenger c1, a store with HOURS
    one-chunk jobs of the champion and c1 (which knows more), and every actual; returns
    what a test needs to check the document independently."""
    registry = DeploymentRegistry(tmp_path / "home")
    deployment = registry.create("cmp", logistic_package.package)
    rival = tmp_path / "rival"  # the same model, another digest: a package it takes
    shutil.copytree(logistic_package.path, rival)
    (rival / "NOTES.txt").write_text("the challenger of the comparison tests\n")
    digest = registry.add_challenger("cmp", open_package(rival)).package_digest
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
        challenger = Producer("cmp", digest, job, role="challenger")
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

    # counted a share of the ids at a time (spilled by hash of the id), the same figures
    import batch.monitoring.by_id as by_id

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(by_id, "ROWS_PER_SHARE", ROWS // 3)
        (shared,) = run_challengers(request, registry)["challengers"]
    spread = {k: shared["difference"].pop(k) for k in ("mean", "mean_abs", "rms")}
    for key, value in spread.items():  # float means of the same values, in another order
        assert value == pytest.approx(c["difference"].pop(key), abs=1e-12)
    assert shared == c


def test_a_slow_challenger_is_not_promoted(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, request, *_ = world
    store = MonitoringStore(request.store)
    at = START + timedelta(minutes=5)
    slow = ChunkFacts(1, ROWS, 0, 9.0, at, None, score_seconds=9.0)
    digest = registry.get("cmp").challengers[0].package_digest
    store.publish("cmp", "late", {"health": health_table(
        Producer("cmp", digest, "late", role="challenger"), [slow] * 3)})
    doc = run_challengers(request, registry)
    (c,) = doc["challengers"]
    assert c["latency_ratio"] > 1.5
    assert c["recommendation"]["action"] == "keep"
    assert "latency" in c["recommendation"]["why"]
    # better, but too slow: the champion holds
    assert c["paired"]["low"] > 0
    assert doc["status"]["colour"] == "green"
    assert doc["status"]["rule"].startswith("the champion holds")
    assert doc["status"]["challenger"] == "c1" and doc["status"]["promote"] == []


def test_a_better_challenger_turns_the_comparison_yellow(world) -> None:  # type: ignore[no-untyped-def]
    registry, request, truth, champ, chal = world
    doc = run_challengers(request, registry)
    status = doc["status"]
    d = np.array([roc_auc_score(t, q) - roc_auc_score(t, p)
                  for t, p, q in zip(truth, champ, chal, strict=True)])
    assert status["colour"] == "yellow"
    assert status["challenger"] == "c1" and status["promote"] == ["c1"]
    assert status["metric"] == "auc" and status["threshold"] == 0
    assert status["value"] == pytest.approx(d.mean(), abs=0.005)
    assert "'c1' is better on AUC" in status["rule"] and "1.30x" in status["rule"]
    assert doc["challengers"][0]["recommendation"]["action"] == "promote"  # as before


def test_the_comparison_is_grey_with_nothing_to_judge(world) -> None:  # type: ignore[no-untyped-def]
    registry, request, *_ = world
    store = MonitoringStore(request.store)
    later = START + timedelta(hours=HOURS + 2)
    fact = ChunkFacts(0, ROWS, 0, 1.0, later, None, score_seconds=1.0)
    ids = [f"new-{i}" for i in range(ROWS)]  # no actuals for these yet
    p = np.linspace(0.05, 0.95, ROWS)
    digest = registry.get("cmp").challengers[0].package_digest
    store.publish("cmp", "fresh", {"predictions": pa.concat_tables([
        predictions_table(Producer("cmp", registry.get("cmp").package_digest, "fresh"),
                          [fact], [_log(ids, p)]),
        predictions_table(Producer("cmp", digest, "fresh", role="challenger"), [fact],
                          [_log(ids, p[::-1].copy())])])})
    since, until = later - timedelta(minutes=40), later + timedelta(hours=1)
    doc = run_challengers(ChallengersRequest("cmp", since=since, until=until,
                                             store=request.store), registry)
    (c,) = doc["challengers"]
    assert c["rows"] == ROWS and c["matched"] == 0 and c["paired"]["buckets"] == 0
    assert doc["status"]["colour"] == "grey" and doc["status"]["value"] is None
    assert "no challenger has an hour with 30+ matched actuals" in doc["status"]["rule"]
    empty = run_challengers(ChallengersRequest("cmp", since=START - timedelta(days=3),
                                               until=START - timedelta(days=2),
                                               store=request.store), registry)
    assert empty["challengers"] == [] and empty["status"]["colour"] == "grey"
    # a removed challenger still compares, but cannot be promoted: no colour from it
    registry.remove_challenger("cmp", "c1")
    gone = run_challengers(request, registry)
    assert gone["challengers"][0]["recommendation"]["action"] == "promote"
    assert gone["status"]["colour"] == "grey" and "add-challenger" in gone["status"]["rule"]


def _entry(name: str, action: str, mean: float, buckets: int = 6,
           ratio: float | None = 1.0) -> dict[str, Any]:
    return {"id": name, "paired": {"metric": "rmse", "buckets": buckets, "mean": mean,
                                   "low": mean - 0.01, "high": mean + 0.01},
            "recommendation": {"action": action, "why": "..."}, "latency_ratio": ratio}


def test_the_colour_names_the_best_challenger_to_promote() -> None:
    slow = _entry("slow", "keep", 0.9, ratio=2.0)  # the best, but too slow
    picked = challengers_status([_entry("a", "promote", 0.02), slow,
                                 _entry("b", "promote", 0.05, ratio=None),
                                 _entry("worse", "keep", -0.3)], "rmse")
    assert picked["colour"] == "yellow" and picked["challenger"] == "b"
    assert picked["value"] == 0.05 and picked["promote"] == ["a", "b"]
    assert "'b' is better on RMSE" in picked["rule"] and "also 'a'" in picked["rule"]
    assert "latency unknown" in picked["rule"]
    held = challengers_status([slow, _entry("w", "wait", 0.001, buckets=1)], "rmse")
    assert held["colour"] == "green" and held["challenger"] == "slow"
    assert challengers_status([_entry("n", "wait", 0.0, buckets=0)], "rmse")["colour"] == "grey"
    none = challengers_status([], "rmse", configured=False)
    assert none["colour"] == "grey" and "add-challenger" in none["rule"]
