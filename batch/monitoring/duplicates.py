"""Rows of an upload whose association id came earlier in it, counted without holding
every id in memory.

:class:`DuplicateIds` spills each chunk's ids (and row numbers) to local files,
one per hash bucket of the id, and at the end reads one bucket at a time: every
occurrence of an id is in the same bucket, so each bucket is counted on its
own, exactly (ids are compared, not hashes), in memory of about
1/:data:`BUCKETS` of the upload's ids. The files take about the ids' size on disk.
"""

from __future__ import annotations

import heapq
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.monitoring.actuals import EXAMPLES
from batch.monitoring.by_id import split_by_bucket
from batch.scoring.prediction_log import ID_BUCKETS, bucket_of

BUCKETS = ID_BUCKETS
_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("seq", pa.int64())])


@dataclass(frozen=True, slots=True)
class Repeat:
    row: int  # the input's data row, from 1
    id: str
    first_row: int  # where the id came first


@dataclass(frozen=True, slots=True)
class Duplicates:
    rows: int = 0  # rows whose id came earlier in the upload (the later actual wins)
    ids: int = 0  # ids given more than once
    examples: tuple[Repeat, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "ids": self.ids,
                "examples": [{"row": r.row, "id": r.id, "first_row": r.first_row}
                             for r in self.examples]}


class DuplicateIds:
    """Ids seen so far, in files under ``folder``: emptied first (what a process killed
    while counting left there), removed by :meth:`close`."""

    def __init__(self, folder: Path, buckets: int = BUCKETS) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self._folder = folder
        self._buckets = buckets
        self._writers: dict[int, tuple[pa.NativeFile, pa.ipc.RecordBatchStreamWriter]] = {}

    def __enter__(self) -> DuplicateIds:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def add(self, ids: pa.Array, seqs: pa.Array, keys: pa.Array | None = None) -> None:
        """Keep the ids (strings, no nulls) of the rows ``seqs`` (0-based, ascending);
        ``keys``: their buckets, when already hashed (:func:`bucket_of`, as many
        buckets as this has)."""
        if not len(ids):
            return
        keys = bucket_of(ids, self._buckets) if keys is None else \
            keys.to_numpy(zero_copy_only=False).astype(np.int64)
        batch = pa.record_batch([ids, seqs], schema=_SCHEMA)
        for bucket, rows in split_by_bucket(batch, keys, self._buckets):
            self._writer(bucket).write_batch(rows)

    def _writer(self, bucket: int) -> pa.ipc.RecordBatchStreamWriter:
        if bucket not in self._writers:
            sink = pa.OSFile(str(self._path(bucket)), "wb")
            self._writers[bucket] = (sink, pa.ipc.new_stream(sink, _SCHEMA))
        return self._writers[bucket][1]

    def _path(self, bucket: int) -> Path:
        return self._folder / f"{bucket}.arrows"

    def _close(self, bucket: int) -> None:
        sink, writer = self._writers.pop(bucket)
        writer.close()
        sink.close()

    def count(self, *, examples: bool = True) -> Duplicates:
        """The repeated ids of everything added (call once, at the end); without
        ``examples``, only how many rows and ids repeat (a distinct count per bucket, no
        grouping of rows)."""
        rows = ids = 0
        found_examples: list[Repeat] = []
        for bucket in sorted(self._writers):
            self._close(bucket)
            path = self._path(bucket)
            with pa.OSFile(str(path), "rb") as source:
                table = pa.ipc.open_stream(source).read_all()
            path.unlink()
            found = _repeats(table) if examples else _repeat_counts(table)
            rows, ids = rows + found.rows, ids + found.ids
            found_examples = heapq.nsmallest(EXAMPLES, [*found_examples, *found.examples],
                                             key=lambda r: r.row)
        return Duplicates(rows, ids, tuple(found_examples))

    def close(self) -> None:
        for bucket in list(self._writers):
            self._close(bucket)
        shutil.rmtree(self._folder, ignore_errors=True)


def _repeat_counts(table: pa.Table) -> Duplicates:
    column = table.column("id")
    distinct = int(pc.count_distinct(column).as_py())
    if distinct == table.num_rows:
        return Duplicates()
    counts = pc.value_counts(column).field("counts")
    return Duplicates(table.num_rows - distinct, int(pc.sum(pc.greater(counts, 1)).as_py()))


def _repeats(table: pa.Table) -> Duplicates:
    grouped = table.group_by("id").aggregate([("seq", "min"), ("seq", "count")])
    many = grouped.filter(pc.greater(grouped.column("seq_count"), 1))
    if not many.num_rows:
        return Duplicates()
    rows = pc.sum(many.column("seq_count")).as_py() - many.num_rows
    later = table.join(many.select(["id", "seq_min"]), "id")
    later = later.filter(pc.greater(later.column("seq"), later.column("seq_min")))
    first = later.sort_by("seq").slice(0, EXAMPLES).to_pylist()
    return Duplicates(rows, many.num_rows, tuple(
        Repeat(r["seq"] + 1, r["id"], r["seq_min"] + 1) for r in first))
