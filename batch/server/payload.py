"""Request bodies to Arrow: CSV or JSON records, read the way a batch job reads its input.

CSV goes through the batch intake's own reader (:func:`connectors.formats.csv_reader`):
feature columns are read as text and coerced by the scoring code, so a value
scores the same over HTTP as in a job. JSON records get the same treatment: a
feature value becomes its text (``3.5`` -> ``"3.5"``, Python's shortest round-trip
spelling, which parses back to the same float).
"""

from __future__ import annotations

import codecs
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from batch.server.errors import PayloadFormatError, UnsupportedMediaTypeError
from connectors.error_rows import without_row
from connectors.formats import FileOptions, csv_reader

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
JSON_TYPES = ("application/json", "text/json")
MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class MediaType:
    """A ``Content-Type`` header: the lower-case type and its charset (default UTF-8)."""

    type: str
    charset: str = "utf-8"

    @classmethod
    def parse(cls, header: str | None) -> MediaType:
        """Raises :class:`UnsupportedMediaTypeError` for a charset Python does not know."""
        kind, *params = (header or "").split(";")
        charset = "utf-8"
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"').lower()
        try:
            codecs.lookup(charset)
        except LookupError as exc:
            raise UnsupportedMediaTypeError(f"unknown charset {charset!r} in Content-Type") \
                from exc
        return cls(kind.strip().lower(), charset)

    @property
    def is_csv(self) -> bool:
        return self.type in CSV_TYPES

    @property
    def is_json(self) -> bool:
        return self.type in JSON_TYPES


def unsupported(header: str | None) -> UnsupportedMediaTypeError:
    """The error for a body of a type the shim does not read."""
    given = f"Content-Type {header!r}" if header else "no Content-Type"
    return UnsupportedMediaTypeError(
        f"{given}: send text/csv, application/json (records, or {{\"data\": [...]}}) "
        "or a multipart/form-data field named 'file'"
    )


def read_rows(body: bytes, media: MediaType, feature_names: Sequence[str]) -> pa.RecordBatch:
    """The rows of a CSV or JSON ``body`` as one batch.

    Raises:
        PayloadFormatError: an empty body, malformed CSV or JSON, or no rows.
        UnsupportedMediaTypeError: ``media`` is neither CSV nor JSON.
    """
    if not body.strip():
        raise PayloadFormatError("the request body is empty; send CSV with a header row "
                                 "or JSON records")
    if media.is_csv:
        batch = _csv_rows(body, media.charset, feature_names)
    elif media.is_json:
        batch = _json_rows(body, media.charset, feature_names)
    else:
        raise unsupported(media.type)
    if batch.num_rows == 0:
        raise PayloadFormatError("the request body has no rows (only a header?)")
    return batch


def _csv_rows(body: bytes, charset: str, feature_names: Sequence[str]) -> pa.RecordBatch:
    try:
        reader = csv_reader(io.BytesIO(body), "request body", FileOptions(encoding=charset),
                            feature_names)
        table = reader.read_all()
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise PayloadFormatError(f"malformed CSV: {without_row(str(exc)).strip()}") from exc
    for name, typ in zip(table.schema.names, table.schema.types, strict=True):
        if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            raise PayloadFormatError(f"column '{name}' holds bytes that are not valid "
                                     f"{charset}; give the body's charset in Content-Type")
    return _one_batch(table)


def _json_rows(body: bytes, charset: str, feature_names: Sequence[str]) -> pa.RecordBatch:
    try:
        data = json.loads(body.decode(charset))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadFormatError(f"malformed JSON: {exc}") from exc
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise PayloadFormatError("JSON body must be an array of records or {\"data\": [...]}, "
                                 f"got {type(data).__name__}")
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise PayloadFormatError(f"JSON record {i} is {type(record).__name__}, "
                                     "expected an object of column: value")
    names = list(dict.fromkeys(key for record in data for key in record))
    features = set(feature_names)
    arrays = [_feature_array(n, data) if n in features else _other_array(n, data)
              for n in names]
    return pa.RecordBatch.from_arrays(arrays, names=names) if names else \
        pa.RecordBatch.from_pylist([{} for _ in data])


def _feature_array(name: str, records: list[dict[str, Any]]) -> pa.Array:
    """A feature column as text, as the CSV reader gives it."""
    return pa.array([_text(name, i, r.get(name)) for i, r in enumerate(records)], pa.string())


def _text(name: str, row: int, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)
    raise PayloadFormatError(f"JSON record {row}: column '{name}' has a "
                             f"{type(value).__name__}, expected a number, text, true/false "
                             "or null")


def _other_array(name: str, records: list[dict[str, Any]]) -> pa.Array:
    """A column the model does not read (passthrough only): its JSON types where Arrow
    can hold them in one column, else each value's JSON text."""
    values = [r.get(name) for r in records]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # an int beyond int64 too
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v)
                         for v in values], pa.string())


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
