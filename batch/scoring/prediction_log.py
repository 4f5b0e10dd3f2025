"""The prediction log of a scored chunk: one row per scored row, keyed by association id.

What the accuracy stage joins actual outcomes to, later. Rows without a
prediction (a bad value, a rejected row) are not logged: there is nothing to
be accurate about.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import SchemaError
from batch.models.manifest import ModelManifest, TargetType

ID_BUCKETS = 64  # hash buckets of association ids (what repeated ids are counted in)
BUCKET_COLUMN = "id_bucket"  # a champion's log: each id's bucket, hashed in the worker

LOG_SCHEMA = pa.schema([
    pa.field("association_id", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=False),  # in the chunk
    pa.field("prediction", pa.float64(), nullable=False),
    pa.field("label", pa.string()),
    pa.field("probabilities", pa.list_(pa.float64())),  # multiclass only
])


def bucket_of(ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The bucket (``0 <= b < buckets``) of each id (text, no nulls): a hash of the
    text, so the same id falls in the same bucket whatever table it comes from."""
    import pandas as pd

    # categorize=False: ids are mostly distinct (measured: 34 ms, not 144, per 200k ids)
    keys = pd.util.hash_array(np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object),
                              categorize=False)
    return (keys % np.uint64(buckets)).astype(np.int64)


def check_association_column(schema: pa.Schema, column: str, *, source: str = "input") -> None:
    """Raises :class:`SchemaError` naming the association id column if ``schema`` lacks it."""
    if column not in schema.names:
        raise SchemaError(f"{source} has no column {column!r}, the deployment's association "
                          f"id (its predictions are logged under it, for accuracy); it has: "
                          f"{', '.join(schema.names) or '(no columns)'}")


def prediction_log(batch: pa.RecordBatch, scored: pa.RecordBatch, manifest: ModelManifest,
                   column: str | None, *, buckets: int | None = None) -> pa.RecordBatch:
    """The rows of ``scored`` (the output of ``batch``) that have a prediction, with the
    id in ``batch``'s ``column`` (None: ``#<row in the chunk>``, for a challenger log
    with no association id): regression value, binary positive-class probability or
    multiclass predicted-class probability, the label and (multiclass) the class
    probabilities;
    with ``buckets``, also each id's bucket (:data:`BUCKET_COLUMN`), hashed here in
    the worker rather than by the job's process when it counts repeated ids.

    Raises:
        SchemaError: ``batch`` has no such column.
    """
    target = manifest.target
    name = target.name
    predicted = scored.column(f"{name}_PREDICTION")
    keep = pc.is_valid(predicted)
    if column is None:
        ids = pa.array([f"#{i}" for i in range(batch.num_rows)], pa.string())
    else:
        check_association_column(batch.schema, column)
        ids = batch.column(column)
        ids = ids if pa.types.is_string(ids.type) else pc.cast(ids, pa.string())
    has_id = pc.is_valid(ids)
    keep = pc.and_(keep, has_id)
    rows = pc.indices_nonzero(keep)
    if target.type is TargetType.REGRESSION:
        values = predicted.take(rows)
        return _with_buckets(pa.RecordBatch.from_arrays(
            [ids.take(rows), pc.cast(rows, pa.int64()), values,
             pa.nulls(len(rows), pa.string()), pa.nulls(len(rows), pa.list_(pa.float64()))],
            schema=LOG_SCHEMA), buckets)
    labels = predicted.take(rows)
    if target.type is TargetType.BINARY:  # the positive class's probability says it all
        positive = scored.column(f"{name}_{target.positive}_PREDICTION").take(rows)
        return _with_buckets(pa.RecordBatch.from_arrays(
            [ids.take(rows), pc.cast(rows, pa.int64()), pc.cast(positive, pa.float64()),
             labels, pa.nulls(len(rows), pa.list_(pa.float64()))], schema=LOG_SCHEMA), buckets)
    probs = np.column_stack([
        scored.column(f"{name}_{label}_PREDICTION").take(rows).to_numpy(zero_copy_only=False)
        for label in target.classes]) if len(rows) else np.empty((0, len(target.classes)))
    value = probs.max(axis=1) if len(rows) else np.empty(0)
    k = len(target.classes)
    offsets = pa.array(np.arange(0, len(rows) * k + 1, k, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1), pa.float64()))
    return _with_buckets(pa.RecordBatch.from_arrays(
        [ids.take(rows), pc.cast(rows, pa.int64()), pa.array(value, pa.float64()),
         labels, lists], schema=LOG_SCHEMA), buckets)


def _with_buckets(log: pa.RecordBatch, buckets: int | None) -> pa.RecordBatch:
    if buckets is None:
        return log
    keys = bucket_of(log.column("association_id"), buckets) if log.num_rows else \
        np.zeros(0, dtype=np.int64)
    return log.append_column(BUCKET_COLUMN, pa.array(keys.astype(np.int8)))
