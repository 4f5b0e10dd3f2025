"""The baseline: a model package's training profile, frozen with the model.

Built once from the training data (and, for the prediction profile, a holdout
when given), written into the package as ``baseline.json`` and named by the
manifest's ``baseline`` field, so the package digest covers it. Per numeric
feature: interior decile edges of the non-missing values (de-duplicated),
reference counts on them and a missing bucket, training min / max / mean / std,
and a finer profile on the percentiles (the tail signal's mergeable sketch).
Per categorical feature: the top 50 levels by count (ties by label), other /
new / missing buckets and the set of all training levels. Then the prediction
profile, the normalised feature importance and a fingerprint (sha256 of every
edge and level): records carry it, and records of two fingerprints never merge.

The same inputs give the same file, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch.errors import ConfigError, PackageError, validation_message, yaml_message
from batch.models.cache import process_cache
from batch.models.kinds import FeatureType, TargetType
from batch.models.manifest import MANIFEST_NAME, ModelManifest
from batch.models.package import ModelPackage, open_package
from batch.monitoring.accuracy import accumulate
from batch.monitoring.buckets import category_counts, level_label, numeric_counts
from batch.monitoring.estimate import Calibration
from batch.scoring.features import FeatureFrame, coerce_features

BASELINE_NAME = "baseline.json"
DECILES = tuple(i / 10 for i in range(1, 10))
PERCENTILES = tuple(i / 100 for i in range(1, 100))
PROBABILITY_EDGES = DECILES  # fixed: buckets [0, .1), ..., [.9, 1]
TOP_LEVELS = 50
IMPORTANCE_ROWS = 2_000  # the permutation sample: bounded, seeded
PREDICTION_ROWS = 50_000
SEED = 20260101


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NumericProfile(_Frozen):
    """A numeric column on its frozen buckets (see :mod:`batch.monitoring.buckets`)."""

    kind: Literal["numeric"] = "numeric"
    name: str
    edges: tuple[float, ...] = Field(description="Interior bucket edges.")
    counts: tuple[int, ...] = Field(description="Reference counts; the missing bucket last.")
    sketch_edges: tuple[float, ...] = Field(description="Percentile edges (tail signal).")
    sketch_counts: tuple[int, ...]
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None


class CategoricalProfile(_Frozen):
    """A categorical column: kept levels, then other / new / missing."""

    kind: Literal["categorical"] = "categorical"
    name: str
    levels: tuple[str, ...] = Field(description="Kept levels, most frequent first.")
    seen: tuple[str, ...] = Field(description="Every training level, sorted.")
    counts: tuple[int, ...] = Field(description="Reference counts: levels, other, new, missing.")


Profile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class Baseline(_Frozen):
    """A package's training profile (``baseline.json``)."""

    schema_version: Literal[1] = 1
    rows: int = Field(description="Training rows profiled.")
    features: tuple[Profile, ...]
    predictions: tuple[Profile, ...] = Field(description="Profiles of the prediction "
                                             "columns, on holdout (else training) rows.")
    prediction_source: Literal["holdout", "training"]
    importance: dict[str, float] = Field(description="Per feature, in [0, 1] by the maximum.")
    importance_source: Literal["permutation", "given"]
    fingerprint: str = Field(description="sha256 of the edges and levels.")
    holdout: dict[str, float | None] = Field(default_factory=dict, description="Accuracy "
                                             "metrics on the prediction rows (holdout, else "
                                             "training), what the accuracy stage compares "
                                             "with.")
    calibration: dict[str, Any] | None = Field(default=None, description="Binary: the "
                                               "positive-class probabilities calibrated on "
                                               "those rows (isotonic), for the estimate "
                                               "before actuals.")

    def feature(self, name: str) -> NumericProfile | CategoricalProfile:
        for profile in self.features:
            if profile.name == name:
                return profile
        raise KeyError(name)


def build_baseline(package: ModelPackage, training: pa.Table, *,
                   holdout: pa.Table | None = None,
                   importance: Mapping[str, float] | None = None) -> Baseline:
    """Profile ``training`` (and score ``holdout``, else a training sample) for ``package``.

    ``importance``: given per feature (normalised here); default: permutation
    importance on a seeded sample of at most 2,000 training rows.

    Raises:
        SchemaError: a table lacks a required feature.
        ConfigError: ``importance`` names a feature the model does not have.
        The scoring errors of the package's scorer.
    """
    manifest = package.manifest
    features = coerce_features(_one_batch(training), manifest)
    profiles = tuple(_profile(f.name, f.type, features.columns[f.name])
                     for f in manifest.features)
    source = holdout if holdout is not None else _sample(training, PREDICTION_ROWS)
    predicted = _predict(package, source)
    predictions = _prediction_profiles(manifest, predicted)
    scored, calibration = _holdout(package, source, predicted)
    how: Literal["permutation", "given"] = "permutation" if importance is None else "given"
    weights = _permutation(package, training) if importance is None else _given(
        manifest, importance)
    return Baseline(rows=training.num_rows, features=profiles, predictions=predictions,
                    prediction_source="holdout" if holdout is not None else "training",
                    importance=weights, importance_source=how,
                    fingerprint=fingerprint((*profiles, *predictions)),
                    holdout=scored, calibration=calibration)


def fingerprint(profiles: tuple[NumericProfile | CategoricalProfile, ...]) -> str:
    """sha256 of each profile's name, kind, edges and levels (not its counts)."""
    shape = [[p.name, p.kind, list(p.edges) if isinstance(p, NumericProfile) else list(p.levels)]
             for p in profiles]
    return hashlib.sha256(json.dumps(shape, separators=(",", ":")).encode()).hexdigest()


def write_baseline(package: ModelPackage, baseline: Baseline) -> ModelPackage:
    """Put ``baseline`` into the package (replacing one there) and name it in the
    manifest; returns the package with its new digest.

    Raises:
        OSError: the package directory cannot be written.
    """
    from connectors.atomic_file import write_atomic

    write_atomic(package.path / BASELINE_NAME, baseline.model_dump_json(indent=1) + "\n")
    manifest = package.manifest.model_copy(update={"baseline": BASELINE_NAME})
    write_atomic(package.path / MANIFEST_NAME, manifest.to_yaml())
    return open_package(package.path)


def read_baseline(package: ModelPackage) -> Baseline | None:
    """The package's baseline, or None when it has none.

    Raises:
        PackageError: the manifest names a baseline that is missing or invalid.
    """
    name = package.manifest.baseline
    if name is None:
        return None
    path = package.path / name
    try:
        return Baseline.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise PackageError(f"{path}: model.yaml names this baseline but it is missing; write "
                           f"it again with `batchpred baseline {package.path} --training-data "
                           "FILE`") from None
    except ValidationError as exc:
        raise PackageError(f"{path}: not a valid baseline: {validation_message(exc)}") from exc


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    return table.combine_chunks().to_batches()[0] if table.num_rows else (
        pa.RecordBatch.from_pylist([], schema=table.schema))


def _sample(table: pa.Table, rows: int) -> pa.Table:
    if table.num_rows <= rows:
        return table
    picks = np.sort(np.random.default_rng(SEED).choice(table.num_rows, rows, replace=False))
    return table.take(pa.array(picks))


def _profile(name: str, kind: FeatureType, values: np.ndarray
             ) -> NumericProfile | CategoricalProfile:
    if kind is FeatureType.CATEGORY:
        return _categorical(name, values)
    return numeric_profile(name, np.asarray(values, dtype=np.float64))


def numeric_profile(name: str, x: np.ndarray, edges: tuple[float, ...] | None = None
                    ) -> NumericProfile:
    """The profile of ``x``: decile edges of its finite values unless ``edges`` are fixed."""
    finite = x[np.isfinite(x)]
    if edges is None:
        edges = _quantile_edges(finite, DECILES)
    some = bool(finite.size)
    sketch = sketch_edges(finite, edges)
    return NumericProfile(name=name, edges=edges, counts=_ints(numeric_counts(x, edges)),
                          sketch_edges=sketch, sketch_counts=_ints(numeric_counts(x, sketch)),
                          min=float(finite.min()) if some else None,
                          max=float(finite.max()) if some else None,
                          mean=float(finite.mean()) if some else None,
                          std=float(finite.std()) if some else None)


def sketch_edges(finite: np.ndarray, edges: tuple[float, ...]) -> tuple[float, ...]:
    """The finer profile's edges: the training min, the percentiles, the bucket edges
    and the float just above the max; so the deciles and the out-of-range counts are
    sums of its buckets (no pass of their own)."""
    if not finite.size:
        return ()
    low, high = float(finite.min()), float(finite.max())
    points = {low, float(np.nextafter(high, np.inf)), *edges,
              *_quantile_edges(finite, PERCENTILES)}
    return tuple(sorted(p for p in points if np.isfinite(p)))


def _quantile_edges(finite: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    if not finite.size:
        return ()
    edges = np.unique(np.quantile(finite, qs, method="linear"))
    return tuple(float(e) for e in edges)


def _categorical(name: str, values: np.ndarray,
                 levels: tuple[str, ...] | None = None) -> CategoricalProfile:
    labels = [level_label(v) for v in np.asarray(values, dtype=object).tolist()]
    present = [label for label in labels if label is not None]
    names, tally = np.unique(np.array(present, dtype=str), return_counts=True)
    seen = tuple(str(n) for n in names)
    if levels is None:  # most frequent first, ties by label
        order = sorted(zip(tally.tolist(), seen, strict=True), key=lambda t: (-t[0], t[1]))
        levels = tuple(label for _, label in order[:TOP_LEVELS])
    counts = category_counts(np.array(labels, dtype=object), levels, frozenset(seen))
    return CategoricalProfile(name=name, levels=levels, seen=seen, counts=_ints(counts))


def _ints(counts: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in counts)


def _predict(package: ModelPackage, table: pa.Table) -> np.ndarray:
    """The scorer's raw output on the rows that can be scored: values, or probabilities
    in the manifest's class order."""
    features = coerce_features(_one_batch(table), package.manifest)
    valid = features.select(features.valid)
    if not valid.rows:
        k = len(package.manifest.target.classes)
        return np.empty((0, k) if k else 0)
    return np.asarray(process_cache().get(package).predict(valid.frame), dtype=np.float64)


def _prediction_profiles(manifest: ModelManifest, raw: np.ndarray
                         ) -> tuple[NumericProfile | CategoricalProfile, ...]:
    target = manifest.target
    if target.type is TargetType.REGRESSION:
        return (numeric_profile(f"{target.name}_PREDICTION", raw.reshape(-1)),)
    classes = list(target.classes)
    if target.type is TargetType.BINARY:
        positive = classes.index(str(target.positive))
        return (numeric_profile(f"{target.name}_{target.positive}_PREDICTION", raw[:, positive],
                                PROBABILITY_EDGES),)
    per_class = tuple(numeric_profile(f"{target.name}_{label}_PREDICTION", raw[:, j],
                                      PROBABILITY_EDGES) for j, label in enumerate(classes))
    picked = np.array(classes, dtype=object)[np.argmax(raw, axis=1)] if len(raw) else (
        np.empty(0, dtype=object))
    return (*per_class, _categorical(f"{target.name}_PREDICTION", picked, tuple(classes)))


def _holdout(package: ModelPackage, source: pa.Table, predicted: np.ndarray
             ) -> tuple[dict[str, float | None], dict[str, Any] | None]:
    """The accuracy metrics of the prediction rows and, for a binary model, the
    calibration of its probabilities on them (none without the target column)."""
    manifest = package.manifest
    target = manifest.target
    if target.name not in source.column_names or not len(predicted):
        return {}, None
    features = coerce_features(_one_batch(source), manifest)
    truth = source.column(target.name).combine_chunks().filter(pa.array(features.valid))
    if target.type is TargetType.REGRESSION:
        values = predicted.reshape(-1)
        counted = accumulate(target, actual=truth, prediction=values)
        return counted.metrics(), None
    classes = [str(c) for c in target.classes]
    k = len(classes)
    if target.type is TargetType.BINARY:
        value = predicted[:, classes.index(str(target.positive))]
    else:
        value = predicted.max(axis=1)
    probabilities = pa.ListArray.from_arrays(
        pa.array(np.arange(0, len(value) * k + 1, k, dtype=np.int32)),
        pa.array(predicted.reshape(-1), pa.float64()))
    labels = pa.array([level_label(v) for v in truth.to_pylist()], pa.string())
    counted = accumulate(target, actual=labels, prediction=value, probabilities=probabilities)
    calibration = None
    if target.type is TargetType.BINARY:
        y = np.asarray(pc.equal(labels, str(target.positive)).fill_null(False))
        known = np.asarray(pc.is_in(labels, pa.array(classes)).fill_null(False))
        if known.sum() >= 2 and 0 < y[known].sum() < known.sum():
            calibration = Calibration.fit(value[known], y[known].astype(np.int64)).to_json()
    return counted.metrics(), calibration


def _given(manifest: ModelManifest, importance: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(importance) - set(manifest.feature_names))
    if unknown:
        raise ConfigError(f"--importance: {', '.join(map(repr, unknown))} is not a feature of "
                          f"the model; it has: {', '.join(manifest.feature_names)}")
    raw = {name: float(importance.get(name, 0.0)) for name in manifest.feature_names}
    return _normalised(raw)


def _normalised(raw: dict[str, float]) -> dict[str, float]:
    top = max((v for v in raw.values() if np.isfinite(v)), default=0.0)
    return {k: (max(0.0, v) / top if top > 0 and np.isfinite(v) else 0.0) for k, v in raw.items()}


def _permutation(package: ModelPackage, training: pa.Table) -> dict[str, float]:
    """Loss increase when each feature's values are shuffled (log loss for classes,
    squared error for values), on a seeded sample; normalised by the largest."""
    manifest = package.manifest
    sample = _sample(training, IMPORTANCE_ROWS)
    features = coerce_features(_one_batch(sample), manifest)
    truth = _truth(manifest, sample.column(manifest.target.name).to_numpy(zero_copy_only=False))
    keep = features.valid & ~_missing(truth)
    rows = features.select(keep)
    y = truth[keep]
    if rows.rows < 2:
        return dict.fromkeys(manifest.feature_names, 0.0)
    scorer = process_cache().get(package)
    base = _loss(manifest, np.asarray(scorer.predict(rows.frame), dtype=np.float64), y)
    rng = np.random.default_rng(SEED)
    raw = {}
    for name in manifest.feature_names:
        shuffled = dict(rows.columns)
        shuffled[name] = rows.columns[name][rng.permutation(rows.rows)]
        frame = FeatureFrame(shuffled, rows.rows, None).frame
        raw[name] = _loss(manifest, np.asarray(scorer.predict(frame), dtype=np.float64), y) - base
    return _normalised(raw)


def _truth(manifest: ModelManifest, values: np.ndarray) -> np.ndarray:
    if manifest.target.type is TargetType.REGRESSION:
        return np.asarray(values, dtype=np.float64)
    index = {label: i for i, label in enumerate(manifest.target.classes)}
    return np.array([index.get(level_label(v) or "", -1) for v in values.tolist()],
                    dtype=np.float64)


def _missing(truth: np.ndarray) -> np.ndarray:
    return ~np.isfinite(truth) | (truth < 0)


def _loss(manifest: ModelManifest, raw: np.ndarray, y: np.ndarray) -> float:
    if manifest.target.type is TargetType.REGRESSION:
        return float(np.mean((raw.reshape(-1) - y) ** 2))
    p = np.clip(raw[np.arange(len(y)), y.astype(np.int64)], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def read_importance(path: Path) -> dict[str, float]:
    """Feature importance from a YAML or JSON mapping ``feature: value``.

    Raises:
        ConfigError: the file cannot be read or is not such a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--importance {path}: cannot read it: {exc.strerror or exc}"
                          ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"--importance {path}: not valid YAML: {yaml_message(exc)}") from exc
    if not isinstance(data, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()):
        raise ConfigError(f"--importance {path}: expected a mapping of feature: number")
    return {str(k): float(v) for k, v in data.items()}
