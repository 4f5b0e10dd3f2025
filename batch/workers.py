"""Scoring worker processes, each with its own model cache.

Chunks travel to and from workers as Arrow IPC streams. Each worker limits
its native thread pools (BLAS, OpenMP, onnxruntime) to its share of the cores,
so N workers do not oversubscribe the machine, and loads each model once.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import JobError
from batch.models.cache import process_cache
from batch.models.package import ModelPackage
from batch.scoring import STATUS_COLUMN, STATUS_OK, ScoringOptions, score_batch
from batch.worker_processes import start_processes, take_prestarted, threads_per_worker


class Partition(Protocol):
    """A chunk the worker reads itself (a byte range of a CSV file, ...)."""

    def read(self) -> pa.RecordBatch: ...


Encoder = Callable[[pa.RecordBatch], bytes]


@dataclass(frozen=True, slots=True)
class ChunkJob:
    """What every chunk of a job needs in the worker, besides the chunk."""

    package: ModelPackage
    options: ScoringOptions
    encoder: Encoder | None = None  # encode the scored chunk in the worker
    quarantine: bool = False  # also return the failed input rows
    quarantine_encoder: Encoder | None = None
    fast_model: str | None = None  # an exact ONNX conversion of the model (a file path)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One scored chunk, with who scored it."""

    batch: pa.RecordBatch | None  # scored rows, unless ``encoded``
    failed_rows: int
    pid: int
    loads: int  # times this process has loaded the job's model (1 with a working cache)
    seconds: float = 0.0  # reading + scoring + encoding time, in the worker
    rows: int = 0
    encoded: bytes | None = None
    failures: pa.RecordBatch | None = None  # "row" (in chunk) and "status" of failed rows
    quarantine: pa.RecordBatch | bytes | None = None


def to_ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def from_ipc(payload: bytes) -> pa.RecordBatch:
    reader = pa.ipc.open_stream(payload)
    batches = list(reader)
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches, schema=reader.schema).combine_chunks().to_batches()[0]


def run_chunk(job: ChunkJob, chunk: pa.RecordBatch | Partition | bytes) -> ChunkResult:
    """Read (if needed), score and (if asked) encode one chunk, in this process."""
    started = time.perf_counter()
    if isinstance(chunk, bytes):
        chunk = from_ipc(chunk)
    elif not isinstance(chunk, pa.RecordBatch):
        chunk = chunk.read()
    cache = process_cache()
    out = score_batch(chunk, job.package, cache.get(job.package, job.fast_model), job.options)
    failed, failures, quarantine = 0, None, None
    if STATUS_COLUMN in out.schema.names:
        status = out.column(STATUS_COLUMN)
        mask = pc.not_equal(status, STATUS_OK)
        failed = int(pc.sum(mask).as_py() or 0)
        if failed:
            failures = pa.record_batch({"row": pc.indices_nonzero(mask),
                                        "status": status.filter(mask)})
        if job.quarantine:
            quarantine = chunk.filter(mask).append_column(STATUS_COLUMN, status.filter(mask))
            if job.quarantine_encoder is not None:
                quarantine = job.quarantine_encoder(quarantine)
    encoded = job.encoder(out) if job.encoder is not None else None
    return ChunkResult(
        None if encoded is not None else out, failed, os.getpid(),
        cache.loads[cache.key(job.package, job.fast_model)], time.perf_counter() - started,
        out.num_rows, encoded, failures, quarantine,
    )


def run_limited(job: ChunkJob, chunk: pa.RecordBatch | Partition, threads: int) -> ChunkResult:
    """:func:`run_chunk` in this process with its native thread pools capped at ``threads``.

    An uncapped OpenMP pool that shares its cores with other scorers costs far
    more than it gains (seen: a second per call for gradient boosting on 2 cores).
    The controller is threadpoolctl's cached one: finding the loaded libraries
    takes milliseconds, and is done again only when new modules were imported.
    """
    from threadpoolctl import get_cached_controller

    process_cache().get(job.package, job.fast_model)  # load first: limits apply to loaded libraries
    with get_cached_controller().limit(limits=threads):
        return run_chunk(job, chunk)


class ScoringPool:
    """Scores chunks in order, in ``workers`` processes (0: in this process)."""

    def __init__(self, package: ModelPackage, options: ScoringOptions, *, workers: int,
                 job: ChunkJob | None = None, inline: bool = False) -> None:
        self.job = job or ChunkJob(package, options)
        self.workers = workers
        # inline: this process scores every (workers + 1)-th chunk itself, so N scorers
        # cost N processes, not N + 1 (memory), and the reader's idle time is used
        self.inline = inline
        self._threads = threads_per_worker(workers + 1 if inline else workers)
        self.loads_by_pid: dict[int, int] = {}
        self._executor: ProcessPoolExecutor | None = None
        self._starting: list[Future[int]] = []  # done when its worker has started up
        if workers > 0:
            started = (take_prestarted(workers, self._threads)
                       or start_processes(workers, self._threads))
            self._executor, self._starting = started.executor, started.starting

    def map_ordered(self, chunks: Iterable[pa.RecordBatch | Partition]) -> Iterator[ChunkResult]:
        """Yield results in input order, with at most ``3 * workers + 1`` chunks in flight.
        While the workers start up, each has one chunk queued and this process scores
        the others, up to four times that window if the start takes long.

        A chunk is a batch (sent to the worker as Arrow IPC) or a partition the
        worker reads itself.
        """
        if self._executor is None:
            for chunk in chunks:
                result = run_chunk(self.job, chunk) if not self.inline else (
                    self._run_inline(chunk).result())
                self.loads_by_pid[result.pid] = result.loads
                yield result
            return
        window: deque[Future[ChunkResult]] = deque()
        limit = 3 * self.workers + 1
        try:
            for chunk in chunks:
                busy = sum(1 for f in window if not f.done())
                started = self.started()
                # a worker keeps two chunks queued, one while it starts up (it begins the
                # moment it is up, not when this process is done with its own chunk)
                if self.inline and busy >= (2 if started else 1) * self.workers:
                    window.append(self._run_inline(chunk))
                else:
                    payload = to_ipc(chunk) if isinstance(chunk, pa.RecordBatch) else chunk
                    window.append(self._executor.submit(run_chunk, self.job, payload))
                # while the workers start, this process scores on past a full window
                cap = limit if started or not self.inline else 4 * limit
                while len(window) >= cap or (window and window[0].done()):
                    yield self._collect(window.popleft())
            while window:
                yield self._collect(window.popleft())
        except BrokenProcessPool as exc:
            raise JobError(
                "a scoring worker process died (out of memory or killed?); nothing was "
                "published; run the job again with --resume to continue"
            ) from exc

    def _run_inline(self, chunk: pa.RecordBatch | Partition) -> Future[ChunkResult]:
        done: Future[ChunkResult] = Future()
        try:
            done.set_result(run_limited(self.job, chunk, self._threads))
        except Exception as exc:  # raised in order, after the chunks before it are written
            done.set_exception(exc)
        return done

    def _collect(self, future: Future[ChunkResult]) -> ChunkResult:
        result = future.result()
        self.loads_by_pid[result.pid] = result.loads
        return result

    def started(self) -> bool:
        """Whether the workers have answered their start-up calls (a worker that could
        not start counts as up: its first chunk fails the job clearly)."""
        while self._starting and self._starting[-1].done():
            self._starting.pop()
        return not self._starting

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
