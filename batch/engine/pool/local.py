"""The local pool: scores chunks in order in worker processes on this machine.

Each worker limits its native thread pools (BLAS, OpenMP, onnxruntime) to its
share of the cores, so N workers do not oversubscribe the machine, and loads
each model once. This process scores too (``inline``), so N scorers cost N
processes. What a worker runs is :mod:`batch.engine.pool.child`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from batch.engine.pool.child import ChunkJob, ChunkResult, run_chunk, run_limited, to_ipc
from batch.engine.pool.startup import start_processes, take_prestarted, threads_per_worker
from batch.errors import JobError
from batch.models.package import ModelPackage
from batch.scoring.columns import ScoringOptions
from connectors import Part


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

    def map_ordered(self, chunks: Iterable[pa.RecordBatch | Part]) -> Iterator[ChunkResult]:
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

    def _run_inline(self, chunk: pa.RecordBatch | Part) -> Future[ChunkResult]:
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
