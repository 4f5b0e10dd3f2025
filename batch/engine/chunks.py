"""The chunks of a job still to score, by what the intake can do.

- CSV byte ranges (:class:`~connectors.RangedIntake`): workers read and parse
  each range themselves; a resume skips the committed ranges;
- parts the input is stored in (:class:`~connectors.PartitionedIntake`: Parquet
  row groups, Snowflake result batches): workers read each part; a resume skips
  the committed rows, cutting one part if need be;
- otherwise batches streamed by this process, after the committed rows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeAlias

import pyarrow as pa

from batch.engine.store import JobRecord
from batch.errors import JobError
from batch.models.kinds import FeatureType
from batch.models.package import ModelPackage
from connectors import Intake, Part, Partition, PartitionedIntake, Progress, RangedIntake

Chunk: TypeAlias = "pa.RecordBatch | Part"
Chunks: TypeAlias = "tuple[Iterator[Chunk], Callable[[int, int], Progress]]"


def independent_parts(intake: Intake) -> list[Partition] | None:
    """The parts of an intake that scoring workers read on their own (a Snowflake
    result's batches), when there are several and each knows its row count."""
    parts = intake.partitions() if isinstance(intake, PartitionedIntake) else None
    if not parts or len(parts) < 2 or any(p.rows is None for p in parts):
        return None
    return list(parts)


def chunks_to_score(intake: Intake, record: JobRecord, *, done: int, skip_rows: int,
                    timings: dict[str, float]) -> Chunks:
    """The chunks after the ``done`` committed ones (``skip_rows`` rows in all), and the
    job's progress once a number of the returned chunks, and rows in all, are scored.

    Raises:
        JobError: the job was planned in byte ranges and the input no longer splits so.
    """
    if record.chunk_bytes:
        return _byte_ranges(intake, record.chunk_bytes, done)
    independent = independent_parts(intake)
    if independent is not None:
        rows_total = sum(p.rows or 0 for p in independent)
        return iter(after_rows(independent, skip_rows)), lambda _, rows: Progress(
            rows=rows, rows_total=rows_total)
    return _timed(intake.batches(), timings), lambda _, rows: intake.progress()


def _byte_ranges(intake: Intake, chunk_bytes: int, done: int) -> Chunks:
    parts = intake.byte_ranges(chunk_bytes) if isinstance(intake, RangedIntake) else None
    if parts is None:
        raise JobError(f"{intake.uri}: can no longer be split into byte ranges")
    intake.close()  # workers read the ranges; drop the reader's buffers here
    ends = list(itertools.accumulate(p.size for p in parts))
    total = ends[-1] if ends else 0

    def by_bytes(scored: int, rows: int) -> Progress:
        at = done + scored  # committed ranges count: a resumed job is that far already
        return Progress(rows=rows, bytes=ends[at - 1] if at else 0, bytes_total=total or None)

    return iter(parts[done:]), by_bytes


def after_rows(parts: Sequence[Partition], skip: int) -> list[Partition]:
    """``parts`` without their first ``skip`` rows (whole parts dropped, one cut)."""
    left = []
    for part in parts:
        rows = part.rows or 0
        if skip >= rows:
            skip -= rows
            continue
        left.append(part.after(skip) if skip else part)
        skip = 0
    return left


def scored_only_categories(package: ModelPackage, *, passthrough: Sequence[str],
                           keep_inputs: bool) -> tuple[str, ...]:
    """Category features that reach no output but the model, so they may be read
    dictionary-encoded (a passthrough or quarantine column keeps its input type);
    ``keep_inputs``: every input column reaches an output."""
    if keep_inputs:
        return ()
    return tuple(f.name for f in package.manifest.features
                 if f.type is FeatureType.CATEGORY and f.name not in passthrough)


def check_unchanged(intake: Intake, record: JobRecord, *, resumed: bool) -> None:
    """A resumed job must read the input its committed chunks came from.

    Raises:
        JobError: the input's size changed since the job started.
    """
    size, before = intake.progress().bytes_total, record.input_bytes
    if resumed and size is not None and before is not None and size != before:
        raise JobError(f"{intake.uri}: the input is {size:,} bytes now, {before:,} when "
                       f"job {record.job_id!r} started; it cannot be resumed on changed "
                       "input: start a new job")


def _timed(batches: Iterator[pa.RecordBatch], timings: dict[str, float]
           ) -> Iterator[pa.RecordBatch]:
    while True:
        started = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        finally:
            timings["read"] += time.perf_counter() - started
        yield batch
