"""Accuracy accumulators: every metric against scikit-learn, merged exactly whatever the
chunking; the estimate before actuals against the realised metrics; status rules."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from batch.errors import ConfigError
from batch.models.kinds import TargetType
from batch.monitoring.accuracy import (
    BinaryAccumulator,
    MulticlassAccumulator,
    RegressionAccumulator,
    accumulator_from_json,
)
from batch.monitoring.estimate import Calibration, EstimateAccumulator
from batch.monitoring.metrics import METRICS, PRIMARY_METRIC, accuracy_status

SEEDS = (0, 1, 2)
EXACT = 1e-9  # metrics from sums and the confusion matrix
AUC_TOLERANCE = 0.005  # the monitoring contract
BINNED_TOLERANCE = 0.01  # KS and Rate@Top from the 100-bin histogram
CLASSES = ("ant", "bee", "cat", "dog")


def _log_loss(y: np.ndarray, proba: np.ndarray, **kwargs: Any) -> float:
    """scikit-learn's log loss (its second argument was renamed in 1.9)."""
    if "y_proba" in inspect.signature(skm.log_loss).parameters:
        return float(skm.log_loss(y, y_proba=proba, **kwargs))
    return float(skm.log_loss(y, proba, **kwargs))


def _regression_rows(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Skewed actuals with zeros and negatives (outside MAPE's and the deviances' domains)."""
    rng = np.random.default_rng(seed)
    y = rng.lognormal(3, 1, n)
    y[rng.random(n) < 0.05] = 0.0
    y[rng.random(n) < 0.03] *= -1
    return y, y * rng.lognormal(0, 0.3, n) + rng.normal(0, 5, n)


def _binary_rows(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn as Bernoulli(p): a well-calibrated model."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(1.5 * rng.normal(size=n) - 1.0)))
    return (rng.random(n) < p).astype(np.int64), p


def _multiclass_rows(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = np.exp(1.5 * rng.normal(size=(n, len(CLASSES))))
    probs = weights / weights.sum(axis=1, keepdims=True)
    y = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return y, probs


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_equal_scikit_learn(seed: int) -> None:
    y, f = _regression_rows(seed)
    acc = RegressionAccumulator.count(y, f)
    got = acc.metrics()
    nonzero, gamma, poisson = y != 0, (y > 0) & (f > 0), (y >= 0) & (f > 0)
    want = {
        "rmse": skm.root_mean_squared_error(y, f), "mae": skm.mean_absolute_error(y, f),
        "r2": skm.r2_score(y, f), "mean_error": float(np.mean(f - y)),
        "mape": skm.mean_absolute_percentage_error(y[nonzero], f[nonzero]),
        "gamma_deviance": skm.mean_gamma_deviance(y[gamma], f[gamma]),
        "poisson_deviance": skm.mean_poisson_deviance(y[poisson], f[poisson]),
    }
    assert got == pytest.approx(want, rel=EXACT, abs=EXACT)
    assert (acc.mape_excluded, acc.gamma_excluded, acc.poisson_excluded) == (
        int((~nonzero).sum()), int((~gamma).sum()), int((~poisson).sum()))
    assert acc.gamma_excluded > 0 and acc.n == y.size


def test_r2_has_no_cancellation_on_a_large_mean() -> None:
    """Actuals of 1e8 +- 1: a float sum of squares would lose all of the variance."""
    rng = np.random.default_rng(5)
    y = 1e8 + rng.normal(0, 1, 10_000)
    f = y + rng.normal(0, 0.5, y.size)
    assert RegressionAccumulator.count(y, f).metrics()["r2"] == pytest.approx(
        skm.r2_score(y, f), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_equal_scikit_learn(seed: int) -> None:
    y, p = _binary_rows(seed)
    threshold = 0.35
    acc = BinaryAccumulator.count(y, p, threshold=threshold)
    got = acc.metrics()
    predicted = (p > threshold).astype(np.int64)  # scoring's rule: positive when p > t
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    assert (acc.tp, acc.fp, acc.fn, acc.tn) == (tp, fp, fn, tn)
    exact = {
        "logloss": _log_loss(y, p), "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "tpr": skm.recall_score(y, predicted), "fpr": fp / (fp + tn),
        "ppv": skm.precision_score(y, predicted), "f1": skm.f1_score(y, predicted),
        "mcc": skm.matthews_corrcoef(y, predicted),
    }
    assert {k: got[k] for k in exact} == pytest.approx(exact, rel=EXACT, abs=EXACT)
    auc = skm.roc_auc_score(y, p)
    assert got["auc"] == pytest.approx(auc, abs=AUC_TOLERANCE)
    assert got["gini"] == pytest.approx(2 * auc - 1, abs=2 * AUC_TOLERANCE)
    assert got["ks"] == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic,
                                      abs=BINNED_TOLERANCE)
    order = np.argsort(-p, kind="stable")
    for key, share in (("rate_top5", 0.05), ("rate_top10", 0.10)):
        top = y[order[:round(share * y.size)]].mean()
        assert got[key] == pytest.approx(top, abs=BINNED_TOLERANCE), key


def test_a_score_at_the_threshold_is_negative_as_scoring_labels_it() -> None:
    acc = BinaryAccumulator.count(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.5000001]),
                                  threshold=0.5)
    assert (acc.tp, acc.fp, acc.fn, acc.tn) == (1, 0, 1, 1)


def test_the_top_rate_interpolates_within_the_bin_where_the_top_ends() -> None:
    """4 positives in [0.99, 1], 10 rows (5 positive) in [0.98, 0.99), 86 negatives low:
    the top 10 rows take 4 + 6/10 of the next bin's 5 positives."""
    p = np.concatenate([np.full(4, 0.995), np.full(10, 0.985), np.full(86, 0.1)])
    y = np.concatenate([np.ones(4), np.arange(10) % 2, np.zeros(86)])
    got = BinaryAccumulator.count(y, p, threshold=0.5).metrics()
    assert got["rate_top10"] == pytest.approx((4 + 0.6 * 5) / 10, rel=1e-12)
    assert got["rate_top5"] == pytest.approx((4 + 0.1 * 5) / 5, rel=1e-12)


def test_ks_sees_a_model_that_ranks_backwards() -> None:
    y, p = _binary_rows(4)
    backwards = BinaryAccumulator.count(y, 1 - p, threshold=0.5).metrics()
    assert backwards["ks"] == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic,
                                            abs=BINNED_TOLERANCE)
    assert backwards["auc"] == pytest.approx(1 - skm.roc_auc_score(y, p), abs=AUC_TOLERANCE)


def test_binned_auc_stays_within_half_the_tie_share_on_coarse_scores() -> None:
    """Scores crowded into a few bins: the AUC error is what the histogram says it is."""
    rng = np.random.default_rng(7)
    p = rng.uniform(0.40, 0.43, 30_000)  # three bins
    y = (rng.random(p.size) < (p - 0.40) * 20 + 0.1).astype(int)  # strong signal in-bin
    acc = BinaryAccumulator.count(y, p, threshold=0.5)
    auc, share = acc.metrics()["auc"], acc.auc_tie_share()
    assert auc is not None and share is not None
    error = abs(auc - skm.roc_auc_score(y, p))
    assert error > AUC_TOLERANCE  # such scores are beyond the contract's 0.005 ...
    assert error <= share / 2  # ... but not beyond the stated bound


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_equal_scikit_learn(seed: int) -> None:
    y, probs = _multiclass_rows(seed)
    acc = MulticlassAccumulator.count(y, probs, classes=CLASSES)
    predicted = probs.argmax(axis=1)
    labels = list(range(len(CLASSES)))
    assert acc.metrics() == pytest.approx({
        "logloss": _log_loss(y, probs, labels=labels),
        "accuracy": skm.accuracy_score(y, predicted),
        "macro_f1": skm.f1_score(y, predicted, average="macro")}, rel=EXACT, abs=EXACT)
    per_class = skm.f1_score(y, predicted, average=None, labels=labels)
    assert acc.class_f1() == pytest.approx(dict(zip(CLASSES, per_class, strict=True)),
                                           rel=EXACT, abs=EXACT)
    assert acc.confusion == tuple(map(tuple, skm.confusion_matrix(y, predicted).tolist()))


def test_rows_without_an_actual_or_a_prediction_are_skipped() -> None:
    y, p = _binary_rows(3, 2_000)
    actual = y.astype(np.float64)
    actual[::10] = np.nan
    probability = p.copy()
    probability[5::10] = np.nan
    keep = ~np.isnan(actual) & ~np.isnan(probability)
    acc = BinaryAccumulator.count(actual, probability, threshold=0.5)
    assert acc.skipped == 400 and acc.n == 1_600
    assert acc.metrics()["logloss"] == pytest.approx(_log_loss(y[keep], p[keep]), rel=EXACT)
    regression = RegressionAccumulator.count(actual, probability)
    assert (regression.skipped, regression.n) == (400, 1_600)
    y3, probs = _multiclass_rows(3, 1_000)
    codes = y3.copy()
    codes[:7] = -1  # a label the model does not know
    assert MulticlassAccumulator.count(codes, probs, classes=CLASSES).skipped == 7


def test_the_log_loss_clips_probabilities_at_1e_15() -> None:
    acc = BinaryAccumulator.count(np.array([1, 0, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0]),
                                  threshold=0.5)
    assert acc.metrics()["logloss"] == pytest.approx(-math.log(1e-15) / 2, rel=1e-12)


# -- merging -------------------------------------------------------------------------------

def _counters() -> dict[str, Callable[[slice], Any]]:
    yr, f = _regression_rows(11)
    yb, p = _binary_rows(11)
    ym, probs = _multiclass_rows(11)
    calibration = Calibration.fit(p[:5_000], yb[:5_000])
    return {
        "regression": lambda s: RegressionAccumulator.count(yr[s], f[s]),
        "binary": lambda s: BinaryAccumulator.count(yb[s], p[s], threshold=0.3),
        "multiclass": lambda s: MulticlassAccumulator.count(ym[s], probs[s], classes=CLASSES),
        "estimate": lambda s: EstimateAccumulator.count(p[s], calibration=calibration,
                                                        threshold=0.3),
    }


COUNTERS = _counters()


@pytest.mark.parametrize("pieces", [1, 7, 100])
@pytest.mark.parametrize("kind", sorted(COUNTERS))
def test_any_split_merged_in_any_order_gives_identical_metrics(kind: str, pieces: int) -> None:
    count = COUNTERS[kind]
    whole = count(slice(None))
    rng = np.random.default_rng(pieces)
    cuts = [0, *sorted(rng.choice(np.arange(1, 20_000), pieces - 1, replace=False)), 20_000]
    parts = [count(slice(a, b)) for a, b in zip(cuts, cuts[1:], strict=False)]
    rng.shuffle(parts)  # type: ignore[arg-type]
    merged: Any = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged == whole
    assert merged.metrics() == whole.metrics()  # bit-identical, None included
    assert all(v is not None for v in whole.metrics().values())


def test_merging_refuses_other_thresholds_and_classes() -> None:
    y, p = _binary_rows(0, 100)
    with pytest.raises(ConfigError, match="threshold 0.4"):
        BinaryAccumulator.count(y, p, threshold=0.5).merge(BinaryAccumulator(0.4))
    with pytest.raises(ConfigError, match="threshold"):
        EstimateAccumulator(0.5).merge(EstimateAccumulator(0.4))
    with pytest.raises(ConfigError, match="classes"):
        MulticlassAccumulator.empty(CLASSES).merge(MulticlassAccumulator.empty(CLASSES[:3]))


# -- undefined metrics, JSON ---------------------------------------------------------------

def test_metrics_undefined_for_the_rows_are_none() -> None:
    empties: list[Any] = [RegressionAccumulator(), BinaryAccumulator(0.5),
               MulticlassAccumulator.empty(CLASSES), EstimateAccumulator(0.5)]
    for empty in empties:
        assert set(empty.metrics().values()) == {None}, type(empty).__name__
    one_class = BinaryAccumulator.count(np.ones(50), np.linspace(0, 1, 50), threshold=0.5)
    undefined = {k for k, v in one_class.metrics().items() if v is None}
    assert undefined == {"auc", "gini", "ks", "balanced_accuracy", "fpr", "mcc"}
    nothing_flagged = BinaryAccumulator.count(np.array([0, 1]), np.array([0.1, 0.2]),
                                              threshold=0.5).metrics()
    assert nothing_flagged["ppv"] is None and nothing_flagged["f1"] == 0.0
    constant = RegressionAccumulator.count(np.full(10, 3.0), np.arange(10.0)).metrics()
    assert constant["r2"] is None and constant["rmse"] is not None
    zeros = RegressionAccumulator.count(np.zeros(5), -np.ones(5)).metrics()
    assert zeros["mape"] is None and zeros["gamma_deviance"] is None
    assert zeros["poisson_deviance"] is None
    y, probs = _multiclass_rows(0, 500)
    probs[:, 3] = 0.0  # "dog" is never predicted, and never the actual
    f1 = MulticlassAccumulator.count(np.minimum(y, 2), probs, classes=CLASSES).class_f1()
    assert f1["dog"] is None and all(f1[c] is not None for c in CLASSES[:3])
    for values in (one_class.metrics(), constant, zeros):
        assert not any(isinstance(v, float) and math.isnan(v) for v in values.values())


@pytest.mark.parametrize("kind", sorted(COUNTERS))
def test_json_round_trips_through_text(kind: str) -> None:
    acc = COUNTERS[kind](slice(0, 3_000))
    text = json.dumps(acc.to_json(), allow_nan=False)
    back = type(acc).from_json(json.loads(text))
    assert back == acc and back.metrics() == acc.metrics()
    if kind != "estimate":
        assert accumulator_from_json(json.loads(text)) == acc


def test_json_that_is_no_accumulator_is_refused() -> None:
    with pytest.raises(ConfigError, match="target"):
        accumulator_from_json({"target": "ranking"})
    good = BinaryAccumulator(0.5).to_json()
    with pytest.raises(ConfigError, match="100 bins"):
        BinaryAccumulator.from_json({**good, "histogram": [[0], [0]]})
    with pytest.raises(ConfigError, match="expected a regression"):
        RegressionAccumulator.from_json(good)
    with pytest.raises(ConfigError, match="x increasing"):
        Calibration.from_json({"method": "isotonic", "x": [0.5, 0.2], "y": [0.1, 0.2]})


# -- estimated performance -----------------------------------------------------------------

def _realised(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = p > threshold
    return {"accuracy": skm.accuracy_score(y, predicted), "f1": skm.f1_score(y, predicted),
            "ppv": skm.precision_score(y, predicted), "tpr": skm.recall_score(y, predicted),
            "auc": skm.roc_auc_score(y, p)}


def test_the_estimate_of_a_well_calibrated_model_lands_on_the_realised_metrics() -> None:
    y, p = _binary_rows(21, 200_000)
    estimate = EstimateAccumulator.count(p, calibration=Calibration.identity(), threshold=0.4)
    assert estimate.metrics() == pytest.approx(_realised(y, p, 0.4), abs=0.03)
    assert estimate.n == p.size


def test_isotonic_calibration_on_squared_scores_recovers_the_estimate() -> None:
    """The model says p ** 2 where the truth is p: uncalibrated, the estimate is off."""
    y, p = _binary_rows(22, 250_000)
    scores = p ** 2
    calibration = Calibration.fit(scores[:50_000], y[:50_000])
    assert calibration.method == "isotonic" and len(calibration.x) < 1_000
    grid = np.linspace(0.05, 1, 96)
    assert np.abs(calibration.apply(grid) - np.sqrt(grid)).max() < 0.05
    held, y_held = scores[50_000:], y[50_000:]
    realised = _realised(y_held, held, 0.2)
    fitted = EstimateAccumulator.count(held, calibration=calibration, threshold=0.2)
    assert fitted.metrics() == pytest.approx(realised, abs=0.03)
    raw = EstimateAccumulator.count(held, calibration=Calibration.identity(), threshold=0.2)
    raw_f1 = raw.metrics()["f1"]
    assert raw_f1 is not None and abs(raw_f1 - realised["f1"]) > 0.05  # the test can tell


def test_platt_calibration_recovers_a_sigmoid_miscalibration() -> None:
    y, p = _binary_rows(23, 50_000)
    logit = np.log(p / (1 - p))
    scores = 1 / (1 + np.exp(-(2 * logit + 0.5)))  # overconfident and shifted
    calibration = Calibration.fit(scores, y, method="platt")
    back = Calibration.from_json(json.loads(json.dumps(calibration.to_json())))
    grid = np.linspace(0.001, 0.999, 999)
    truth = 1 / (1 + np.exp(-(np.log(grid / (1 - grid)) - 0.5) / 2))
    assert np.abs(back.apply(grid) - truth).max() < 0.01


def test_calibration_needs_both_classes_and_a_known_method() -> None:
    with pytest.raises(ConfigError, match="both classes"):
        Calibration.fit(np.linspace(0, 1, 20), np.ones(20))
    with pytest.raises(ConfigError, match="unknown"):
        Calibration.fit(np.linspace(0, 1, 20), np.arange(20) % 2, method="beta")  # type: ignore[arg-type]


# -- status against the holdout ------------------------------------------------------------

@pytest.mark.parametrize(("metric", "value", "holdout", "colour"), [
    ("auc", 0.80, 0.80, "green"),
    ("auc", 0.73, 0.80, "green"),  # 8.75% worse
    ("auc", 0.72, 0.80, "yellow"),  # exactly 10% worse, as it reads
    ("auc", 0.64, 0.80, "red"),  # exactly 20%
    ("auc", 0.95, 0.80, "green"),  # better
    ("logloss", 0.55, 0.50, "yellow"),  # lower is better: 10% higher is worse
    ("logloss", 0.40, 0.50, "green"),
    ("logloss", 0.61, 0.50, "red"),
    ("rmse", 12.0, 10.0, "red"),
    ("r2", 0.30, 0.50, "red"),
    ("fpr", 0.05, 0.0, "red"),  # any worsening from a perfect holdout
    ("mae", 0.0, 0.0, "green"),
])
def test_status_is_direction_aware(metric: str, value: float, holdout: float,
                                   colour: str) -> None:
    status = accuracy_status(metric, value, holdout, 5_000)
    assert status.colour == colour, status.rule
    assert METRICS[metric].label in status.rule
    json.dumps(status.to_json(), allow_nan=False)


def test_status_is_grey_without_enough_to_judge() -> None:
    assert accuracy_status("auc", 0.5, 0.8, 99).colour == "grey"
    assert "99 matched actuals" in accuracy_status("auc", 0.5, 0.8, 99).rule
    assert accuracy_status("auc", 0.5, 0.8, 100).colour == "red"
    assert accuracy_status("auc", None, 0.8, 1_000).colour == "grey"
    assert accuracy_status("auc", 0.7, None, 1_000).colour == "grey"
    assert accuracy_status("mean_error", 3.0, 0.1, 1_000).colour == "grey"
    with pytest.raises(ConfigError, match="no metric 'aucc'"):
        accuracy_status("aucc", 0.7, 0.8, 1_000)


def test_every_reported_metric_has_a_direction_and_each_target_a_primary() -> None:
    names = {name for count in COUNTERS.values() for name in count(slice(0, 100)).metrics()}
    assert names <= set(METRICS)
    assert PRIMARY_METRIC == {TargetType.BINARY: "auc", TargetType.REGRESSION: "rmse",
                              TargetType.MULTICLASS: "logloss"}
    assert METRICS["auc"].higher_is_better and not METRICS["logloss"].higher_is_better
