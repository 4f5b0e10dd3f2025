"""One chunk in, predictions out: Arrow batch -> Arrow batch.

Features are checked and coerced (:mod:`batch.scoring.features`), the valid
rows are scored, and the predictions are laid out in the Portable Prediction
Server's columns (:mod:`batch.scoring.columns`); rows that cannot be scored get
null predictions and the reason in ``prediction_status``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from batch.errors import ModelOutputError
from batch.models.loaders import ColumnScorer, Scorer
from batch.models.manifest import TargetType
from batch.models.package import ModelPackage
from batch.scoring.columns import (
    STATUS_OK,
    ScoringOptions,
    output_schema,
    passthrough_columns,
)
from batch.scoring.features import FeatureFrame, coerce_features
from batch.scoring.humility import Fired, Humility, apply, overridden

PROBABILITY_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """A scored batch, and what the humility rules did to it."""

    batch: pa.RecordBatch
    humility: tuple[int, ...] = ()  # per rule of the options' humility: the rows it fired on
    rejected: np.ndarray | None = None  # the rows a humility rule rejected (None: none)


def score_batch(
    batch: pa.RecordBatch,
    package: ModelPackage,
    scorer: Scorer,
    options: ScoringOptions,
    *,
    features: FeatureFrame | None = None,
) -> pa.RecordBatch:
    """Score one batch: :func:`score_rows`, the batch alone."""
    return score_rows(batch, package, scorer, options, features=features).batch


def score_rows(
    batch: pa.RecordBatch,
    package: ModelPackage,
    scorer: Scorer,
    options: ScoringOptions,
    *,
    features: FeatureFrame | None = None,
) -> ScoredRows:
    """Score one batch.

    Rows whose values cannot be coerced get null predictions and a status
    naming the column and value; the rest are scored, then the options' humility
    rules flag, override or reject them (:mod:`batch.scoring.humility`).
    ``features``: the batch already coerced
    (:func:`~batch.scoring.features.coerce_features`), when the caller needs them too.

    Raises:
        SchemaError: see :func:`output_schema`.
        ModelOutputError: the model's output breaks the contract.
        UserCodeError: the model raised.
    """
    manifest = package.manifest
    schema = output_schema(manifest, batch.schema, options)
    features = features if features is not None else coerce_features(batch, manifest)
    valid = features.valid
    n = batch.num_rows
    scored = features if features.reasons is None else features.select(valid)
    raw = None
    if scored.rows and isinstance(scorer, ColumnScorer):  # takes arrays: no DataFrame made
        raw = scorer.predict_columns(scored.columns, scored.rows, scored.category_missing)
    elif scored.rows:
        raw = scorer.predict(scored.frame)
    output = _checked_output(package, raw, scored.rows)
    reasons = features.reasons
    counts: tuple[int, ...] = ()
    rejected = None
    if options.humility is not None:
        fired = apply(options.humility, scored.columns, _watched(package, output))
        counts = fired.counts
        if fired.rejected is not None:
            rejected = np.flatnonzero(valid)[fired.rejected]
        if fired.reasons is not None:
            output, valid, reasons = _humbled(package, output, valid=valid, reasons=reasons,
                                              rules=(options.humility, fired))
    columns = [batch.column(c) for c in passthrough_columns(batch.schema, options)]
    columns += _prediction_arrays(package, output, valid)
    if options.status_column:
        if reasons is None:
            columns.append(pa.repeat(pa.scalar(STATUS_OK, pa.string()), n))
        else:
            status = reasons.copy()
            status[np.flatnonzero([r is None for r in reasons])] = STATUS_OK
            columns.append(pa.array(status, type=pa.string()))
    return ScoredRows(pa.RecordBatch.from_arrays(columns, schema=schema), counts, rejected)


def _watched(package: ModelPackage, output: np.ndarray) -> np.ndarray | None:
    """What an uncertain-prediction rule watches: the value, or the positive class's
    probability (nothing for a multiclass model)."""
    target = package.manifest.target
    if target.type is TargetType.REGRESSION:
        return output
    if target.type is TargetType.BINARY:
        return output[:, list(target.classes).index(str(target.positive))]
    return None


def _humbled(package: ModelPackage, output: np.ndarray, *, valid: np.ndarray,
             reasons: np.ndarray | None, rules: tuple[Humility, Fired]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scored rows' output with overrides applied and rejected rows dropped, which
    rows have predictions, and every row's status (None: OK)."""
    humility, fired = rules
    output = output.copy()
    classes = list(package.manifest.target.classes)
    for value, rows in overridden(humility, fired):
        if output.ndim == 1:
            output[rows] = float(value)
        else:
            output[rows] = 0.0
            output[rows, classes.index(str(value))] = 1.0
    at = np.flatnonzero(valid)  # scored row i is batch row at[i]
    statuses = np.full(len(valid), None, dtype=object) if reasons is None else reasons.copy()
    assert fired.reasons is not None
    statuses[at] = fired.reasons
    if fired.rejected is not None:
        output = output[~fired.rejected]
        valid = valid.copy()
        valid[at[fired.rejected]] = False
    return output, valid, statuses


def _checked_output(package: ModelPackage, raw: np.ndarray | None, m: int) -> np.ndarray:
    """The model's values (regression) or class probabilities (m x classes), checked."""
    if package.manifest.target.type is TargetType.REGRESSION:
        return _checked_values(package, raw, m)
    return _checked_probabilities(package, raw, m)


def _prediction_arrays(
    package: ModelPackage, output: np.ndarray, valid: np.ndarray
) -> list[pa.Array]:
    target = package.manifest.target
    n, m = len(valid), int(valid.sum())
    if target.type is TargetType.REGRESSION:
        return [_scatter(output, valid)]
    probs = output
    classes = np.array(target.classes, dtype=object)
    if target.type is TargetType.BINARY:
        positive = str(target.positive)  # validated: a binary target always names it
        pos = list(target.classes).index(positive)
        picks = (probs[:, pos] <= target.threshold).astype(np.int8)  # 0: positive, 1: negative
        names = pa.array([positive, target.negative], pa.string())
    else:
        picks = np.argmax(probs, axis=1) if m else np.empty(0, dtype=np.int64)
        names = pa.array(list(classes), pa.string())
    arrays = [_scatter(probs[:, j], valid) for j in range(len(classes))]
    arrays.append(_labels(names, picks, valid))
    if target.type is TargetType.BINARY:
        arrays.append(pa.repeat(pa.scalar(float(target.threshold), pa.float64()), n))
        arrays.append(pa.repeat(pa.scalar(target.positive, pa.string()), n))
    return arrays


def _labels(names: pa.Array, picks: np.ndarray, valid: np.ndarray) -> pa.Array:
    """``names[picks]`` at the valid rows, null at the others."""
    if valid.all():
        return names.take(pa.array(picks))
    full = np.zeros(len(valid), dtype=picks.dtype)
    full[valid] = picks
    return names.take(pa.array(full, mask=~valid))


def _scatter(values: np.ndarray, valid: np.ndarray, typ: pa.DataType | None = None) -> pa.Array:
    typ = typ or pa.float64()
    if valid.all():
        return pa.array(values, type=typ)
    full = np.empty(len(valid), dtype=values.dtype if typ == pa.float64() else object)
    full[valid] = values
    return pa.array(full, type=typ, mask=~valid)


def _checked_values(package: ModelPackage, raw: np.ndarray | None, m: int) -> np.ndarray:
    if raw is None:
        return np.empty(0)
    values = np.asarray(raw, dtype=np.float64)
    if values.shape != (m,):
        raise ModelOutputError(
            f"{package.label}: returned {values.shape} predictions for {m} rows"
        )
    return values


def _checked_probabilities(package: ModelPackage, raw: np.ndarray | None, m: int) -> np.ndarray:
    k = len(package.manifest.target.classes)
    if raw is None:
        return np.empty((0, k))
    probs = np.asarray(raw, dtype=np.float64)
    if probs.shape != (m, k):
        raise ModelOutputError(
            f"{package.label}: returned probabilities of shape {probs.shape}, "
            f"expected ({m}, {k}) for classes {list(package.manifest.target.classes)}"
        )
    bad = ~np.isfinite(probs).all(axis=1)
    bad |= ((probs < -PROBABILITY_TOLERANCE) | (probs > 1 + PROBABILITY_TOLERANCE)).any(axis=1)
    bad |= np.abs(probs.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ModelOutputError(
            f"{package.label}: invalid probabilities {probs[i].tolist()} for scored row {i} "
            f"({int(bad.sum())} such rows); each must be finite, in [0, 1] and sum to 1"
        )
    return probs
