"""Rows of an upload whose association id came earlier in it, counted without holding
every id in memory.

:class:`DuplicateIds` keeps each chunk's ids (and row numbers) split by a hash
of the id (:class:`~batch.monitoring.by_id.IdBuckets`: spilled to local files
past a share's rows) and at the end counts a share of the buckets at a time:
every occurrence of an id is in the same bucket, so each share is counted on its
own, exactly (ids are compared, not hashes), in memory of about a share's rows.
The files take about the ids' size on disk.
"""

from __future__ import annotations

import heapq
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batch.monitoring.actuals import EXAMPLES
from batch.monitoring.by_id import IdBuckets

_SCHEMA = pa.schema([pa.field("association_id", pa.string()), pa.field("seq", pa.int64())])


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
    """Ids seen so far, split by bucket (:class:`~batch.monitoring.by_id.IdBuckets`: in
    memory while few, else in files under ``folder``): ``folder`` is emptied first (what
    a process killed while counting left there) and removed by :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self._folder = folder
        self._ids = IdBuckets(("ids",), folder=folder)

    def __enter__(self) -> DuplicateIds:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def add(self, ids: pa.Array, seqs: pa.Array, keys: pa.Array | None = None) -> None:
        """Keep the ids (strings, no nulls) of the rows ``seqs`` (0-based, ascending);
        ``keys``: their buckets, when already hashed
        (:func:`~batch.scoring.prediction_log.bucket_of`)."""
        if len(ids):
            self._ids.add("ids", pa.record_batch([ids, seqs], schema=_SCHEMA), keys)

    def count(self, *, examples: bool = True) -> Duplicates:
        """The repeated ids of everything added (call once, at the end); without
        ``examples``, only how many rows and ids repeat (a distinct count per share, no
        grouping of rows)."""
        rows = ids = 0
        found_examples: list[Repeat] = []
        for share in self._ids:
            table = share["ids"]
            if table is None or not table.num_rows:
                continue
            found = _repeats(table) if examples else _repeat_counts(table)
            rows, ids = rows + found.rows, ids + found.ids
            found_examples = heapq.nsmallest(EXAMPLES, [*found_examples, *found.examples],
                                             key=lambda r: r.row)
        return Duplicates(rows, ids, tuple(found_examples))

    def close(self) -> None:
        self._ids.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _repeat_counts(table: pa.Table) -> Duplicates:
    column = table.column("association_id")
    distinct = int(pc.count_distinct(column).as_py())
    if distinct == table.num_rows:
        return Duplicates()
    counts = pc.value_counts(column).field("counts")
    return Duplicates(table.num_rows - distinct, int(pc.sum(pc.greater(counts, 1)).as_py()))


def _repeats(table: pa.Table) -> Duplicates:
    grouped = table.group_by("association_id").aggregate([("seq", "min"), ("seq", "count")])
    many = grouped.filter(pc.greater(grouped.column("seq_count"), 1))
    if not many.num_rows:
        return Duplicates()
    rows = pc.sum(many.column("seq_count")).as_py() - many.num_rows
    later = table.join(many.select(["association_id", "seq_min"]), "association_id")
    later = later.filter(pc.greater(later.column("seq"), later.column("seq_min")))
    first = later.sort_by("seq").slice(0, EXAMPLES).to_pylist()
    return Duplicates(rows, many.num_rows, tuple(
        Repeat(r["seq"] + 1, r["association_id"], r["seq_min"] + 1) for r in first))
