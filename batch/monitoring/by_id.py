"""Rows of several tables split by a hash of their association id, so that joining
millions of predictions to millions of actuals holds a share of each at a time.

:class:`IdBuckets` keeps what it is given in memory until it holds
:data:`ROWS_PER_SHARE` rows; past that it spills every row to local files, one
per side and hash bucket of the id (:data:`BUCKETS` of them). Iterating gives
shares: every row of some buckets, each side's rows of them together. An id's
rows are all in one bucket, so a share holds every row of each of its ids, on
every side: a join (or a count of distinct ids) over the shares one by one is
the join over everything. Consecutive buckets are read together up to about
:data:`ROWS_PER_SHARE` rows, so a small store is one share and a large one is
read in memory of about that many rows.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa

from batch.scoring.prediction_log import bucket_of

BUCKETS = 64
__all__ = ["BUCKETS", "ROWS_PER_SHARE", "IdBuckets", "bucket_of", "split_by_bucket"]
ROWS_PER_SHARE = 500_000
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")
_KEY = "__bucket"  # rows given with their bucket carry it until they are spilled


def split_by_bucket(table: pa.Table | pa.RecordBatch, keys: np.ndarray, buckets: int
                    ) -> Iterator[tuple[int, pa.Table | pa.RecordBatch]]:
    """``table``'s rows of each bucket that has any, in their order."""
    order = np.argsort(keys, kind="stable")  # stable: row order within a bucket
    ends = np.searchsorted(keys[order], np.arange(buckets + 1))
    rows = table.take(pa.array(order))
    for bucket in np.flatnonzero(np.diff(ends)).tolist():
        start, stop = int(ends[bucket]), int(ends[bucket + 1])
        yield bucket, rows.slice(start, stop - start)


class IdBuckets:
    """Tables of ``sides`` (each with an ``association_id`` column), split by id.
    Spilled files go to a temporary folder under ``folder`` (default: the system's),
    removed by :meth:`close`."""

    def __init__(self, sides: Sequence[str], *, folder: Path | None = None,
                 rows_per_share: int | None = None) -> None:
        self._sides = tuple(sides)
        self._parent = folder
        self._limit = ROWS_PER_SHARE if rows_per_share is None else rows_per_share
        self._held: dict[str, list[pa.Table]] = {side: [] for side in self._sides}
        self._held_rows = 0
        self._schemas: dict[str, pa.Schema] = {}
        self._folder: Path | None = None
        self._writers: dict[tuple[str, int], tuple[pa.NativeFile,
                                                   pa.ipc.RecordBatchStreamWriter]] = {}
        self._rows = np.zeros(BUCKETS, dtype=np.int64)  # spilled rows per bucket

    def __enter__(self) -> IdBuckets:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def add(self, side: str, table: pa.Table | pa.RecordBatch,
            keys: pa.Array | None = None) -> None:
        """Keep ``table``'s rows (its schema the same on every call of a side);
        ``keys``: their buckets, when already hashed (:func:`bucket_of` into
        :data:`BUCKETS`, as the workers hash a job's ids)."""
        schema = self._schemas.setdefault(side, table.schema)
        if not table.num_rows:
            return
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.schema != schema:  # e.g. a file that kept other nullability flags
            table = table.cast(schema)
        if keys is not None:
            table = table.append_column(_KEY, keys.cast(pa.int64()))
        if self._folder is None:
            self._held[side].append(table)
            self._held_rows += table.num_rows
            if self._held_rows <= self._limit:
                return
            self._spill_held()
            return
        self._spill(side, table)

    def __iter__(self) -> Iterator[dict[str, pa.Table]]:
        """Each share: every side's rows of its ids (a side with none: an empty table
        of its schema, or None when the side was never given a table)."""
        if self._folder is None:
            yield {side: self._concat(side, self._held[side]) for side in self._sides}
            return
        for key in list(self._writers):
            self._close(key)
        share: list[int] = []
        rows = 0
        for bucket in range(BUCKETS):
            share.append(bucket)
            rows += int(self._rows[bucket])
            if rows >= self._limit or bucket == BUCKETS - 1:
                yield {side: self._read(side, share) for side in self._sides}
                share, rows = [], 0

    def close(self) -> None:
        for key in list(self._writers):
            self._close(key)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    # -- spilling --------------------------------------------------------------------
    def _spill_held(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="batchpred-by-id-", dir=self._parent))
        held, self._held = self._held, {side: [] for side in self._sides}
        for side, tables in held.items():
            for table in tables:
                self._spill(side, table)

    def _spill(self, side: str, table: pa.Table) -> None:
        if _KEY in table.column_names:
            keys = table.column(_KEY).to_numpy()
            table = table.drop_columns([_KEY])
        else:
            keys = bucket_of(table.column("association_id"), BUCKETS)
        for bucket, rows in split_by_bucket(table, keys, BUCKETS):
            self._writer(side, bucket).write_table(rows)
            self._rows[bucket] += rows.num_rows

    def _writer(self, side: str, bucket: int) -> pa.ipc.RecordBatchStreamWriter:
        key = (side, bucket)
        if key not in self._writers:
            sink = pa.OSFile(str(self._path(side, bucket)), "wb")
            self._writers[key] = (sink, pa.ipc.new_stream(sink, self._schemas[side],
                                                          options=_IPC))
        return self._writers[key][1]

    def _path(self, side: str, bucket: int) -> Path:
        assert self._folder is not None
        return self._folder / f"{self._sides.index(side)}-{bucket}.arrows"

    def _close(self, key: tuple[str, int]) -> None:
        sink, writer = self._writers.pop(key)
        writer.close()
        sink.close()

    def _read(self, side: str, buckets: list[int]) -> pa.Table | None:
        tables = []
        for bucket in buckets:
            path = self._path(side, bucket)
            if path.exists():
                with pa.memory_map(str(path)) as source:
                    tables.append(pa.ipc.open_stream(source).read_all())
                path.unlink()
        return self._concat(side, tables)

    def _concat(self, side: str, tables: list[pa.Table]) -> pa.Table | None:
        tables = [t.drop_columns([_KEY]) if _KEY in t.column_names else t for t in tables]
        if tables:
            return pa.concat_tables(tables)
        schema = self._schemas.get(side)
        return None if schema is None else schema.empty_table()
