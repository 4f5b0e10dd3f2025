"""Monitoring records as Arrow tables: ``stats`` and ``health`` (``schema_version`` 1).

A ``stats`` table has one row per chunk and column (each feature, then each
prediction column) with the chunk's counts on the baseline's buckets; a
``health`` table one row per chunk with its rows, failures and time. Both carry
who produced them (deployment, model, job, chunk) and when (the chunk's start
and end, its hour). :func:`stats_of` reads a ``stats`` table back into
:class:`~batch.monitoring.stats.ChunkStats`, one per (job, chunk).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.monitoring.exactsum import decode, encode, to_float
from batch.monitoring.stats import ChunkStats, ColumnStats

SCHEMA_VERSION = 1
KINDS = ("stats", "health", "predictions", "actuals")
# latency buckets (seconds): (-inf, 1 ms), [1 ms, 2 ms), ..., [60 s, +inf)
LATENCY_EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
                 30.0, 60.0)

_WHO = [
    pa.field("schema_version", pa.int8(), nullable=False),
    pa.field("deployment_id", pa.string(), nullable=False),
    pa.field("model_id", pa.string(), nullable=False),  # the package digest
    pa.field("role", pa.string(), nullable=False),  # champion / challenger
    pa.field("source", pa.string(), nullable=False),  # batch / realtime
    pa.field("job_id", pa.string(), nullable=False),
    pa.field("chunk_index", pa.int64(), nullable=False),
    pa.field("ts_start", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("ts_end", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("hour", pa.timestamp("us", tz="UTC"), nullable=False),
    # segments of real-time traffic: the API token's consumer and the client's address
    pa.field("consumer", pa.string()),
    pa.field("remote_address", pa.string()),
]
SEGMENTS = ("consumer", "remote_address")  # null in batch records
# columns that files written before them lack: read as nulls
_ADDED_LATER = {"consumer": pa.string(), "remote_address": pa.string(),
                "score_seconds": pa.float64()}
STATS_SCHEMA = pa.schema([
    *_WHO,
    pa.field("fingerprint", pa.string(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("column", pa.string(), nullable=False),
    pa.field("role_of_column", pa.string(), nullable=False),  # feature / prediction
    pa.field("counts", pa.list_(pa.int64()), nullable=False),  # the missing bucket last
    pa.field("sketch", pa.list_(pa.int64()), nullable=False),
    pa.field("n_missing", pa.int64(), nullable=False),
    pa.field("n_out_low", pa.int64(), nullable=False),
    pa.field("n_out_high", pa.int64(), nullable=False),
    pa.field("sum", pa.float64(), nullable=False),  # rounded, for people and other tools
    pa.field("sum_exact", pa.string(), nullable=False),  # "m*2^e": what merges exactly
    pa.field("sum_sq", pa.float64(), nullable=False),
    pa.field("min", pa.float64()),
    pa.field("max", pa.float64()),
    pa.field("n_new", pa.int64(), nullable=False),
])
HEALTH_SCHEMA = pa.schema([
    *_WHO,
    pa.field("rows_in", pa.int64(), nullable=False),
    pa.field("rows_scored", pa.int64(), nullable=False),
    pa.field("rows_failed", pa.int64(), nullable=False),
    pa.field("requests", pa.int64(), nullable=False),
    pa.field("exec_seconds", pa.float64(), nullable=False),
    pa.field("latency_counts", pa.list_(pa.int64()), nullable=False),
    pa.field("user_errors", pa.int64(), nullable=False),
    pa.field("server_errors", pa.int64(), nullable=False),
    # of exec_seconds, the model's own scoring (what champions and challengers compare)
    pa.field("score_seconds", pa.float64()),
])
# one row per scored row of a deployment with an association id (or challengers): what
# accuracy joins the actuals to. ts_start / hour: the chunk's, so a prediction is counted
# in the hour it was made
PREDICTIONS_SCHEMA = pa.schema([
    *_WHO,
    pa.field("association_id", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=False),  # the row in the job's input
    # regression: the value; binary: the positive class's probability; multiclass: the
    # predicted class's probability
    pa.field("prediction", pa.float64(), nullable=False),
    pa.field("label", pa.string()),  # classification: the predicted class
    # multiclass: in class order (binary: null, its positive class's is the prediction)
    pa.field("probabilities", pa.list_(pa.float64())),
])
# one row per actual outcome uploaded: job_id is the upload's id, chunk_index its chunk,
# ts_start / ts_end / hour when it was received (model_id and role are empty)
ACTUALS_SCHEMA = pa.schema([
    *_WHO,
    pa.field("association_id", pa.string(), nullable=False),  # at most 128 characters
    pa.field("seq", pa.int64(), nullable=False),  # the row in the upload: a later one wins
    pa.field("actual_value", pa.float64()),  # regression
    pa.field("actual_label", pa.string()),  # classification: a class of the target
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),  # when the outcome happened
    pa.field("was_acted_on", pa.bool_()),
])
SCHEMAS = {"stats": STATS_SCHEMA, "health": HEALTH_SCHEMA, "predictions": PREDICTIONS_SCHEMA,
           "actuals": ACTUALS_SCHEMA}
COMPACTED = ("stats", "health")  # kinds whose rows merge (counts add); the others append


@dataclass(frozen=True, slots=True)
class Producer:
    """Who scored the rows the records describe."""

    deployment_id: str
    model_id: str
    job_id: str
    role: str = "champion"
    source: str = "batch"
    consumer: str | None = None  # requests: the consumer their API token names
    remote_address: str | None = None  # requests: the client's address


@dataclass(frozen=True, slots=True)
class ChunkFacts:
    """What a job knows of one committed chunk."""

    index: int
    rows: int
    failed: int
    seconds: float  # the worker's time on it (requests: their time in all)
    ended_at: datetime
    stats: ChunkStats | None
    # requests (real-time traffic): their count, latencies and errors; a batch chunk
    # is one observation of latency, its failed rows its user errors
    requests: int = 0
    latency: tuple[int, ...] | None = None  # on LATENCY_EDGES, one more for the top
    user_errors: int | None = None
    server_errors: int = 0
    score_seconds: float | None = None  # of ``seconds``, the model's own scoring


def latency_counts(seconds: Sequence[float]) -> np.ndarray:
    """Counts of ``seconds`` on :data:`LATENCY_EDGES` (and one above the last)."""
    index = np.searchsorted(LATENCY_EDGES, np.asarray(seconds, dtype=np.float64), side="right")
    return np.bincount(index, minlength=len(LATENCY_EDGES) + 1).astype(np.int64)


def hour_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def stats_table(producer: Producer, chunks: Sequence[ChunkFacts],
                prediction_names: Iterable[str]) -> pa.Table:
    """The ``stats`` rows of the counted chunks (an empty table when none were)."""
    predictions = frozenset(prediction_names)
    counted = [c for c in chunks if c.stats is not None]
    pairs = []
    for chunk in counted:
        stats = chunk.stats
        assert stats is not None
        pairs += [(chunk, column, "prediction" if column.name in predictions else "feature")
                  for column in stats.columns]
        # a humility rule's firings: its key as the column, the rows in counts, none missing
        pairs += [(chunk, ColumnStats(key, (rows, 0)), "humility")
                  for key, rows in stats.humility]
    data: dict[str, Any] = {f.name: [] for f in _WHO}
    for chunk in counted:
        _who(data, producer, chunk)
    widths = [len(chunk.stats.columns) + len(chunk.stats.humility)  # type: ignore[union-attr]
              for chunk in counted]
    columns = [c for _, c, _ in pairs]
    data = {name: np.repeat(np.asarray(values, dtype=object), widths).tolist()
            for name, values in data.items()}
    data["fingerprint"] = [chunk.stats.fingerprint for chunk, _, _ in pairs]  # type: ignore[union-attr]
    data["rows"] = [chunk.stats.rows for chunk, _, _ in pairs]  # type: ignore[union-attr]
    data["column"] = [c.name for c in columns]
    data["role_of_column"] = [role for _, _, role in pairs]
    data["counts"] = _lists([c.counts for c in columns])
    data["sketch"] = _lists([c.sketch for c in columns])
    data["n_missing"] = [c.missing for c in columns]
    data["n_out_low"] = [c.out_low for c in columns]
    data["n_out_high"] = [c.out_high for c in columns]
    data["sum"] = [to_float(c.sum) for c in columns]
    data["sum_exact"] = [encode(c.sum) for c in columns]
    data["sum_sq"] = [c.sum_sq for c in columns]
    data["min"] = [c.low for c in columns]
    data["max"] = [c.high for c in columns]
    data["n_new"] = [c.new for c in columns]
    arrays = [data[f.name] if isinstance(data[f.name], pa.Array) else
              pa.array(data[f.name], type=f.type) for f in STATS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=STATS_SCHEMA)


def predictions_table(producer: Producer, chunks: Sequence[ChunkFacts],
                      logs: Sequence[pa.RecordBatch]) -> pa.Table:
    """The ``predictions`` rows of the chunks: each chunk's prediction log (association
    id, row, prediction, label, probabilities) with who made it and when."""
    parts = [prediction_rows(producer, chunk, log)
             for chunk, log in zip(chunks, logs, strict=True)]
    return pa.concat_tables(parts) if parts else PREDICTIONS_SCHEMA.empty_table()


def prediction_rows(producer: Producer, chunk: ChunkFacts, log: pa.RecordBatch) -> pa.Table:
    """The ``predictions`` rows of one chunk's prediction log. Who made them and when is
    the same on every row, so those columns are dictionary-encoded (one value each: a
    copy per row of a 64-character digest costs more than the rest of the row); readers
    of the store get them as plain columns."""
    who: dict[str, list[object]] = {f.name: [] for f in _WHO}
    _who(who, producer, chunk)
    n = log.num_rows
    first = pa.array(np.zeros(n, dtype=np.int32))
    columns: list[pa.Array] = [
        pa.nulls(n, f.type) if who[f.name][0] is None else pa.DictionaryArray.from_arrays(
            first, pa.array(who[f.name], f.type)) for f in _WHO]
    columns += [log.column(name) for name in PREDICTIONS_SCHEMA.names[len(_WHO):]]
    return pa.Table.from_arrays(columns, names=PREDICTIONS_SCHEMA.names)


def _lists(values: Sequence[Sequence[int]]) -> pa.Array:
    """Lists of int64 as one Arrow list array, built from flat numpy arrays."""
    lengths = np.fromiter((len(v) for v in values), dtype=np.int32, count=len(values))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    flat = np.fromiter(itertools.chain.from_iterable(values), dtype=np.int64,
                       count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def health_table(producer: Producer, chunks: Sequence[ChunkFacts]) -> pa.Table:
    """One ``health`` row per chunk (of a job) or micro-chunk (of requests)."""
    rows: dict[str, list[object]] = {f.name: [] for f in HEALTH_SCHEMA}
    for chunk in chunks:
        _who(rows, producer, chunk)
        rows["rows_in"].append(chunk.rows)
        rows["rows_scored"].append(chunk.rows - chunk.failed)
        rows["rows_failed"].append(chunk.failed)
        rows["requests"].append(chunk.requests)
        rows["exec_seconds"].append(chunk.seconds)
        rows["latency_counts"].append(list(chunk.latency) if chunk.latency is not None
                                      else latency_counts([chunk.seconds]).tolist())
        rows["user_errors"].append(chunk.failed if chunk.user_errors is None
                                   else chunk.user_errors)
        rows["server_errors"].append(chunk.server_errors)
        rows["score_seconds"].append(chunk.score_seconds)
    return pa.Table.from_pydict(rows, schema=HEALTH_SCHEMA)


def _who(rows: dict[str, list[object]], producer: Producer, chunk: ChunkFacts) -> None:
    end = chunk.ended_at.astimezone(UTC)
    start = datetime.fromtimestamp(end.timestamp() - max(chunk.seconds, 0.0), UTC)
    rows["schema_version"].append(SCHEMA_VERSION)
    rows["deployment_id"].append(producer.deployment_id)
    rows["model_id"].append(producer.model_id)
    rows["role"].append(producer.role)
    rows["source"].append(producer.source)
    rows["job_id"].append(producer.job_id)
    rows["chunk_index"].append(chunk.index)
    rows["ts_start"].append(start)
    rows["ts_end"].append(end)
    rows["hour"].append(hour_of(start))
    rows["consumer"].append(producer.consumer)
    rows["remote_address"].append(producer.remote_address)


def column_stats(table: pa.Table) -> list[ColumnStats]:
    """Each row of a ``stats`` table as :class:`ColumnStats` (exact sums decoded)."""
    data = table.select(["column", "counts", "sketch", "n_out_low", "n_out_high", "min", "max",
                         "sum_exact", "sum_sq", "n_new"]).to_pydict()
    return [ColumnStats(name, tuple(counts), tuple(sketch), low_out, high_out, low, high,
                        decode(exact), sum_sq, new)
            for name, counts, sketch, low_out, high_out, low, high, exact, sum_sq, new in zip(
                *data.values(), strict=True)]


def check_schema(table: pa.Table, kind: str, columns: Sequence[str] | None = None
                 ) -> pa.Table:
    """``table`` cast to its kind's schema (only ``columns`` of it, when given).

    Raises:
        ValueError: it is not a table of that kind (or of another schema version).
    """
    schema = SCHEMAS[kind]
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in schema.names if name in columns])
    for name, typ in _ADDED_LATER.items():
        if name in schema.names and name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, typ))
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"not a {kind} record table (no {', '.join(missing[:3])})")
    versions = set(pc.unique(table.column("schema_version")).to_pylist())
    if versions - {SCHEMA_VERSION}:
        raise ValueError(f"schema_version {sorted(versions)} (this version reads "
                         f"{SCHEMA_VERSION})")
    table = table.select(schema.names)
    # a dictionary-encoded column of the right values stays encoded
    kept = pa.schema([
        f.with_type(table.schema.field(f.name).type)
        if pa.types.is_dictionary(table.schema.field(f.name).type)
        and table.schema.field(f.name).type.value_type == f.type else f for f in schema])
    return table.cast(kept)
