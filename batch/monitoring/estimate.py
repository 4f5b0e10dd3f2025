"""Estimated performance of a binary model before its actuals arrive.

Confidence-based performance estimation (CBPE): with probabilities calibrated
on the holdout when the baseline is built, a row of calibrated probability
``c`` is a true positive with probability ``c`` when it is predicted positive
(``p > threshold``, on the raw score, as scoring labels it) and a false
positive otherwise; predicted negative, a false negative with probability
``c`` and a true negative otherwise. Summed, the expected confusion matrix
gives expected accuracy, precision (``ppv``), recall (``tpr``) and F1 (ratios
of the expected counts); the raw-score histogram with each row weighted by
``c`` (expected positives) and ``1 - c`` (expected negatives) gives the
expected AUC (:mod:`~batch.monitoring.histogram`). The estimate is only as good
as the calibration: it assumes the holdout's relation of score to outcome still
holds, and it sees covariate shift, not concept drift.

:class:`Calibration` is a table of (x, y) points: applying it is
``numpy.interp`` (scikit-learn is needed only to fit it). Isotonic regression
gives its own breakpoints. Platt's sigmoid ``c = 1 / (1 + exp(-(a * logit(p) + b)))``
is tabulated where the logit of ``p`` and where the logit of ``c`` cross a grid
0.25 apart over [-35, 35] (about 560 points); linear interpolation between them
is within 1e-3 of the sigmoid (measured for slopes ``a`` from 0.2 to 10).

:class:`EstimateAccumulator` keeps row counts and exact sums of ``c`` (the
expected negatives are the count less the expected positives, exactly), so it
merges bit-identically like the accuracy accumulators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from batch.errors import ConfigError
from batch.monitoring import histogram
from batch.monitoring.exactsum import decode, encode, to_float

Method = Literal["isotonic", "platt", "identity"]
_UNIT = 1 << 1074  # units of an exact sum per 1.0
_PLATT_GRID = np.linspace(-35.0, 35.0, 281)  # logits, 0.25 apart (1e-15 clips at 34.5)
_CLIP = 1e-15


@dataclass(frozen=True, slots=True)
class Calibration:
    """A monotone map of raw positive-class probability to calibrated probability."""

    method: Method
    x: tuple[float, ...]  # increasing, in [0, 1]
    y: tuple[float, ...]  # the calibrated probability at each x, in [0, 1]

    @classmethod
    def identity(cls) -> Calibration:
        """No calibration: the raw probability stands."""
        return cls("identity", (0.0, 1.0), (0.0, 1.0))

    @classmethod
    def fit(cls, probability: np.ndarray, actual: np.ndarray, *,
            method: Method = "isotonic") -> Calibration:
        """Fit on holdout rows: the positive-class probabilities and the actuals (1 for
        the positive class, 0 for the negative).

        Raises:
            ConfigError: ``method`` is unknown, or the rows do not hold both classes
                (a calibration needs positives and negatives to learn from).
        """
        p = np.asarray(probability, dtype=np.float64)
        y = np.asarray(actual)
        valid = ((y == 0) | (y == 1)) & np.isfinite(p)
        p, y = np.clip(p[valid], 0.0, 1.0), (y[valid] == 1).astype(np.float64)
        if method == "identity":
            return cls.identity()
        if method not in ("isotonic", "platt"):
            raise ConfigError(f"calibration method {method!r} is unknown; use 'isotonic' "
                              "or 'platt'")
        positives = int(y.sum())
        if positives in (0, y.size):
            raise ConfigError(f"cannot calibrate on {y.size} holdout rows with {positives} "
                              "positives: the holdout needs rows of both classes")
        return _isotonic(p, y) if method == "isotonic" else _platt(p, y)

    def apply(self, probability: np.ndarray) -> np.ndarray:
        """The calibrated probabilities (raw ones outside [0, 1] are taken at the ends)."""
        x = np.asarray(probability, dtype=np.float64)
        return np.clip(np.interp(x, self.x, self.y), 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        """What :meth:`to_json` wrote.

        Raises:
            ConfigError: ``data`` is no calibration table.
        """
        try:
            x = tuple(float(v) for v in data["x"])
            y = tuple(float(v) for v in data["y"])
            method = data["method"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a calibration ({type(exc).__name__}: {exc}): "
                              f"{str(dict(data))[:200]}") from exc
        if (method not in ("isotonic", "platt", "identity") or not x or len(x) != len(y)
                or any(b <= a for a, b in zip(x, x[1:], strict=False))
                or not all(0.0 <= v <= 1.0 for v in y)):
            raise ConfigError(f"not a calibration table (method isotonic, platt or identity; "
                              f"x increasing; y in [0, 1]): {str(dict(data))[:200]}")
        return cls(method, x, y)


def _isotonic(p: np.ndarray, y: np.ndarray) -> Calibration:
    from sklearn.isotonic import IsotonicRegression  # only when a baseline is built

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return Calibration("isotonic", tuple(model.X_thresholds_.tolist()),
                       tuple(model.y_thresholds_.tolist()))


def _platt(p: np.ndarray, y: np.ndarray) -> Calibration:
    from sklearn.linear_model import LogisticRegression  # only when a baseline is built

    model = LogisticRegression(C=1e6).fit(_logit(p)[:, None], y)  # all but unpenalised
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    x: list[np.ndarray] = [np.array([0.0, 1.0]), _sigmoid(_PLATT_GRID)]
    if slope:  # where the output's logit crosses the same grid
        x.append(_sigmoid((_PLATT_GRID - intercept) / slope))
    points = np.unique(np.concatenate(x))
    return Calibration("platt", tuple(points.tolist()),
                       tuple(_sigmoid(slope * _logit(points) + intercept).tolist()))


def _logit(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, _CLIP, 1 - _CLIP)
    return np.asarray(np.log(v / (1 - v)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(800) is inf: the sigmoid is 0, as it should be
        return np.asarray(1 / (1 + np.exp(-z)))


@dataclass(frozen=True, slots=True)
class EstimateAccumulator:
    """Expected counts of some rows at one threshold; ``expected`` and
    ``flagged_expected`` are exact sums of calibrated probabilities in units of
    ``2 ** -1074``. ``EstimateAccumulator(t)`` has no rows."""

    threshold: float
    skipped: int = 0
    counts: tuple[int, ...] = (0,) * histogram.BINS  # rows per raw-score bin
    expected: tuple[int, ...] = (0,) * histogram.BINS  # their calibrated probabilities
    flagged: int = 0  # rows predicted positive
    flagged_expected: int = 0  # their calibrated probabilities (the expected TP)

    @classmethod
    def count(cls, probability: np.ndarray, *, calibration: Calibration,
              threshold: float) -> EstimateAccumulator:
        """Count one chunk's positive-class probabilities (NaN: skipped)."""
        p = np.asarray(probability, dtype=np.float64)
        p = p[~np.isnan(p)]
        flagged = p > threshold
        bins = histogram.score_bins(p) + histogram.BINS * flagged
        size = 2 * histogram.BINS
        counts = np.bincount(bins, minlength=size).tolist()
        sums = histogram.binned_sums(calibration.apply(p), bins, size)
        b = histogram.BINS
        return cls(threshold=float(threshold), skipped=int(np.asarray(probability).size - p.size),
                   counts=tuple(x + y for x, y in zip(counts[:b], counts[b:], strict=True)),
                   expected=tuple(x + y for x, y in zip(sums[:b], sums[b:], strict=True)),
                   flagged=sum(counts[b:]), flagged_expected=sum(sums[b:]))

    @property
    def n(self) -> int:
        return sum(self.counts)

    def merge(self, other: EstimateAccumulator) -> EstimateAccumulator:
        """Both together.

        Raises:
            ConfigError: the two were counted at different thresholds.
        """
        if other.threshold != self.threshold:
            raise ConfigError(f"estimates at threshold {other.threshold!r} cannot merge with "
                              f"estimates at threshold {self.threshold!r}")
        return EstimateAccumulator(
            self.threshold, self.skipped + other.skipped, _add(self.counts, other.counts),
            _add(self.expected, other.expected), self.flagged + other.flagged,
            self.flagged_expected + other.flagged_expected)

    def metrics(self) -> dict[str, float | None]:
        """Expected ``accuracy``, ``ppv`` (precision), ``tpr`` (recall), ``f1``, ``auc``,
        under the names of the realised metrics they stand beside."""
        n, flagged = self.n, self.flagged
        tp = Fraction(self.flagged_expected, _UNIT)
        positives = Fraction(sum(self.expected), _UNIT)
        tn = (n - flagged) - (positives - tp)
        negatives = [to_float(c * _UNIT - e) for c, e in zip(self.counts, self.expected,
                                                               strict=True)]
        return {
            "accuracy": float((tp + tn) / n) if n else None,
            "ppv": float(tp / flagged) if flagged else None,
            "tpr": float(tp / positives) if positives else None,
            "f1": float(2 * tp / (flagged + positives)) if flagged + positives else None,
            "auc": histogram.auc([to_float(e) for e in self.expected], negatives),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form: the counts as numbers, the exact sums as text."""
        return {"target": "binary-estimate", "threshold": self.threshold,
                "skipped": self.skipped, "counts": list(self.counts),
                "expected": [encode(e) for e in self.expected], "flagged": self.flagged,
                "flagged_expected": encode(self.flagged_expected)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EstimateAccumulator:
        """What :meth:`to_json` wrote.

        Raises:
            ConfigError: ``data`` is no estimate accumulator.
        """
        try:
            if data["target"] != "binary-estimate":
                raise ValueError(f"target {data['target']!r}")
            counts = tuple(int(c) for c in data["counts"])
            expected = tuple(decode(e) for e in data["expected"])
            if len(counts) != histogram.BINS or len(expected) != histogram.BINS:
                raise ValueError(f"{histogram.BINS} bins expected")
            return cls(float(data["threshold"]), int(data["skipped"]), counts, expected,
                       int(data["flagged"]), decode(data["flagged_expected"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not an estimate accumulator ({type(exc).__name__}: {exc}): "
                              f"{str(dict(data))[:200]}") from exc


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))
