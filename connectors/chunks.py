"""Re-chunking a stream of record batches to a fixed number of rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Yield batches of exactly ``rows`` rows (the last may be shorter), in order.

    Whatever sizes come in (one batch for a whole result, or many small ones),
    what goes out has the engine's chunk size.
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        have += batch.num_rows
        while have >= rows:
            table = pa.Table.from_batches(pending)
            yield one_batch(table.slice(0, rows))
            rest = table.slice(rows)
            pending = rest.to_batches() if rest.num_rows else []
            have = rest.num_rows
    if have:
        yield one_batch(pa.Table.from_batches(pending))


def one_batch(table: pa.Table) -> pa.RecordBatch:
    """``table`` as a single record batch (an empty one with its schema if no rows)."""
    combined = table.combine_chunks().to_batches()
    if len(combined) == 1:
        return combined[0]
    return pa.RecordBatch.from_pylist([], schema=table.schema)

