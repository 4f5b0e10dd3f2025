"""The drift measures against an independent computation, and the status rules."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from batch.deployments import DriftThresholds
from batch.monitoring.baseline import Baseline, CategoricalProfile, numeric_profile
from batch.monitoring.drift import (
    Merged,
    Window,
    drift_document,
    js_distance,
    psi,
    tail_signal,
)
from batch.monitoring.stats import _count

RNG = np.random.default_rng(7)


def _reference_psi(p_counts: np.ndarray, q_counts: np.ndarray, eps: float = 1e-4) -> float:
    """The contract's formula, written out independently of the implementation."""
    p = np.clip(p_counts / p_counts.sum(), eps, None)
    q = np.clip(q_counts / q_counts.sum(), eps, None)
    return float(sum((qi - pi) * np.log(qi / pi) for pi, qi in zip(p, q, strict=True)))


@pytest.mark.parametrize("trial", range(25))
def test_psi_and_js_match_numpy_and_scipy(trial: int) -> None:
    k = int(RNG.integers(2, 60))
    p = RNG.integers(0, 5_000, k).astype(np.int64)
    q = RNG.integers(0, 5_000, k).astype(np.int64)
    if trial % 5 == 0:
        q[RNG.integers(0, k)] = 0  # an empty bucket: the clamp matters
        p[RNG.integers(0, k)] = 0
    p[0] += 1
    q[0] += 1
    value = psi(p.tolist(), q.tolist())
    assert value == pytest.approx(_reference_psi(p, q), abs=1e-12)
    expected_js = jensenshannon(p / p.sum(), q / q.sum(), base=2)
    assert js_distance(p.tolist(), q.tolist()) == pytest.approx(expected_js, abs=1e-12)
    assert psi(p.tolist(), p.tolist()) == 0.0 and js_distance(p.tolist(), p.tolist()) == 0.0


def test_psi_and_js_of_nothing_are_none() -> None:
    assert psi([0, 0], [1, 2]) is None and js_distance([1, 2], [0, 0]) is None


def test_the_tail_signal_sees_a_shift_that_deciles_barely_do() -> None:
    train = RNG.normal(0, 1, 200_000)
    profile = numeric_profile("x", train)
    same = _count(profile, RNG.normal(0, 1, 100_000))
    shifted_values = RNG.normal(0, 1, 100_000)
    shifted_values[:20_000] *= 3  # 20% of rows x3: heavier tails, same deciles nearly
    shifted = _count(profile, shifted_values)
    psi_shift = psi(profile.counts, shifted.counts)
    assert psi_shift is not None and psi_shift < 0.15  # PSI alone would not call it drift
    w_same, _ = tail_signal(profile.sketch_edges, profile.sketch_counts, same.sketch,
                            scale=profile.std, current_low=same.low, current_high=same.high)
    w_shift, ks = tail_signal(profile.sketch_edges, profile.sketch_counts, shifted.sketch,
                              scale=profile.std, current_low=shifted.low,
                              current_high=shifted.high)
    assert w_same is not None and w_same < 0.02
    assert w_shift is not None and w_shift > 0.15 and ks is not None and ks > 0
    exact = wasserstein_distance(train, shifted_values) / float(np.std(train))
    # an estimate: the open outer buckets are taken as spread evenly out to the extremes
    assert w_shift == pytest.approx(exact, rel=0.25)


def _baseline(importance: dict[str, float]) -> Baseline:
    features = (numeric_profile("big", RNG.normal(0, 1, 20_000)),
                numeric_profile("small", RNG.normal(5, 2, 20_000)),
                CategoricalProfile(name="purpose", levels=("car", "home"),
                                   seen=("car", "home", "travel"), counts=(600, 300, 100, 0, 0)))
    predictions = (numeric_profile("y_PREDICTION", RNG.uniform(0, 1, 20_000),
                                   tuple(i / 10 for i in range(1, 10))),)
    return Baseline(rows=20_000, features=features, predictions=predictions,
                    prediction_source="training", importance=importance,
                    importance_source="given", fingerprint="f" * 64)


def _current(baseline: Baseline, n: int, *, shift: dict[str, float]) -> Merged:
    columns = {}
    for profile in (*baseline.features, *baseline.predictions):
        if isinstance(profile, CategoricalProfile):
            shares = ([0.55, 0.3, 0.05, 0.07, 0.03] if "purpose" in shift else  # a new level
                      [0.6, 0.3, 0.1, 0.0, 0.0])
            values = RNG.choice(np.array(["car", "home", "travel", "yacht", None], dtype=object),
                                n, p=shares)
        elif profile.name == "y_PREDICTION":
            values = RNG.uniform(0, 1, n)
        else:
            mean = profile.mean or 0.0
            std = profile.std or 1.0  # shifts in training standard deviations
            values = RNG.normal(mean + shift.get(profile.name, 0.0) * std, std, n)
        columns[profile.name] = _count(profile, values)
    return Merged("f" * 64, columns, ("job-1",))


WINDOW = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))


@pytest.mark.parametrize(("shifted", "colour"), [
    ({}, "green"), ({"small": 1.5}, "yellow"), ({"big": 1.5}, "red")])
def test_drift_versus_importance_sets_the_deployment_status(shifted, colour) -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    doc = drift_document(baseline, _current(baseline, 20_000, shift=shifted),
                         deployment_id="credit", window=WINDOW, thresholds=DriftThresholds())
    assert doc["status"]["colour"] == colour
    by_name = {f["name"]: f for f in doc["features"]}
    for name in shifted:
        assert by_name[name]["drifted"] and by_name[name]["status"] == "red"
        assert by_name[name]["mean_difference_std"] == pytest.approx(1.5, abs=0.05)
    assert [f["name"] for f in doc["features"] if f["drifted"]] == list(shifted)


def test_new_levels_and_missing_values_are_data_quality_findings() -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    doc = drift_document(baseline, _current(baseline, 20_000, shift={"purpose": 1}),
                         deployment_id="credit", window=WINDOW, thresholds=DriftThresholds())
    purpose = next(f for f in doc["features"] if f["name"] == "purpose")
    assert purpose["new_level_share"] == pytest.approx(0.07, abs=0.01)
    findings = {(q["feature"], q["finding"]) for q in doc["data_quality"]}
    assert ("purpose", "levels never seen in training") in findings
    assert doc["status"]["colour"] == "yellow"  # a low-importance feature drifted


def test_a_starred_feature_counts_as_high_importance() -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    doc = drift_document(baseline, _current(baseline, 20_000, shift={"small": 1.5}),
                         deployment_id="credit", window=WINDOW,
                         thresholds=DriftThresholds(starred=("small",)))
    assert doc["status"]["colour"] == "red" and doc["status"]["features"] == ["small"]


def test_an_empty_or_thin_window_is_grey() -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    empty = drift_document(baseline, None, deployment_id="credit", window=WINDOW,
                           thresholds=DriftThresholds())
    assert empty["status"]["colour"] == "grey" and empty["rows"] == 0
    assert {f["status"] for f in empty["features"]} == {"grey"}
    thin = drift_document(baseline, _current(baseline, 300, shift={"big": 3.0}),
                          deployment_id="credit", window=WINDOW, thresholds=DriftThresholds())
    assert thin["status"]["colour"] == "grey" and thin["status"]["value"] == 300


def test_against_the_window_before() -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    before = _current(baseline, 20_000, shift={"big": 1.5})
    now = _current(baseline, 20_000, shift={"big": 1.5})
    doc = drift_document(baseline, now, deployment_id="credit", window=WINDOW,
                         thresholds=DriftThresholds(), previous=before, against="previous")
    assert doc["status"]["colour"] == "green"  # drifted from training, not since yesterday
    none_before = drift_document(baseline, now, deployment_id="credit", window=WINDOW,
                                 thresholds=DriftThresholds(), previous=None,
                                 against="previous")
    assert none_before["status"]["colour"] == "grey"


def test_an_all_missing_column_is_a_data_quality_finding() -> None:
    baseline = _baseline({"big": 1.0, "small": 0.1, "purpose": 0.2})
    current = _current(baseline, 5_000, shift={})
    current.columns["small"] = _count(baseline.features[1], np.full(5_000, np.nan))
    doc = drift_document(baseline, current, deployment_id="credit", window=WINDOW,
                         thresholds=DriftThresholds())
    findings = {(q["feature"], q["finding"]) for q in doc["data_quality"]}
    assert ("small", "column absent or all missing") in findings
    small = next(f for f in doc["features"] if f["name"] == "small")
    assert small["mean"] is None and small["missing_share"] == 1.0


def test_constant_and_empty_training_columns_give_a_document_without_nan() -> None:
    import json

    constant = numeric_profile("constant", np.full(5_000, 3.0))
    empty = numeric_profile("empty", np.full(5_000, np.nan))
    assert constant.edges == (3.0,) and empty.edges == () and empty.min is None
    baseline = Baseline(rows=5_000, features=(constant, empty), predictions=(),
                        prediction_source="training", importance={"constant": 1.0, "empty": 0.0},
                        importance_source="given", fingerprint="c" * 64)
    values = np.concatenate([np.full(900, 3.0), [np.inf, -np.inf, np.nan, 2.0, 4.0] * 20])
    current = Merged("c" * 64, {"constant": _count(constant, values),
                                "empty": _count(empty, values)}, ("j",))
    doc = drift_document(baseline, current, deployment_id="d", window=WINDOW,
                         thresholds=DriftThresholds())
    json.dumps(doc, allow_nan=False)  # no NaN or infinity anywhere
    by_name = {f["name"]: f for f in doc["features"]}
    stats = current.columns["constant"]
    assert stats.missing == 60 and stats.out_low == 20 and stats.out_high == 20
    assert by_name["constant"]["mean_difference_std"] is None  # std 0: no such figure
    assert by_name["empty"]["missing_share"] == pytest.approx(0.06)
    assert by_name["empty"]["tail"] == {"wasserstein_std": None, "ks": None}
