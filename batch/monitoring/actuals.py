"""Actual outcomes checked against a deployment's target, and made ``actuals`` records.

An upload's rows come in chunks (record batches from any intake);
:class:`ActualsChecker` keeps each chunk's good rows (the values the record
schema holds) and tallies the bad ones in :class:`BadRows`, by reason, with the
first few rows of each; :func:`actuals_table` adds who and when to the good rows.

The rules (docs/monitoring.md, "Actuals"):

- association id: present, not blank, at most 128 characters; compared as text,
  as it is given (no spaces dropped): an integer column's 17 is ``"17"``, text
  keeps its leading zeros.
- regression: a finite number (a number column, or text such as ``12.5``, ``-3``,
  ``1e6``); NaN and empty count as no actual.
- classification: compared as text with the classes (spaces around it dropped);
  a number also matches the class that is the same number (``1.0`` is class
  ``"1"``). A binary target also takes truth values (``true``/``false`` in any
  case, ``1``/``0``, a boolean column): for classes that are truth values
  themselves (``0``/``1``, ``False``/``True``) the class of the same value; for
  any other pair (``no``/``yes``) true is the positive class, false the other.
  What is stored is the class as the target spells it.
- timestamp (optional column): an ISO 8601 date or time, UTC unless it has a zone.
- was_acted_on (optional column): true/false, t/f, yes/no, y/n, 1/0 in any case.
  Both optional columns may be empty (stored as null).

A bad row counts once, under the first reason of :data:`REASONS` it meets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import ConfigError, SchemaError
from batch.models.kinds import TargetType
from batch.models.manifest import Target
from batch.monitoring.records import ACTUALS_SCHEMA, SCHEMA_VERSION, hour_of

MAX_ID_CHARS = 128
EXAMPLES = 5  # rows shown per reason
REASONS = {  # code: what the report says, in the order a row is judged
    "missing_id": "no association id",
    "long_id": f"association id longer than {MAX_ID_CHARS} characters",
    "missing_actual": "no actual (empty, null or NaN)",
    "not_a_number": "not a number",
    "not_finite": "not a finite number",
    "not_a_class": "not a class of the target",
    "bad_timestamp": "not an ISO 8601 date or time",
    "bad_was_acted_on": "not true or false",
}
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NOT_FINITE = r"^[+-]?([iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])$"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_VALUES = ["association_id", "seq", "actual_value", "actual_label", "timestamp",
           "was_acted_on"]
_VALUE_SCHEMA = pa.schema([ACTUALS_SCHEMA.field(name) for name in _VALUES])


@dataclass(frozen=True, slots=True)
class ActualColumns:
    """The input columns an upload reads."""

    association_id: str
    actual: str
    timestamp: str | None = None
    was_acted_on: str | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.association_id, self.actual, self.timestamp,
                                 self.was_acted_on) if n is not None)

    def check(self, schema: pa.Schema, *, source: str) -> None:
        """Raises:
            ConfigError: one column given for two purposes.
            SchemaError: a column is missing (the input's columns listed), or holds a type
                no value of it can be read from.
        """
        names = self.names()
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"column {twice[0]!r} is given for two of --association-id-"
                              "column, --actual-column, --timestamp-column and "
                              "--was-acted-on-column")
        for option, name in self._options():
            if name not in schema.names:
                raise SchemaError(f"{source} has no column {name!r} ({option}); its columns: "
                                  f"{', '.join(schema.names) or '(none)'}")
            kind = schema.field(name).type
            if not _readable(kind, option):
                raise SchemaError(f"{source}: column {name!r} ({option}) holds {kind}, which "
                                  "cannot be read as " + _WANTED[option])

    def _options(self) -> list[tuple[str, str]]:
        pairs = [("--association-id-column", self.association_id),
                 ("--actual-column", self.actual), ("--timestamp-column", self.timestamp),
                 ("--was-acted-on-column", self.was_acted_on)]
        return [(option, name) for option, name in pairs if name is not None]


_WANTED = {"--association-id-column": "an id (text or a number)",
           "--actual-column": "an actual (text, a number or a boolean)",
           "--timestamp-column": "a time (text, a timestamp or a date)",
           "--was-acted-on-column": "true or false (text, a boolean or a number)"}


def _readable(kind: pa.DataType, option: str) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind) or \
        pa.types.is_string_view(kind) or pa.types.is_null(kind)
    number = pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
        pa.types.is_decimal(kind)
    if option == "--timestamp-column":
        return text or pa.types.is_timestamp(kind) or pa.types.is_date(kind)
    if option == "--association-id-column":
        return text or number
    return text or number or pa.types.is_boolean(kind)


@dataclass(frozen=True, slots=True)
class Example:
    row: int  # the input's data row, counted from 1 (a header is no row)
    value: str | None  # as read (cut to 80 characters); None: empty or null


@dataclass(slots=True)
class BadRows:
    """Bad rows of an upload by reason (a code of :data:`REASONS`), with the first few."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: str, rows: np.ndarray, values: list[Any]) -> None:
        """Count ``rows`` (0-based row numbers, ascending) under ``reason``; ``values``
        are the values of the first of them, for the examples."""
        self.counts[reason] = self.counts.get(reason, 0) + len(rows)
        shown = self.examples.setdefault(reason, [])
        for row, value in zip(rows[:EXAMPLES - len(shown)].tolist(), values, strict=False):
            shown.append(Example(row + 1, _shown(value)))

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "reasons": {
            code: {"count": self.counts[code], "what": REASONS[code],
                   "examples": [{"row": e.row, "value": e.value}
                                for e in self.examples.get(code, [])]}
            for code in REASONS if self.counts.get(code)}}


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"


class ActualsChecker:
    """Sorts the rows of each chunk of an upload into good (returned) and bad (tallied)."""

    def __init__(self, columns: ActualColumns, target: Target) -> None:
        self.columns = columns
        self.target = target
        self.bad = BadRows()
        self._classes = None if target.type is TargetType.REGRESSION else _Classes(target)

    def check(self, batch: pa.RecordBatch, first_row: int) -> pa.Table:
        """The good rows of ``batch`` (rows ``first_row``... of the upload) as the value
        columns of an ``actuals`` record: association_id, seq, actual_value,
        actual_label, timestamp, was_acted_on."""
        ids = _as_string(batch.column(self.columns.association_id))
        trials: list[tuple[str, pa.Array, pa.Array]] = [  # reason, bad mask, shown values
            ("missing_id", pc.or_kleene(pc.is_null(ids), pc.equal(
                pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0)), ids),
            ("long_id", pc.greater(pc.utf8_length(ids), MAX_ID_CHARS), ids)]
        raw = batch.column(self.columns.actual)
        if self._classes is None:
            value, label, more = _numbers(raw)
        else:
            label, more = self._classes.labels(raw)
            value = pa.nulls(len(raw), pa.float64())
        trials += more
        stamps, was = _optional(batch, self.columns, trials)
        good = _judge(trials, self.bad, first_row)
        seq = pa.array(np.arange(first_row, first_row + batch.num_rows, dtype=np.int64))
        arrays = [ids, seq, value, label, stamps, was]
        return pa.Table.from_arrays([a.filter(good) for a in arrays], schema=_VALUE_SCHEMA)


def _optional(batch: pa.RecordBatch, columns: ActualColumns,
              trials: list[tuple[str, pa.Array, pa.Array]]) -> tuple[pa.Array, pa.Array]:
    """The timestamp and was_acted_on values (nulls without their columns); their bad
    values join ``trials``."""
    n = batch.num_rows
    stamps = pa.nulls(n, pa.timestamp("us", tz="UTC"))
    was = pa.nulls(n, pa.bool_())
    if columns.timestamp is not None:
        raw = batch.column(columns.timestamp)
        stamps, bad = _timestamps(raw)
        trials.append(("bad_timestamp", bad, _as_string(raw)))
    if columns.was_acted_on is not None:
        raw = batch.column(columns.was_acted_on)
        text = pc.utf8_lower(_text(raw))
        was = pc.if_else(pc.is_in(text, value_set=pa.array(_TRUE)), True,
                         pc.if_else(pc.is_in(text, value_set=pa.array(_FALSE)), False,
                                    pa.scalar(None, pa.bool_())))
        trials.append(("bad_was_acted_on", pc.and_(pc.is_valid(text), pc.is_null(was)), text))
    return stamps, was


def _judge(trials: list[tuple[str, pa.Array, pa.Array]], bad: BadRows,
           first_row: int) -> pa.Array:
    """The mask of good rows; each bad row tallied once, under its first reason."""
    left: np.ndarray | None = None
    for reason, mask, values in trials:
        hit = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        left = np.ones(len(hit), dtype=bool) if left is None else left
        rows = np.flatnonzero(hit & left)
        if len(rows):
            bad.add(reason, rows + first_row, values.take(pa.array(rows[:EXAMPLES])).to_pylist())
            left[rows] = False
    assert left is not None
    return pa.array(left)


def _as_string(array: pa.Array) -> pa.Array:
    """``array`` as plain strings (numbers in their shortest spelling; NaN as null)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def _text(array: pa.Array) -> pa.Array:
    """``array`` as strings without the spaces around them; blank ones null."""
    text = pc.utf8_trim_whitespace(_as_string(array))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _parsed(text: pa.Array) -> pa.Array:
    """The text values that are numbers (inf and nan spelt out too) as float64; null
    for the rest."""
    number = pc.or_(pc.match_substring_regex(text, _NUMBER),
                    pc.match_substring_regex(text, _NOT_FINITE))
    return pc.cast(pc.if_else(number, text, pa.scalar(None, pa.string())), pa.float64())


def _numbers(raw: pa.Array) -> tuple[pa.Array, pa.Array, list[tuple[str, pa.Array, pa.Array]]]:
    """A regression actual: its values, no labels, and the checks of its rows."""
    kind = raw.type.value_type if pa.types.is_dictionary(raw.type) else raw.type
    shown = _as_string(raw)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(raw.dictionary_decode() if pa.types.is_dictionary(raw.type) else raw,
                         pa.float64())
        not_number = pa.array(np.zeros(len(raw), dtype=bool))
    else:
        text = _text(raw)
        values = pa.nulls(len(raw), pa.float64()) if pa.types.is_boolean(kind) else \
            _parsed(text)
        not_number = pc.and_(pc.is_valid(text), pc.is_null(values))
    missing = pc.or_kleene(pc.and_(pc.is_null(values), pc.invert(not_number)),
                           pc.is_nan(values))
    not_finite = pc.invert(pc.is_finite(values))
    checks = [("missing_actual", missing, shown), ("not_a_number", not_number, shown),
              ("not_finite", not_finite, shown)]
    return values, pa.nulls(len(raw), pa.string()), checks


class _Classes:
    """The classes of a classification target, and how an actual's text finds one."""

    def __init__(self, target: Target) -> None:
        self.classes = pa.array(list(target.classes), pa.string())
        numbers = [_number(c) for c in target.classes]
        self.numeric = [i for i, n in enumerate(numbers) if n is not None]
        self.numbers = pa.array([numbers[i] for i in self.numeric], pa.float64())
        self.truth: tuple[int, int] | None = None  # the classes of false and true
        if target.type is TargetType.BINARY:
            values = [_truth(c) for c in target.classes]
            if None not in values and values[0] != values[1]:  # 0/1, False/True
                self.truth = (values.index(False), values.index(True))
            else:  # no/yes: true is the positive class
                positive = list(target.classes).index(str(target.positive))
                self.truth = (1 - positive, positive)

    def labels(self, raw: pa.Array) -> tuple[pa.Array, list[tuple[str, pa.Array, pa.Array]]]:
        """The class of each actual (null where none), and the checks of its rows."""
        text = _text(raw)
        index = pc.index_in(text, value_set=self.classes)
        if len(self.numeric):  # 1.0 is class "1"
            by_number = pc.index_in(_parsed(text), value_set=self.numbers)
            index = pc.coalesce(index, pc.take(pa.array(self.numeric, pa.int32()), by_number))
        if self.truth is not None:  # 0: false, 1: true
            truth = pc.coalesce(
                pc.index_in(pc.utf8_lower(text), value_set=pa.array(["false", "true"])),
                pc.index_in(_parsed(text), value_set=pa.array([0.0, 1.0])))
            index = pc.coalesce(index, pc.take(pa.array(self.truth, pa.int32()), truth))
        label = pc.take(self.classes, index)
        shown = _as_string(raw)
        checks = [("missing_actual", pc.is_null(text), shown),
                  ("not_a_class", pc.and_(pc.is_valid(text), pc.is_null(label)), shown)]
        return label, checks


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _truth(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    number = _number(lowered)
    return None if number not in (0.0, 1.0) else number == 1.0


def _timestamps(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Times as UTC microseconds, and the mask of values that are no time."""
    utc = pa.timestamp("us", tz="UTC")
    kind = raw.type.value_type if pa.types.is_dictionary(raw.type) else raw.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = raw.dictionary_decode() if pa.types.is_dictionary(raw.type) else raw
        if pa.types.is_date(kind):
            values = pc.cast(values, pa.timestamp("us"))
        # a time without a zone is UTC; nanoseconds are cut to microseconds
        return pc.cast(values, utc, safe=False), pa.array(np.zeros(len(raw), dtype=bool))
    parsed = [_time(value) for value in _text(raw).to_pylist()]
    bad = [value is False for value in parsed]
    return (pa.array([None if v is False else v for v in parsed], utc), pa.array(bad))


def _time(text: str | None) -> datetime | None | bool:
    """A time (UTC unless it has a zone), None for no value, False for no time."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ChunkOrigin:
    """Who stored a chunk of actuals, and when."""

    deployment_id: str
    job_id: str  # the upload's id and the chunk's: <upload id>-c000012
    chunk_index: int
    received_at: datetime  # when the upload started: the same for every chunk of it
    stored_at: datetime


def actuals_table(values: pa.Table, origin: ChunkOrigin) -> pa.Table:
    """``values`` (from :meth:`ActualsChecker.check`) as an ``actuals`` record table.

    ``ts_start`` and ``hour`` are the upload's received time, so a chunk stored
    again (a resumed upload) lands in the same file; ``ts_end`` is when it was stored.
    """
    n = values.num_rows
    utc = pa.timestamp("us", tz="UTC")
    received = origin.received_at.astimezone(UTC)
    who: dict[str, pa.Array] = {
        "schema_version": pa.array(np.full(n, SCHEMA_VERSION, dtype=np.int8)),
        "deployment_id": _repeat(origin.deployment_id, n, pa.string()),
        "model_id": _repeat("", n, pa.string()),
        "role": _repeat("", n, pa.string()),
        "source": _repeat("actuals", n, pa.string()),
        "job_id": _repeat(origin.job_id, n, pa.string()),
        "chunk_index": _repeat(origin.chunk_index, n, pa.int64()),
        "ts_start": _repeat(received, n, utc),
        "ts_end": _repeat(origin.stored_at.astimezone(UTC), n, utc),
        "hour": _repeat(hour_of(received), n, utc),
        "consumer": pa.nulls(n, pa.string()),
        "remote_address": pa.nulls(n, pa.string()),
    }
    arrays = [who[f.name] if f.name in who else values.column(f.name) for f in ACTUALS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ACTUALS_SCHEMA)


def _repeat(value: Any, n: int, kind: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), n)
