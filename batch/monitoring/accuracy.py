"""Accuracy against actuals: mergeable accumulators per target type, and their metrics.

An accumulator counts some rows (predictions joined to their actuals);
``a.merge(b)`` counts both. Counts are integers and every float sum is exact
(:mod:`~batch.monitoring.exactsum`: per-row terms summed with no rounding), so
any split of the same rows, merged in any order, gives an equal accumulator and
bit-identical metrics. ``to_json`` / :func:`accumulator_from_json` keep one in
a record or a manifest (exact sums as text). Rows whose actual or prediction is
missing are left out and counted in ``skipped``.

The metrics (the monitoring contract; each equals scikit-learn on the same rows):

- Regression, error ``e = prediction - actual``: RMSE, MAE, R2 (from exact sums
  of ``y`` and of ``y ** 2``, each square split into its rounded value and its
  rounding error, so no cancellation), the mean error (bias: positive when the
  model predicts high), MAPE as a fraction over the rows with ``actual != 0``
  (scikit-learn divides by machine epsilon there), and the mean Gamma deviance
  (rows with actual > 0 and prediction > 0) and mean Poisson deviance (actual >= 0,
  prediction > 0). The rows outside each one's domain are reported
  (``mape_excluded``, ``gamma_excluded``, ``poisson_excluded``).
- Binary (``actual`` 1 for the positive class; predicted positive when
  ``p > threshold``, as scoring labels rows): LogLoss with the probability of
  the actual class (``p`` or ``1 - p``) clipped to ``[1e-15, 1 - 1e-15]``
  (scikit-learn clips at machine epsilon: only scores within 1e-15 of 0 or 1
  differ), and from the exact confusion matrix accuracy,
  balanced accuracy, TPR, FPR, PPV, F1 and MCC; from the 2 x 100 score
  histogram (:mod:`~batch.monitoring.histogram`, which states the bounds) AUC,
  Gini ``2 * AUC - 1``, KS and the positive rate among the top 5% and 10%.
- Multiclass (``actual`` the class's index, predicted class the arg-max):
  LogLoss, accuracy, F1 per class and macro F1 (over the classes that occur as
  actual or predicted, like ``f1_score(average="macro")``).

A metric the rows leave undefined (anything of no rows, AUC of one class, R2 of
a constant actual, PPV with nothing predicted positive, ...) is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import ConfigError
from batch.models.manifest import Target, TargetType
from batch.monitoring import histogram
from batch.monitoring.exactsum import decode, encode, exact_sum

CLIP = 1e-15  # the actual class's probability clipped to [CLIP, 1 - CLIP] for the log loss
LARGEST = 1e150  # beyond it a square overflows: such a row is skipped
_UNIT = Fraction(1, 1 << 1074)  # an exact sum's unit
_SPLIT = 134217729.0  # 2 ** 27 + 1, Veltkamp's splitter of a float64
_A = TypeVar("_A")


@dataclass(frozen=True, slots=True)
class RegressionAccumulator:
    """Sums over the rows of a regression target; the ``sum_*`` fields are exact sums
    in units of ``2 ** -1074``. ``RegressionAccumulator()`` has no rows."""

    n: int = 0
    skipped: int = 0
    sum_error: int = 0
    sum_abs_error: int = 0
    sum_sq_error: int = 0
    sum_actual: int = 0
    sum_sq_actual: int = 0
    mape_rows: int = 0  # rows with actual != 0
    sum_ape: int = 0
    gamma_rows: int = 0  # rows with actual > 0 and prediction > 0 (and a finite deviance)
    sum_gamma: int = 0  # of the unit Gamma deviances
    poisson_rows: int = 0  # rows with actual >= 0 and prediction > 0 (and finite)
    sum_poisson: int = 0

    @classmethod
    def count(cls, actual: np.ndarray, predicted: np.ndarray) -> RegressionAccumulator:
        """Count one chunk: the actuals and the predictions of the same rows.

        A row is skipped when either is NaN, infinite or beyond ``1e150`` in size.
        """
        y = np.asarray(actual, dtype=np.float64)
        f = np.asarray(predicted, dtype=np.float64)
        valid = (np.abs(y) <= LARGEST) & (np.abs(f) <= LARGEST)  # False for NaN
        y, f = y[valid], f[valid]
        e = f - y
        nonzero = y != 0
        ape = np.abs(e[nonzero]) / np.maximum(np.abs(y[nonzero]), np.finfo(np.float64).eps)
        gamma, poisson = _deviances(y, f)
        return cls(
            n=int(y.size), skipped=int(valid.size - y.size), sum_error=exact_sum(e),
            sum_abs_error=exact_sum(np.abs(e)), sum_sq_error=_square_sum(e),
            sum_actual=exact_sum(y), sum_sq_actual=_square_sum(y),
            mape_rows=int(ape.size), sum_ape=exact_sum(ape),
            gamma_rows=int(gamma.size), sum_gamma=exact_sum(gamma),
            poisson_rows=int(poisson.size), sum_poisson=exact_sum(poisson))

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        return RegressionAccumulator(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                        for f in fields(self)})

    @property
    def mape_excluded(self) -> int:
        return self.n - self.mape_rows

    @property
    def gamma_excluded(self) -> int:
        return self.n - self.gamma_rows

    @property
    def poisson_excluded(self) -> int:
        return self.n - self.poisson_rows

    def metrics(self) -> dict[str, float | None]:
        """``rmse``, ``mae``, ``r2``, ``mean_error``, ``mape``, ``gamma_deviance``,
        ``poisson_deviance``."""
        n = self.n
        ss_tot = (_UNIT * self.sum_sq_actual - (_UNIT * self.sum_actual) ** 2 / n if n else 0)
        mse = _mean(self.sum_sq_error, n)
        return {
            "rmse": None if mse is None else mse ** 0.5,
            "mae": _mean(self.sum_abs_error, n),
            "r2": float(1 - _UNIT * self.sum_sq_error / ss_tot) if ss_tot else None,
            "mean_error": _mean(self.sum_error, n),
            "mape": _mean(self.sum_ape, self.mape_rows),
            "gamma_deviance": _mean(self.sum_gamma, self.gamma_rows),
            "poisson_deviance": _mean(self.sum_poisson, self.poisson_rows),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form: the counts as numbers, the exact sums as text."""
        return {"target": "regression", **{
            f.name: encode(v) if f.name.startswith("sum_") else v
            for f in fields(self) for v in [getattr(self, f.name)]}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegressionAccumulator:
        """What :meth:`to_json` wrote.

        Raises:
            ConfigError: ``data`` is no regression accumulator.
        """
        return _parsed("regression", data, lambda: cls(**{
            f.name: decode(data[f.name]) if f.name.startswith("sum_") else int(data[f.name])
            for f in fields(cls)}))


@dataclass(frozen=True, slots=True)
class BinaryAccumulator:
    """The rows of a binary target at one threshold: the exact log-loss sum, the score
    histogram of each class and the confusion matrix. ``BinaryAccumulator(t)`` has no
    rows."""

    threshold: float
    skipped: int = 0
    sum_logloss: int = 0  # exact, in units of 2 ** -1074
    negatives: tuple[int, ...] = (0,) * histogram.BINS  # per score bin, lowest first
    positives: tuple[int, ...] = (0,) * histogram.BINS
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def count(cls, actual: np.ndarray, probability: np.ndarray, *,
              threshold: float) -> BinaryAccumulator:
        """Count one chunk: ``actual`` 1 (or True) for the positive class and 0 for the
        negative, ``probability`` the positive-class probability of the same rows.

        A row is skipped when its actual is anything else (NaN, -1) or its
        probability is NaN.
        """
        y = np.asarray(actual)
        p = np.asarray(probability, dtype=np.float64)
        valid = ((y == 0) | (y == 1)) & ~np.isnan(p)
        positive, p = y[valid] == 1, p[valid]
        loss = -np.log(np.clip(np.where(positive, p, 1 - p), CLIP, 1 - CLIP))
        hist = np.bincount(histogram.score_bins(p) + histogram.BINS * positive,
                           minlength=2 * histogram.BINS).tolist()
        flagged = p > threshold
        tp = int(np.count_nonzero(flagged & positive))
        fp = int(np.count_nonzero(flagged)) - tp
        fn = int(np.count_nonzero(positive)) - tp
        return cls(threshold=float(threshold), skipped=int(valid.size - p.size),
                   sum_logloss=exact_sum(loss), negatives=tuple(hist[:histogram.BINS]),
                   positives=tuple(hist[histogram.BINS:]), tp=tp, fp=fp, fn=fn,
                   tn=int(p.size) - tp - fp - fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def merge(self, other: BinaryAccumulator) -> BinaryAccumulator:
        """Both together.

        Raises:
            ConfigError: the two were counted at different thresholds.
        """
        _check_same("threshold", self.threshold, other.threshold)
        return replace(
            self, skipped=self.skipped + other.skipped,
            sum_logloss=self.sum_logloss + other.sum_logloss,
            negatives=_add(self.negatives, other.negatives),
            positives=_add(self.positives, other.positives), tp=self.tp + other.tp,
            fp=self.fp + other.fp, fn=self.fn + other.fn, tn=self.tn + other.tn)

    def metrics(self) -> dict[str, float | None]:
        """``logloss``, ``auc``, ``gini``, ``ks``, ``rate_top5``, ``rate_top10``,
        ``accuracy``, ``balanced_accuracy``, ``tpr``, ``fpr``, ``ppv``, ``f1``, ``mcc``."""
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        pos, neg, n = tp + fn, fp + tn, self.n
        tpr, fpr = _ratio(tp, pos), _ratio(fp, neg)
        auc = histogram.auc(self.positives, self.negatives)
        counts = _add(self.positives, self.negatives)
        margins = (tp + fp) * pos * neg * (tn + fn)
        return {
            "logloss": _mean(self.sum_logloss, n),
            "auc": auc,
            "gini": None if auc is None else 2 * auc - 1,
            "ks": histogram.ks(self.positives, self.negatives),
            "rate_top5": histogram.top_rate(self.positives, counts, 0.05),
            "rate_top10": histogram.top_rate(self.positives, counts, 0.10),
            "accuracy": _ratio(tp + tn, n),
            "balanced_accuracy": (None if tpr is None or fpr is None
                                  else float(Fraction(tp, pos) + Fraction(tn, neg)) / 2),
            "tpr": tpr,
            "fpr": fpr,
            "ppv": _ratio(tp, tp + fp),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "mcc": (tp * tn - fp * fn) / margins ** 0.5 if margins else None,
        }

    def auc_tie_share(self) -> float | None:
        """The share of positive-negative pairs in one score bin: the binned AUC is within
        half of it of the exact AUC."""
        return histogram.tie_share(self.positives, self.negatives)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form: the counts as numbers, the exact log-loss sum as text."""
        return {"target": "binary", "threshold": self.threshold, "skipped": self.skipped,
                "sum_logloss": encode(self.sum_logloss),
                "histogram": [list(self.negatives), list(self.positives)],
                "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BinaryAccumulator:
        """What :meth:`to_json` wrote.

        Raises:
            ConfigError: ``data`` is no binary accumulator.
        """
        return _parsed("binary", data, lambda: cls(
            threshold=float(data["threshold"]), skipped=int(data["skipped"]),
            sum_logloss=decode(data["sum_logloss"]),
            negatives=_bins(data["histogram"][0]), positives=_bins(data["histogram"][1]),
            **{k: int(data["confusion"][k]) for k in ("tp", "fp", "fn", "tn")}))


@dataclass(frozen=True, slots=True)
class MulticlassAccumulator:
    """The rows of a multiclass target: the exact log-loss sum and the confusion matrix
    (``confusion[actual][predicted]``, classes in the model's probability order)."""

    classes: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    skipped: int = 0
    sum_logloss: int = 0  # exact, in units of 2 ** -1074

    @classmethod
    def empty(cls, classes: Sequence[str]) -> MulticlassAccumulator:
        """No rows yet."""
        return cls(tuple(classes), tuple((0,) * len(classes) for _ in classes))

    @classmethod
    def count(cls, actual: np.ndarray, probabilities: np.ndarray, *,
              classes: Sequence[str]) -> MulticlassAccumulator:
        """Count one chunk: ``actual`` each row's class as its index in ``classes``,
        ``probabilities`` one row of class probabilities per row, in that order.

        A row is skipped when its actual is no such index (NaN, -1) or a probability
        is NaN.
        """
        k = len(classes)
        a = np.asarray(actual)
        probs = np.asarray(probabilities, dtype=np.float64).reshape(a.size, k)
        valid = (a >= 0) & (a < k) & ~np.isnan(probs).any(axis=1)
        y, probs = a[valid].astype(np.int64), probs[valid]
        picked = np.clip(probs[np.arange(y.size), y], CLIP, 1 - CLIP)
        predicted = np.argmax(probs, axis=1) if y.size else y
        confusion = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
        return cls(tuple(classes), tuple(tuple(row) for row in confusion.tolist()),
                   skipped=int(valid.size - y.size), sum_logloss=exact_sum(-np.log(picked)))

    @property
    def n(self) -> int:
        return sum(map(sum, self.confusion))

    def merge(self, other: MulticlassAccumulator) -> MulticlassAccumulator:
        """Both together.

        Raises:
            ConfigError: the two were counted on different classes.
        """
        _check_same("classes", self.classes, other.classes)
        return MulticlassAccumulator(
            self.classes, tuple(_add(a, b) for a, b in zip(self.confusion, other.confusion,
                                                            strict=True)),
            self.skipped + other.skipped, self.sum_logloss + other.sum_logloss)

    def class_f1(self) -> dict[str, float | None]:
        """Each class's F1, None for a class neither actual nor predicted in any row."""
        return {name: _ratio(2 * self.confusion[i][i],
                             sum(self.confusion[i]) + sum(row[i] for row in self.confusion))
                for i, name in enumerate(self.classes)}

    def metrics(self) -> dict[str, float | None]:
        """``logloss``, ``accuracy``, ``macro_f1``."""
        n = self.n
        f1 = [v for v in self.class_f1().values() if v is not None]
        return {"logloss": _mean(self.sum_logloss, n),
                "accuracy": _ratio(sum(self.confusion[i][i] for i in range(len(self.classes))),
                                   n),
                "macro_f1": sum(f1) / len(f1) if f1 else None}

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form: the counts as numbers, the exact log-loss sum as text."""
        return {"target": "multiclass", "classes": list(self.classes),
                "confusion": [list(row) for row in self.confusion], "skipped": self.skipped,
                "sum_logloss": encode(self.sum_logloss)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MulticlassAccumulator:
        """What :meth:`to_json` wrote.

        Raises:
            ConfigError: ``data`` is no multiclass accumulator.
        """
        def build() -> MulticlassAccumulator:
            classes = tuple(str(c) for c in data["classes"])
            confusion = tuple(tuple(int(c) for c in row) for row in data["confusion"])
            if len(confusion) != len(classes) or any(len(r) != len(classes) for r in confusion):
                raise ValueError(f"a {len(classes)} x {len(classes)} confusion matrix expected")
            return cls(classes, confusion, int(data["skipped"]), decode(data["sum_logloss"]))

        return _parsed("multiclass", data, build)


Accumulator = RegressionAccumulator | BinaryAccumulator | MulticlassAccumulator


def accumulator_from_json(data: Mapping[str, Any]) -> Accumulator:
    """The accumulator a ``to_json`` wrote, of the kind its ``target`` names.

    Raises:
        ConfigError: ``data`` is none of them.
    """
    kinds: dict[str, type[Accumulator]] = {
        "regression": RegressionAccumulator, "binary": BinaryAccumulator,
        "multiclass": MulticlassAccumulator}
    kind = kinds.get(str(data.get("target")))
    if kind is None:
        raise ConfigError(f"an accumulator's target is one of {sorted(kinds)}, got "
                          f"{data.get('target')!r}")
    return kind.from_json(data)


def _deviances(y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit Gamma and Poisson deviances (scikit-learn's formulas) of the rows in
    each one's domain where they are finite (a prediction of 1e-300 is not)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        in_gamma = (y > 0) & (f > 0)
        yg, fg = y[in_gamma], f[in_gamma]
        gamma = 2 * (np.log(fg / yg) + yg / fg - 1)
        in_poisson = (y >= 0) & (f > 0)
        yp, fp = y[in_poisson], f[in_poisson]
        ylogy = np.where(yp > 0, yp * np.log(yp / fp), 0.0)  # scipy's xlogy: 0 at y == 0
        poisson = 2 * (ylogy - yp + fp)
    return gamma[np.isfinite(gamma)], poisson[np.isfinite(poisson)]


def _square_sum(x: np.ndarray) -> int:
    """The exact sum of ``x ** 2``: each square as its rounded value plus its rounding
    error (Dekker's product; exact for ``1e-140 < |x| <= 1e150``, and below that the
    error is under 2 ** -900)."""
    square = x * x
    scaled = _SPLIT * x
    high = scaled - (scaled - x)
    low = x - high
    error = ((high * high - square) + 2 * high * low) + low * low
    return exact_sum(square) + exact_sum(error)


def _mean(total: int, n: int) -> float | None:
    """An exact sum over ``n`` rows, divided by ``n`` and correctly rounded."""
    return float(_UNIT * total / n) if n else None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _check_same(name: str, mine: object, theirs: object) -> None:
    if mine != theirs:
        raise ConfigError(f"accuracy counted with {name} {theirs!r} cannot merge with "
                          f"accuracy counted with {name} {mine!r}")


def _bins(values: Sequence[Any]) -> tuple[int, ...]:
    if len(values) != histogram.BINS:
        raise ValueError(f"{histogram.BINS} bins per class expected, got {len(values)}")
    return tuple(int(v) for v in values)


def _parsed(target: str, data: Mapping[str, Any], build: Callable[[], _A]) -> _A:
    """``build()`` from ``data``, or the error naming what is wrong with it."""
    if data.get("target") != target:
        raise ConfigError(f"expected a {target} accumulator, got target "
                          f"{data.get('target')!r}")
    try:
        return build()
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a {target} accumulator ({type(exc).__name__}: {exc}): "
                          f"{str(dict(data))[:200]}") from exc


def outcomes(target: Target, actual: pa.Array) -> np.ndarray:
    """The actual labels of a classification target as the accumulators count them:
    binary 1 for the positive class and 0 for the other, multiclass the class's index;
    -1 for a label that is no class of the target."""
    labels = pc.cast(actual, pa.string())
    classes = pa.array([str(c) for c in target.classes], pa.string())
    # the class's index, vectorised in Arrow (no Python string per row): -1 for none
    index = pc.fill_null(pc.index_in(labels, value_set=classes), -1).to_numpy(
        zero_copy_only=False).astype(np.int64)
    if target.type is TargetType.BINARY:
        positive = [str(c) for c in target.classes].index(str(target.positive))
        return np.where(index == positive, 1, np.where(index >= 0, 0, -1))
    return index


def accumulate(target: Target, *, actual: pa.Array, prediction: np.ndarray,
               probabilities: pa.Array | None = None) -> Accumulator:
    """The accumulator of some predictions and their actuals: ``actual`` the actual
    value (regression) or label (classification, as text), ``prediction`` the logged
    prediction, ``probabilities`` the class probabilities (multiclass)."""
    if target.type is TargetType.REGRESSION:
        values = pc.cast(actual, pa.float64()).to_numpy(zero_copy_only=False)
        return RegressionAccumulator.count(values, prediction)
    y = outcomes(target, actual)
    if target.type is TargetType.BINARY:
        return BinaryAccumulator.count(y, prediction, threshold=float(target.threshold))
    classes = [str(c) for c in target.classes]
    assert probabilities is not None
    probs = pc.list_flatten(probabilities).to_numpy(zero_copy_only=False)
    return MulticlassAccumulator.count(y, probs.reshape(len(y), len(classes)),
                                       classes=classes)
