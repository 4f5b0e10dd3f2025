"""The one protocol every scoring pool implements (local processes, Dask)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import pyarrow as pa

from batch.engine.pool.child import ChunkJob, ChunkResult
from connectors import Part


@runtime_checkable
class Pool(Protocol):
    """Scores chunks in input order; ``job`` says how (model, options, encoders).

    ``loads_by_pid`` counts, per scoring process, how often it has loaded the
    job's model (1 each with a working cache).
    """

    job: ChunkJob
    loads_by_pid: dict[int, int]

    def map_ordered(self, chunks: Iterable[pa.RecordBatch | Part]) -> Iterator[ChunkResult]:
        """Yield one result per chunk, in input order, with a bounded number in flight.

        Raises:
            JobError: a scoring process died; nothing was published.
            The scoring errors of :func:`batch.engine.pool.child.run_chunk`.
        """
        ...

    def close(self) -> None:
        """Stop the pool's processes (idempotent)."""
        ...
