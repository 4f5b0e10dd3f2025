"""Scoring worker processes, each with its own model cache.

Chunks travel to and from workers as Arrow IPC streams. Each worker limits
its native thread pools (BLAS, OpenMP, onnxruntime) to its share of the cores,
so N workers do not oversubscribe the machine, and loads each model once.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from batch.errors import JobError
from batch.models.cache import configure_process_cache, process_cache
from batch.models.package import ModelPackage
from batch.scoring import STATUS_COLUMN, STATUS_OK, ScoringOptions, score_batch

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_limits: Any = None


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One scored chunk, with who scored it."""

    batch: pa.RecordBatch
    failed_rows: int
    pid: int
    loads: int  # models this worker has loaded so far
    seconds: float = 0.0  # time spent scoring, in the worker
    source: pa.RecordBatch | None = None  # the input chunk (for quarantine)


def default_workers() -> int:
    return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    os.environ.update({var: str(threads) for var in THREAD_VARS})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start workers without re-running the caller's ``__main__``.

    Spawned children normally re-import the main script, which runs an
    unguarded script's job again in every worker. Workers need nothing from
    ``__main__``, so hide it while they start.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


def _init_worker(threads: int) -> None:
    global _limits
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=threads)
    configure_process_cache(threads=threads)


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


def failed_rows(batch: pa.RecordBatch) -> int:
    """Rows whose status is not OK."""
    idx = batch.schema.get_field_index(STATUS_COLUMN)
    if idx < 0 or batch.num_rows == 0:
        return 0
    import pyarrow.compute as pc

    return int(pc.sum(pc.not_equal(batch.column(idx), STATUS_OK)).as_py() or 0)


def score_local(
    package: ModelPackage, batch: pa.RecordBatch, options: ScoringOptions
) -> ChunkResult:
    """Score in this process, with this process's cache."""
    started = time.perf_counter()
    cache = process_cache()
    out = score_batch(batch, package, cache.get(package), options)
    return ChunkResult(out, failed_rows(out), os.getpid(), sum(cache.loads.values()),
                       time.perf_counter() - started, batch)


_Remote = tuple[bytes, int, int, int, float]


def _score_remote(package: ModelPackage, payload: bytes, options: ScoringOptions) -> _Remote:
    result = score_local(package, from_ipc(payload), options)
    return to_ipc(result.batch), result.failed_rows, result.pid, result.loads, result.seconds


class ScoringPool:
    """Scores chunks in order, in ``workers`` processes (0: in this process)."""

    def __init__(self, package: ModelPackage, options: ScoringOptions, *, workers: int) -> None:
        self.package = package
        self.options = options
        self.workers = workers
        self.loads_by_pid: dict[int, int] = {}
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            threads = threads_per_worker(workers)
            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads,),
            )
            # Children start on submit and copy the environment then: start them all
            # now, so the thread limits apply before numpy loads in them.
            with _thread_env(threads), _main_not_reimported():
                for _ in range(workers):
                    self._executor.submit(os.getpid)

    def map_ordered(self, batches: Iterable[pa.RecordBatch]) -> Iterator[ChunkResult]:
        """Yield results in input order, with at most ``2 * workers + 1`` chunks in flight."""
        if self._executor is None:
            for batch in batches:
                result = score_local(self.package, batch, self.options)
                self.loads_by_pid[result.pid] = result.loads
                yield result
            return
        window: deque[tuple[pa.RecordBatch, Future[_Remote]]] = deque()
        limit = 2 * self.workers + 1
        try:
            for batch in batches:
                future = self._executor.submit(_score_remote, self.package, to_ipc(batch),
                                               self.options)
                window.append((batch, future))
                if len(window) >= limit:
                    yield self._collect(*window.popleft())
            while window:
                yield self._collect(*window.popleft())
        except BrokenProcessPool as exc:
            raise JobError(
                "a scoring worker process died (out of memory or killed?); nothing was "
                "published; run the job again with --resume to continue"
            ) from exc

    def _collect(self, source: pa.RecordBatch, future: Future[_Remote]) -> ChunkResult:
        payload, failed, pid, loads, seconds = future.result()
        self.loads_by_pid[pid] = loads
        return ChunkResult(from_ipc(payload), failed, pid, loads, seconds, source)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
