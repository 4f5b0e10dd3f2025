"""The accuracy metrics by name, their directions, and a metric's status.

:data:`METRICS` names every metric the accuracy accumulators report
(:mod:`~batch.monitoring.accuracy`, :mod:`~batch.monitoring.estimate`), its
label and whether higher is better. :data:`PRIMARY_METRIC` is the one a
deployment's accuracy status is judged on: AUC for a binary target (it judges
the ranking whatever the threshold, and unlike LogLoss it does not move when
only the calibration does), RMSE for regression, LogLoss for multiclass (the
only one that sees every class's probability).

Status against the holdout (the monitoring contract), by the relative change in
the worse direction, ``(holdout - value) / |holdout|`` when higher is better and
``(value - holdout) / |holdout|`` when lower is: yellow at >= 10% worse, red at
>= 20% worse, else green; grey below 100 matched actuals, when either value is
missing, or for a metric with no better direction (the mean error). A holdout
value of 0 makes any change in the worse direction infinitely worse (red).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from batch.errors import ConfigError
from batch.models.kinds import TargetType

Colour = Literal["grey", "green", "yellow", "red"]
YELLOW = 0.10
RED = 0.20
MIN_MATCHED = 100
_SLACK = 1e-12  # 0.72 against 0.80 is the 10% it reads as (in floats, 0.0999999...)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: its name in the metrics dictionaries, its label, its direction."""

    name: str
    label: str
    higher_is_better: bool | None  # None: neither (closer to zero is better)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "Accuracy", True),
    Metric("auc", "AUC", True),
    Metric("balanced_accuracy", "Balanced accuracy", True),
    Metric("f1", "F1", True),
    Metric("fpr", "FPR", False),
    Metric("gamma_deviance", "Gamma deviance", False),
    Metric("gini", "Gini", True),
    Metric("ks", "KS", True),
    Metric("logloss", "LogLoss", False),
    Metric("macro_f1", "Macro F1", True),
    Metric("mae", "MAE", False),
    Metric("mape", "MAPE", False),
    Metric("mcc", "MCC", True),
    Metric("mean_error", "Mean error", None),
    Metric("poisson_deviance", "Poisson deviance", False),
    Metric("ppv", "PPV", True),
    Metric("r2", "R2", True),
    Metric("rate_top10", "Rate@Top10%", True),
    Metric("rate_top5", "Rate@Top5%", True),
    Metric("rmse", "RMSE", False),
    Metric("tpr", "TPR", True),
)}

PRIMARY_METRIC: dict[TargetType, str] = {
    TargetType.BINARY: "auc",
    TargetType.REGRESSION: "rmse",
    TargetType.MULTICLASS: "logloss",
}


@dataclass(frozen=True, slots=True)
class AccuracyStatus:
    """A metric's colour against the holdout, the rule that gave it, and the relative
    change in the worse direction (0.12: 12% worse; negative: better)."""

    colour: Colour
    rule: str
    change: float | None = None

    def to_json(self) -> dict[str, Any]:
        change = self.change if self.change is None or math.isfinite(self.change) else None
        return {"colour": self.colour, "rule": self.rule, "change": change}


def accuracy_status(metric_name: str, value: float | None, holdout_value: float | None,
                    matched_rows: int, *, yellow: float = YELLOW, red: float = RED,
                    min_matched: int = MIN_MATCHED) -> AccuracyStatus:
    """The status of ``value`` (over ``matched_rows`` rows with actuals) against the
    holdout's ``holdout_value`` of the same metric.

    Raises:
        ConfigError: ``metric_name`` is not in :data:`METRICS`.
    """
    metric = METRICS.get(metric_name)
    if metric is None:
        raise ConfigError(f"no metric {metric_name!r}; the metrics are {sorted(METRICS)}")
    label = metric.label
    if matched_rows < min_matched:
        return AccuracyStatus("grey", f"{matched_rows} matched actuals, under {min_matched}")
    if metric.higher_is_better is None:
        return AccuracyStatus("grey", f"{label} has no better direction to judge")
    if value is None or math.isnan(value):
        return AccuracyStatus("grey", f"{label} is undefined on these rows")
    if holdout_value is None or math.isnan(holdout_value):
        return AccuracyStatus("grey", f"no holdout {label} to compare with")
    worse = holdout_value - value if metric.higher_is_better else value - holdout_value
    change = (worse / abs(holdout_value) if holdout_value
              else math.copysign(math.inf, worse) if worse else 0.0)
    said = (f"{label} {value:.4g} against the holdout's {holdout_value:.4g}: "
            f"{_percent(change)} {'worse' if change > 0 else 'better'}")
    if change >= red - _SLACK:
        return AccuracyStatus("red", f"{said} (red from {red:.0%} worse)", change)
    if change >= yellow - _SLACK:
        return AccuracyStatus("yellow", f"{said} (yellow from {yellow:.0%} worse)", change)
    return AccuracyStatus("green", f"{said} (yellow from {yellow:.0%} worse)", change)


def _percent(change: float) -> str:
    return f"{abs(change):.1%}" if math.isfinite(change) else "infinitely"
