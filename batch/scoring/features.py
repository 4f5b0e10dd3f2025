"""Fitting input columns to a model's feature schema.

Whole-input problems (a missing required column, a column of a type that can
never hold the feature) raise :class:`SchemaError` before anything is scored.
Value problems (``'abc'`` in a number column) mark just that row: the row's
reason names the column and the value, and the other rows score normally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import SchemaError
from batch.models.manifest import Feature, FeatureType, ModelManifest

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True, slots=True)
class FeatureFrame:
    """Model-ready features plus, per row, why it cannot be scored (or None).

    The columns are numpy arrays (floats; objects for categories, NaN where
    missing). A scorer that takes arrays gets them as they are; :attr:`frame`
    builds a DataFrame for one that takes a frame.
    """

    columns: dict[str, np.ndarray]  # feature name -> values, in schema order
    rows: int
    reasons: np.ndarray | None  # object array of str/None, or None when every row is fine
    category_missing: np.ndarray | None = None  # rows missing a category (None: no such row)
    # per category: its distinct values (NaN last) and each row's position among them
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def valid(self) -> np.ndarray:
        if self.reasons is None:
            return np.ones(self.rows, dtype=bool)
        return np.array([r is None for r in self.reasons], dtype=bool)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns, index=pd.RangeIndex(self.rows))

    def select(self, keep: np.ndarray) -> FeatureFrame:
        """Only the rows where ``keep`` (a boolean mask) is true, renumbered from 0."""
        missing = self.category_missing
        return FeatureFrame(
            {name: values[keep] for name, values in self.columns.items()}, int(keep.sum()),
            None if self.reasons is None else self.reasons[keep],
            None if missing is None else missing[keep],
            None if self.codes is None else {
                name: (labels, codes[keep]) for name, (labels, codes) in self.codes.items()},
        )


def check_schema(manifest: ModelManifest, schema: pa.Schema, *, source: str = "input") -> None:
    """Raise :class:`SchemaError` if a required feature column is absent or unusable."""
    names = set(schema.names)
    missing = [f.name for f in manifest.features if f.required and f.name not in names]
    if missing:
        cols = ", ".join(repr(m) for m in missing)
        noun = "columns" if len(missing) > 1 else "column"
        raise SchemaError(
            f"{source} has no {noun} {cols} required by model '{manifest.name}'; "
            f"it has: {', '.join(schema.names) or '(no columns)'}"
        )
    for feature in manifest.features:
        if feature.name in names:
            _check_type(feature, schema.field(feature.name).type, source)


def _check_type(feature: Feature, typ: pa.DataType, source: str) -> None:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    usable = (
        pa.types.is_null(typ)
        or pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_integer(typ)
        or pa.types.is_floating(typ)
        or pa.types.is_decimal(typ)
        or pa.types.is_boolean(typ)
    )
    if not usable:
        raise SchemaError(
            f"{source} column '{feature.name}' has type {typ}, which cannot hold a "
            f"{feature.type} feature"
        )


def coerce_features(batch: pa.RecordBatch, manifest: ModelManifest) -> FeatureFrame:
    """Build the model's input frame from ``batch`` (columns in schema order)."""
    n = batch.num_rows
    reasons: np.ndarray | None = None
    columns: dict[str, np.ndarray] = {}
    category_missing: np.ndarray | None = None
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for feature in manifest.features:
        idx = batch.schema.get_field_index(feature.name)
        arr = batch.column(idx) if idx >= 0 else pa.nulls(n)
        if pa.types.is_dictionary(arr.type) and (
                feature.type is not FeatureType.CATEGORY or arr.dictionary.null_count):
            arr = arr.dictionary_decode()  # a category's rows keep their dictionary
        if feature.type is FeatureType.CATEGORY:
            labels, positions = _category_codes(arr)
            values, bad = labels[positions], None
            codes[feature.name] = (labels, positions)
        else:
            values, bad = _coerce(feature, arr)
        columns[feature.name] = values
        if feature.type is FeatureType.CATEGORY and arr.null_count:
            absent = arr.is_null().to_numpy(zero_copy_only=False)
            category_missing = absent if category_missing is None else category_missing | absent
        if bad is not None and bad.any():
            if reasons is None:
                reasons = np.full(n, None, dtype=object)
            for i in np.flatnonzero(bad):
                msg = (f"column '{feature.name}' has {arr[int(i)].as_py()!r} "
                       f"(expected {_expected(feature)})")
                reasons[i] = msg if reasons[i] is None else f"{reasons[i]}; {msg}"
    return FeatureFrame(columns, n, reasons, category_missing, codes)


def _expected(feature: Feature) -> str:
    return {
        FeatureType.NUMBER: "a number",
        FeatureType.INTEGER: "an integer",
        FeatureType.CATEGORY: "a category",
        FeatureType.BOOLEAN: "true or false",
    }[feature.type]


def _coerce(feature: Feature, arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    if feature.type is FeatureType.BOOLEAN:
        return _to_boolean(arr)
    values, bad = _to_number(arr)
    # models reject infinity for the whole chunk, so it is a bad value of its own row
    wrong = np.isinf(values)
    if feature.type is FeatureType.INTEGER:
        wrong |= np.isfinite(values) & (values != np.floor(values))
    if wrong.any():
        bad = wrong if bad is None else bad | wrong
        values = np.where(wrong, np.nan, values)
    return values, bad


def _is_text(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ)


def _to_number(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    if not _is_text(arr.type):
        # int -> float and decimal -> float are the safe upcasts
        return _float_numpy(_as_float64(arr)), None
    try:  # the common case: clean numbers, parsed in C++
        return _float_numpy(pc.cast(arr, pa.float64())), None
    except pa.ArrowInvalid:
        pass  # blanks, padding or a value that is not a number: find which, vectorised
    trimmed = pc.utf8_trim_whitespace(arr)
    trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    try:
        return _float_numpy(pc.cast(trimmed, pa.float64())), None
    except pa.ArrowInvalid:
        pass
    as_pd = trimmed.to_pandas()
    values = pd.to_numeric(as_pd, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & as_pd.notna().to_numpy() & ~as_pd.str.lower().isin(
        ["nan", "na", "n/a", "null", "none", "-nan"]
    ).to_numpy()
    return values, bad


def _float_numpy(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _as_float64(arr: pa.Array) -> pa.Array:
    return arr if arr.type == pa.float64() else pc.cast(arr, pa.float64())


def _category_codes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (NaN last, for missing) and each row's position among them:
    one Python string per distinct value, shared by its rows (not one per row)."""
    if pa.types.is_null(arr.type):
        return np.array([np.nan], dtype=object), np.zeros(len(arr), dtype=np.intp)
    encoded = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    values = encoded.dictionary
    if not _is_text(values.type):
        values = pc.cast(values, pa.string())  # Arrow spells 3.0 as "3", as a CSV would
    labels = np.empty(len(values) + 1, dtype=object)
    labels[:-1] = values.to_numpy(zero_copy_only=False)
    labels[-1] = np.nan
    codes = pc.fill_null(encoded.indices, len(labels) - 1)
    return labels, codes.to_numpy(zero_copy_only=False).astype(np.intp, copy=False)


def _to_boolean(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
        return _float_numpy(pc.cast(arr, pa.float64())), None
    if not _is_text(arr.type):
        values = _float_numpy(pc.cast(arr, pa.float64()))
        bad = ~np.isnan(values) & ~np.isin(values, [0.0, 1.0])
        return np.where(bad, np.nan, values), bad
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    values = np.full(len(arr), np.nan)
    values[_mask(pc.is_in(lowered, value_set=pa.array(sorted(_TRUE))))] = 1.0
    values[_mask(pc.is_in(lowered, value_set=pa.array(sorted(_FALSE))))] = 0.0
    bad = np.isnan(values) & _mask(pc.not_equal(lowered, ""))
    return values, bad


def _mask(arr: pa.Array) -> np.ndarray:
    """A boolean array as numpy, null as false."""
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
