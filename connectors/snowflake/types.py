"""Arrow types <-> Snowflake column types, and checks against an existing table.

=============================  ==================================
Arrow                          Snowflake
=============================  ==================================
int8..int64, uint8..uint64     NUMBER(38,0)
float16/32/64                  FLOAT
string, large_string           VARCHAR
bool                           BOOLEAN
timestamp (naive / with tz)    TIMESTAMP_NTZ / TIMESTAMP_TZ
date32, date64                 DATE
decimal128(p, s), p <= 38      NUMBER(p,s)
binary                         BINARY
time32/64                      TIME
null (an all-empty column)     VARCHAR
dictionary<values>             as its values
=============================  ==================================

Anything else (lists, structs, maps) has no mapping here and fails early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from snowflake.connector.constants import FIELD_ID_TO_NAME

from connectors.errors import OutputError

# Snowflake data types (as INFORMATION_SCHEMA.COLUMNS spells them) by family
_FAMILIES = {
    "number": {"NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT", "SMALLINT",
               "TINYINT", "BYTEINT", "FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "REAL",
               "DOUBLE PRECISION"},
    "text": {"TEXT", "VARCHAR", "STRING", "CHAR", "CHARACTER", "NCHAR", "NVARCHAR"},
    "boolean": {"BOOLEAN"},
    "timestamp": {"TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ", "TIMESTAMP", "DATETIME"},
    "date": {"DATE"},
    "binary": {"BINARY", "VARBINARY"},
    "time": {"TIME"},
}
# which target families take values of each Arrow family
_ACCEPTS = {"number": {"number"}, "text": {"text"}, "boolean": {"boolean"},
            "timestamp": {"timestamp"}, "date": {"date", "timestamp"},
            "binary": {"binary"}, "time": {"time"}}


@dataclass(frozen=True, slots=True)
class TargetColumn:
    """A column of an existing table, from INFORMATION_SCHEMA.COLUMNS."""

    name: str
    data_type: str
    scale: int | None = None


def _values(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def family(t: pa.DataType) -> str | None:
    """The Snowflake family an Arrow type maps to, or None when it has none."""
    t = _values(t)
    checks = [
        ("number", pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)),
        ("text", pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)),
        ("boolean", pa.types.is_boolean(t)),
        ("timestamp", pa.types.is_timestamp(t)),
        ("date", pa.types.is_date(t)),
        ("binary", pa.types.is_binary(t) or pa.types.is_large_binary(t)
         or pa.types.is_fixed_size_binary(t)),
        ("time", pa.types.is_time(t)),
    ]
    return next((name for name, hit in checks if hit), None)


def snowflake_type(field: pa.Field) -> str:
    """The Snowflake column type for ``field``.

    Raises:
        OutputError: the type has no mapping (names the column and the type).
    """
    t = _values(field.type)
    if pa.types.is_decimal(t) and t.precision <= 38:
        return f"NUMBER({t.precision},{t.scale})"
    if pa.types.is_integer(t):
        return "NUMBER(38,0)"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_TZ" if t.tz else "TIMESTAMP_NTZ"
    simple = {"number": "FLOAT", "text": "VARCHAR", "boolean": "BOOLEAN", "date": "DATE",
              "binary": "BINARY", "time": "TIME"}
    kind = family(t)
    if kind is None or pa.types.is_decimal(t):
        raise OutputError(f"column '{field.name}' has Arrow type {field.type}, which has no "
                          "Snowflake column type here; cast it to a string or number first")
    return simple[kind]


def staging_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type a column is written to Parquet as, for COPY INTO to load.

    Dictionaries are decoded, text is plain ``string``, timestamps are
    microseconds (what Snowflake and DuckDB both load from Parquet).
    """
    t = _values(t)
    if pa.types.is_large_string(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time64("us")
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    return t


def match_columns(schema: pa.Schema, target: Sequence[TargetColumn], *, table: str
                  ) -> dict[str, str]:
    """Map each column of ``schema`` to a column of the existing ``target`` table.

    Names match exactly, else case-insensitively when that is unambiguous
    (``id`` finds ``ID``, the name an unquoted ``id`` gets in Snowflake).

    Raises:
        OutputError: a column is missing from the table or has an incompatible
            type; the message names the column, both types and the table.
    """
    by_name = {c.name: c for c in target}
    by_upper: dict[str, list[TargetColumn]] = {}
    for c in target:
        by_upper.setdefault(c.name.upper(), []).append(c)
    mapping: dict[str, str] = {}
    for field in schema:
        col = by_name.get(field.name)
        if col is None and len(by_upper.get(field.name.upper(), [])) == 1:
            col = by_upper[field.name.upper()][0]
        if col is None:
            have = ", ".join(c.name for c in target)
            raise OutputError(f"column '{field.name}' is missing from table {table} "
                              f"(it has: {have}); add it or write to a new table (mode=create)")
        _check_type(field, col, table)
        mapping[field.name] = col.name
    return mapping


def _check_type(field: pa.Field, col: TargetColumn, table: str) -> None:
    if pa.types.is_null(_values(field.type)):
        return  # an all-NULL column fits any column
    kind = family(field.type)
    target_kind = next((k for k, names in _FAMILIES.items() if col.data_type.upper() in names),
                       None)
    ok = kind is not None and target_kind in _ACCEPTS[kind]
    if ok and pa.types.is_floating(_values(field.type)) and col.scale == 0:
        ok = False  # a float into NUMBER(p,0) would silently round to integers
    if not ok:
        scale = f"(scale {col.scale})" if col.scale is not None else ""
        raise OutputError(
            f"column '{field.name}' holds {field.type} but column '{col.name}' of table {table} "
            f"is {col.data_type}{scale}; cast the column or write to a new table (mode=create)"
        )


def arrow_type(meta: Any) -> pa.DataType:
    """The Arrow type of a result column from cursor.description (for empty results)."""
    name = FIELD_ID_TO_NAME[meta.type_code]
    if name == "FIXED":
        scale = meta.scale or 0
        return pa.int64() if scale == 0 else pa.decimal128(meta.precision or 38, scale)
    simple = {"REAL": pa.float64(), "TEXT": pa.string(), "BOOLEAN": pa.bool_(),
              "DATE": pa.date32(), "BINARY": pa.binary(), "TIME": pa.time64("us"),
              "TIMESTAMP_NTZ": pa.timestamp("us"), "TIMESTAMP_LTZ": pa.timestamp("us", "UTC"),
              "TIMESTAMP_TZ": pa.timestamp("us", "UTC")}
    return simple.get(name, pa.string())


def description_schema(description: Sequence[Any]) -> pa.Schema:
    """The Arrow schema of a result, from ``cursor.description``."""
    return pa.schema([pa.field(m.name, arrow_type(m)) for m in description])
