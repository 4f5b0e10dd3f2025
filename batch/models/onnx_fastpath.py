"""Scoring scikit-learn models with onnxruntime where the conversion is exact.

:func:`build_fast_path` converts a package's estimator with skl2onnx and
scores a sample with both; the ONNX model is used only when every
prediction agrees within :data:`TOLERANCE`. Otherwise the reason is reported
and the job scores with scikit-learn as before. The verdict is kept beside the
converted model (by package digest), so later jobs of the same package start
scoring at once, without loading scikit-learn.

The converted model takes one input per column when the estimator starts
with a ColumnTransformer (numbers as float, categories as strings), or one
float matrix for an all-numeric estimator. Rows with a missing category are
scored by scikit-learn, since encoders may treat a missing value as a
category of its own where the ONNX model cannot.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batch.errors import PackageError, UserCodeError
from batch.models.loaders.base import Scorer, class_labels
from batch.models.manifest import FeatureType, ModelManifest, TargetType
from batch.models.package import ModelPackage
from connectors.atomic_file import write_atomic

TOLERANCE = 1e-6
CLASSES_KEY = "batchpred.classes"  # the estimator's class order, as JSON, in the ONNX metadata
_OPSETS = {"": 17, "ai.onnx.ml": 3}
_CONVERTER_REVISION = 2  # 2: HistGradientBoosting models convert


@dataclass(frozen=True, slots=True)
class FastPath:
    """An exact ONNX model for a package, or why there is none."""

    model: bytes | None
    note: str  # "onnxruntime (max |diff| 4.0e-07 on 2,000 rows)" or "scikit-learn: <why>"


def _head(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[0][1] if steps else estimator


def _inputs(estimator: Any, manifest: ModelManifest) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    features = manifest.features
    if type(_head(estimator)).__name__ == "ColumnTransformer":
        return [(f.name, StringTensorType([None, 1]) if f.type is FeatureType.CATEGORY
                 else FloatTensorType([None, 1])) for f in features]
    if any(f.type is FeatureType.CATEGORY for f in features):
        raise ValueError("categorical features without a ColumnTransformer")
    return [("X", FloatTensorType([None, len(features)]))]


def convert(estimator: Any, manifest: ModelManifest) -> bytes:
    """The estimator as an ONNX model (probabilities as a tensor, no ZipMap).

    Raises:
        ImportError: skl2onnx is not installed.
        Exception: skl2onnx cannot convert the estimator (any error it raises).
    """
    from skl2onnx import convert_sklearn

    options = None
    if manifest.target.type is not TargetType.REGRESSION:
        options = {id(estimator): {"zipmap": False}}
    with _int_missing_value_flags():
        onx = convert_sklearn(estimator, initial_types=_inputs(estimator, manifest),
                              options=options, target_opset=_OPSETS)
    if options is not None:
        entry = onx.metadata_props.add()
        entry.key, entry.value = CLASSES_KEY, json.dumps(class_labels(estimator.classes_))
    return bytes(onx.SerializeToString())


@contextlib.contextmanager
def _int_missing_value_flags() -> Iterator[None]:
    """Give skl2onnx's tree nodes their missing-value flag as an int.

    skl2onnx (1.20 at least) passes a leaf's ``nodes_missing_value_tracks_true``
    as ``False`` when it converts a HistGradientBoosting model, and onnx
    rejects a bool in an int attribute, so no such model would convert. The
    values are the same; only their type changes, for this conversion.
    """
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(
            nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


class FastScorer:
    """onnxruntime for most rows, the scikit-learn scorer for the rest.

    ``fallback`` gives the scikit-learn scorer; it is called (and so the
    estimator loaded) only when a chunk has a row with a missing category.
    """

    def __init__(self, package: ModelPackage, model: bytes, fallback: Callable[[], Scorer],
                 threads: int = 1) -> None:
        from batch.models.loaders.onnx import new_session

        self._session = new_session(model, threads)
        self._label = package.label
        self._fallback = fallback
        manifest = package.manifest
        self._regression = manifest.target.type is TargetType.REGRESSION
        inputs = [i.name for i in self._session.get_inputs()]
        # one float matrix of every feature, in manifest order (a wrong order fails the check)
        self._columns = list(manifest.feature_names) if inputs == ["X"] else None
        self._text = {f.name for f in manifest.features if f.type is FeatureType.CATEGORY}
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = outputs[0] if self._regression else outputs[-1]
        self._order = self._class_order(package)

    def _class_order(self, package: ModelPackage) -> np.ndarray | None:
        """Output column of each manifest class (the estimator's order, kept by convert)."""
        if self._regression:
            return None
        meta = self._session.get_modelmeta().custom_metadata_map
        model_classes = json.loads(meta.get(CLASSES_KEY, "[]"))
        missing = [c for c in package.manifest.target.classes if c not in model_classes]
        if missing:
            raise PackageError(f"{self._label}: the ONNX model has no classes {missing}")
        return np.array([model_classes.index(c) for c in package.manifest.target.classes])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Score a DataFrame of feature columns (see :meth:`predict_columns`)."""
        missing = None
        if self._text:
            missing = frame[sorted(self._text)].isna().any(axis=1).to_numpy()
        columns = {name: frame[name].to_numpy() for name in frame.columns}
        return self.predict_columns(columns, len(frame), missing)

    def predict_columns(self, columns: Mapping[str, np.ndarray], rows: int,
                        category_missing: np.ndarray | None = None) -> np.ndarray:
        """Score feature columns (as :func:`batch.scoring.features.coerce_features` makes them);
        the rows in ``category_missing`` go to scikit-learn."""
        missing = category_missing if category_missing is not None and category_missing.any() \
            else None
        try:
            (out,) = self._session.run([self._output], self._feed(columns, missing))
        except Exception as exc:
            raise UserCodeError(f"{self._label}: onnxruntime raised: {exc}") from exc
        values = np.asarray(out, dtype=np.float64)
        if self._regression:
            values = values.reshape(rows, -1)[:, 0]
        elif self._order is not None:
            values = values[:, self._order]
        if missing is not None:
            picked = np.flatnonzero(missing)
            frame = pd.DataFrame({name: values_[picked] for name, values_ in columns.items()})
            values[picked] = self._fallback().predict(frame)
        return values

    def _feed(self, columns: Mapping[str, np.ndarray], missing: np.ndarray | None
              ) -> dict[str, np.ndarray]:
        if self._columns is not None:
            return {"X": np.column_stack(
                [np.asarray(columns[name], dtype=np.float32) for name in self._columns])}
        feed: dict[str, np.ndarray] = {}
        for name, column in columns.items():
            if name in self._text:
                column = np.asarray(column, dtype=object)
                if missing is not None:  # those rows are scored by scikit-learn
                    column = column.copy()
                    column[missing] = ""
                feed[name] = column.reshape(-1, 1)
            else:
                feed[name] = np.asarray(column, dtype=np.float32).reshape(-1, 1)
        return feed


def build_fast_path(package: ModelPackage, estimator: Any, reference: Scorer,
                    sample: pd.DataFrame, *, cache: Path | None = None) -> FastPath:
    """The verdict kept in ``cache``, or else: convert, check on ``sample`` (valid,
    coerced feature rows) and keep the verdict (the model only if it passed)."""
    kept = kept_fast_path(package, cache)
    if kept is not None:
        return kept
    if len(sample) == 0:
        return FastPath(None, "scikit-learn: no sample rows to check an ONNX conversion on")
    try:
        model = convert(estimator, package.manifest)
        got = FastScorer(package, model, lambda: reference).predict(sample)
    except ImportError:
        return FastPath(None, "scikit-learn: skl2onnx is not installed")
    except Exception as exc:  # skl2onnx and onnxruntime raise many kinds
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return _keep(cache, package, FastPath(
            None, f"scikit-learn: no ONNX conversion ({type(exc).__name__}: {first})"))
    want = reference.predict(sample)
    if got.shape != want.shape:
        return _keep(cache, package, FastPath(
            None, f"scikit-learn: ONNX output shape {got.shape} != {want.shape}"))
    diff = float(np.nanmax(np.abs(got - want))) if got.size else 0.0
    if not np.isfinite(got).all() or diff > TOLERANCE:
        return _keep(cache, package, FastPath(
            None, f"scikit-learn: ONNX differs by {diff:.1e} (> {TOLERANCE:g}) on "
                  f"{len(sample):,} sample rows"))
    return _keep(cache, package, FastPath(
        model, f"onnxruntime (max |diff| {diff:.1e} on {len(sample):,} rows when converted)"))


def model_path(cache: Path, package: ModelPackage) -> Path:
    """Where the checked conversion of ``package`` is kept (by its digest and the
    converter's revision, so a better converter tries again)."""
    return cache / f"{package.digest}.r{_CONVERTER_REVISION}.onnx"


def verdict_path(cache: Path, package: ModelPackage) -> Path:
    """Where the verdict on ``package``'s conversion is kept: the note of its
    :class:`FastPath` (written last, so a verdict that exists is complete)."""
    return cache / f"{package.digest}.r{_CONVERTER_REVISION}.verdict"


def kept_fast_path(package: ModelPackage, cache: Path | None) -> FastPath | None:
    """The verdict an earlier job kept for ``package`` (None: not tried yet)."""
    if cache is None:
        return None
    try:
        note = verdict_path(cache, package).read_text()
        model = model_path(cache, package).read_bytes() if note.startswith("onnxruntime") else None
    except OSError:
        return None
    return FastPath(model, note)


def _keep(cache: Path | None, package: ModelPackage, fast: FastPath) -> FastPath:
    """Keep ``fast`` in ``cache``; a cache that cannot be written only means
    converting and checking again next time."""
    if cache is None:
        return fast
    files = [(model_path(cache, package), fast.model)] if fast.model is not None else []
    files.append((verdict_path(cache, package), fast.note.encode()))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for path, data in files:
            write_atomic(path, data)
    except OSError:
        pass
    return fast
