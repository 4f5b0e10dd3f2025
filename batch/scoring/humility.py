"""Humility rules: per row, a trigger and what to do when it fires.

A rule (a deployment setting, :class:`HumilityRule`) has one trigger:

- ``uncertain_prediction``: the prediction (a binary model's positive-class
  probability, a regression model's value) lies in ``[lower, upper]``;
- ``outlying_input``: a numeric feature lies outside ``[lower, upper]``
  (default: its training range, from the package's baseline);
- ``low_observation_region``: a categorical feature has a value outside
  ``levels`` (default: every level seen in training);

and one action: ``no_op`` flags the row, ``override`` replaces its prediction
with ``value``, ``reject`` gives it no prediction. Resolved against a package
(:class:`Humility`), the rules run in :func:`batch.scoring.chunk.score_rows` on
the rows that were scored; the row's ``prediction_status`` says what fired::

    OK; humility: uncertain (flagged), income-range (overridden)
    rejected by humility rule 'uncertain': prediction 0.52 in [0.4, 0.6]

Each rule's firings are counted per chunk (:attr:`Fired.counts`), for the
monitoring records.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from batch.errors import ConfigError
from batch.models.manifest import FeatureType, ModelManifest, TargetType

STATUS_FLAGGED_PREFIX = "OK; humility: "
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Trigger(StrEnum):
    UNCERTAIN_PREDICTION = "uncertain_prediction"
    OUTLYING_INPUT = "outlying_input"
    LOW_OBSERVATION_REGION = "low_observation_region"


class Action(StrEnum):
    NO_OP = "no_op"
    OVERRIDE = "override"
    REJECT = "reject"


_DONE = {Action.NO_OP: "flagged", Action.OVERRIDE: "overridden"}


class HumilityRule(BaseModel):
    """One rule, as a deployment's settings hold it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=RULE_NAME, description="Names the rule in statuses and records.")
    trigger: Trigger
    action: Action = Action.NO_OP
    lower: float | None = Field(default=None, description="uncertain_prediction: the lower "
                                "bound of the uncertain band; outlying_input: the lowest "
                                "expected value (default: the training minimum).")
    upper: float | None = Field(default=None, description="... the upper bound (default for "
                                "outlying_input: the training maximum).")
    feature: str | None = Field(default=None, description="outlying_input / "
                                "low_observation_region: the feature watched (default: every "
                                "numeric, resp. categorical, feature).")
    levels: tuple[str, ...] | None = Field(default=None, description="low_observation_region:"
                                           " the expected values (default: the training "
                                           "levels).")
    value: float | str | None = Field(default=None, description="override: the prediction "
                                      "given instead (a number, or a class label).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        uncertain = self.trigger is Trigger.UNCERTAIN_PREDICTION
        if uncertain and (self.lower is None or self.upper is None):
            raise ValueError(f"rule {self.name!r}: uncertain_prediction needs lower and upper")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"rule {self.name!r}: lower {self.lower} is above upper "
                             f"{self.upper}")
        if uncertain and self.feature is not None:
            raise ValueError(f"rule {self.name!r}: uncertain_prediction watches the "
                             "prediction, not a feature")
        if self.trigger is Trigger.LOW_OBSERVATION_REGION and (
                self.lower is not None or self.upper is not None):
            raise ValueError(f"rule {self.name!r}: low_observation_region takes levels, "
                             "not bounds")
        if self.levels is not None and self.trigger is not Trigger.LOW_OBSERVATION_REGION:
            raise ValueError(f"rule {self.name!r}: only low_observation_region takes levels")
        if (self.action is Action.OVERRIDE) != (self.value is not None):
            raise ValueError(f"rule {self.name!r}: value goes with action override, and "
                             "override needs one")
        return self


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule with its bounds and levels filled in for one package."""

    name: str
    trigger: Trigger
    action: Action
    lower: float = -math.inf  # uncertain_prediction: the band
    upper: float = math.inf
    bounds: tuple[tuple[str, float, float], ...] = ()  # outlying_input: (feature, lo, hi)
    levels: tuple[tuple[str, frozenset[str]], ...] = ()  # low_observation_region
    value: float | str | None = None

    @property
    def key(self) -> str:
        """``name/action``: how the monitoring records name the rule."""
        return f"{self.name}/{self.action.value}"


@dataclass(frozen=True, slots=True)
class Humility:
    """A package's resolved rules, in the order they were given."""

    rules: tuple[ResolvedRule, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(rule.key for rule in self.rules)


@dataclass(frozen=True, slots=True)
class Fired:
    """What the rules did to the scored rows of one chunk."""

    counts: tuple[int, ...]  # per rule: the rows it fired on
    masks: tuple[np.ndarray, ...]  # per rule: the scored rows it fired on
    rejected: np.ndarray | None  # per scored row: rejected (None: none were)
    reasons: np.ndarray | None  # per scored row: the status of a flagged/rejected row


def resolve(rules: Sequence[HumilityRule], manifest: ModelManifest, *,
            ranges: Mapping[str, tuple[float, float]] | None = None,
            levels: Mapping[str, Collection[str]] | None = None) -> Humility | None:
    """``rules`` for a package: ``ranges`` and ``levels`` are its training ranges and
    levels per feature (from its baseline; None when it has none). None without rules.

    Raises:
        ConfigError: a rule names a feature the model lacks or of the wrong kind, needs
            the training ranges or levels the package has no baseline for, watches the
            prediction of a multiclass model, or overrides with a value of the wrong kind.
    """
    if not rules:
        return None
    names = [rule.name for rule in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"humility rule {twice[0]!r} is given twice: rule names are unique")
    return Humility(tuple(_resolved(rule, manifest, ranges, levels) for rule in rules))


def _resolved(rule: HumilityRule, manifest: ModelManifest,
              ranges: Mapping[str, tuple[float, float]] | None,
              levels: Mapping[str, Collection[str]] | None) -> ResolvedRule:
    where = f"humility rule {rule.name!r}"
    target = manifest.target
    value = _override(rule, manifest) if rule.action is Action.OVERRIDE else None
    if rule.trigger is Trigger.UNCERTAIN_PREDICTION:
        if target.type is TargetType.MULTICLASS:
            raise ConfigError(f"{where}: uncertain_prediction is for binary and regression "
                              f"models; model '{manifest.name}' is multiclass")
        assert rule.lower is not None and rule.upper is not None
        return ResolvedRule(rule.name, rule.trigger, rule.action, rule.lower, rule.upper,
                            value=value)
    numeric = rule.trigger is Trigger.OUTLYING_INPUT
    watched = _features(rule, manifest, _NUMERIC if numeric else _CATEGORICAL, where)
    if rule.trigger is Trigger.OUTLYING_INPUT:
        bounds = []
        for name in watched:
            known = (ranges or {}).get(name)
            if known is None and (rule.lower is None or rule.upper is None):
                raise ConfigError(f"{where}: feature {name!r} has no training range (the "
                                  "package has no baseline): give lower and upper")
            lo = rule.lower if rule.lower is not None else known[0]  # type: ignore[index]
            hi = rule.upper if rule.upper is not None else known[1]  # type: ignore[index]
            bounds.append((name, float(lo), float(hi)))
        return ResolvedRule(rule.name, rule.trigger, rule.action, bounds=tuple(bounds),
                            value=value)
    sets = []
    for name in watched:
        expected = rule.levels if rule.levels is not None else (levels or {}).get(name)
        if expected is None:
            raise ConfigError(f"{where}: feature {name!r} has no training levels (the "
                              "package has no baseline): give levels")
        sets.append((name, frozenset(str(v) for v in expected)))
    return ResolvedRule(rule.name, rule.trigger, rule.action, levels=tuple(sets), value=value)


_NUMERIC = ("numeric", frozenset({FeatureType.NUMBER, FeatureType.INTEGER}))
_CATEGORICAL = ("categorical", frozenset({FeatureType.CATEGORY}))


def _features(rule: HumilityRule, manifest: ModelManifest,
              kinds: tuple[str, frozenset[FeatureType]], where: str) -> list[str]:
    kind, types = kinds
    of_kind = [f.name for f in manifest.features if f.type in types]
    if rule.feature is None:
        if not of_kind:
            raise ConfigError(f"{where}: model '{manifest.name}' has no {kind} feature "
                              f"for {rule.trigger.value}")
        return of_kind
    if rule.feature not in manifest.feature_names:
        raise ConfigError(f"{where}: model '{manifest.name}' has no feature "
                          f"{rule.feature!r}; it has: {', '.join(manifest.feature_names)}")
    if rule.feature not in of_kind:
        raise ConfigError(f"{where}: feature {rule.feature!r} is not {kind}, as "
                          f"{rule.trigger.value} needs")
    return [rule.feature]


def _override(rule: HumilityRule, manifest: ModelManifest) -> float | str:
    target = manifest.target
    where = f"humility rule {rule.name!r}"
    if target.type is TargetType.REGRESSION:
        try:
            number = float(rule.value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: override value {rule.value!r} is not a number, as "
                              f"regression model '{manifest.name}' predicts") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: override value {rule.value!r} is not finite")
        return number
    label = str(rule.value)
    if label not in target.classes:
        raise ConfigError(f"{where}: override value {rule.value!r} is not a class of model "
                          f"'{manifest.name}' ({', '.join(map(str, target.classes))})")
    return label


def apply(humility: Humility, columns: Mapping[str, np.ndarray],
          prediction: np.ndarray | None) -> Fired:
    """Run the rules on the scored rows: ``columns`` their features (as coerced),
    ``prediction`` the watched prediction per row (positive-class probability or
    value; None for multiclass, which no uncertain rule watches)."""
    rows = len(prediction) if prediction is not None else len(next(iter(columns.values())))
    fired = tuple(_fires(rule, columns, prediction, rows) for rule in humility.rules)
    counts = tuple(int(mask.sum()) for mask in fired)
    if not any(counts):
        return Fired(counts, fired, None, None)
    rejected = np.zeros(rows, dtype=bool)
    reasons = np.full(rows, None, dtype=object)
    for rule, mask in zip(humility.rules, fired, strict=True):
        if rule.action is Action.REJECT:
            fresh = mask & ~rejected
            for i in np.flatnonzero(fresh):
                reasons[i] = _rejection(rule, columns, prediction, int(i))
            rejected |= fresh
    for i in np.flatnonzero(np.logical_or.reduce(fired) & ~rejected):
        done = [f"{rule.name} ({_DONE[rule.action]})"
                for rule, mask in zip(humility.rules, fired, strict=True) if mask[i]]
        reasons[i] = STATUS_FLAGGED_PREFIX + ", ".join(done)
    return Fired(counts, fired, rejected if rejected.any() else None, reasons)


def overridden(humility: Humility, fired: Fired) -> list[tuple[float | str, np.ndarray]]:
    """Per override rule that fired, its value and the scored rows it overrides (not
    rejected ones; the first override rule of a row wins)."""
    taken = np.zeros_like(fired.masks[0]) if fired.rejected is None else fired.rejected.copy()
    out = []
    for rule, mask in zip(humility.rules, fired.masks, strict=True):
        if rule.action is Action.OVERRIDE and mask.any():
            rows = mask & ~taken
            taken |= rows
            assert rule.value is not None
            out.append((rule.value, rows))
    return out


def _fires(rule: ResolvedRule, columns: Mapping[str, np.ndarray],
           prediction: np.ndarray | None, rows: int) -> np.ndarray:
    if rule.trigger is Trigger.UNCERTAIN_PREDICTION:
        assert prediction is not None
        return (prediction >= rule.lower) & (prediction <= rule.upper)
    mask = np.zeros(rows, dtype=bool)
    for name, lo, hi in rule.bounds:
        x = columns[name]
        with np.errstate(invalid="ignore"):
            mask |= (x < lo) | (x > hi)  # NaN (missing) is neither
    for name, expected in rule.levels:
        mask |= _unexpected(columns[name], expected)
    return mask


def _unexpected(values: np.ndarray, expected: frozenset[str]) -> np.ndarray:
    """Present values not in ``expected`` (a missing value is not an observation)."""
    distinct, index = np.unique(values.astype(str), return_inverse=True)
    present = np.array([not _missing(v) for v in values], dtype=bool) if values.dtype == object \
        else ~np.isnan(values)
    outside = np.array([d not in expected for d in distinct], dtype=bool)
    return outside[index.reshape(-1)] & present


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _rejection(rule: ResolvedRule, columns: Mapping[str, np.ndarray],
               prediction: np.ndarray | None, i: int) -> str:
    head = f"rejected by humility rule {rule.name!r}: "
    if rule.trigger is Trigger.UNCERTAIN_PREDICTION:
        assert prediction is not None
        return head + f"prediction {prediction[i]:.6g} in [{rule.lower:g}, {rule.upper:g}]"
    for name, lo, hi in rule.bounds:
        x = columns[name][i]
        if x < lo or x > hi:
            return head + f"{name} = {x:.6g} outside [{lo:g}, {hi:g}]"
    for name, expected in rule.levels:
        value = columns[name][i]
        if not _missing(value) and str(value) not in expected:
            return head + f"{name} = {str(value)!r} is not an observed level"
    return head + rule.trigger.value
