"""Scoring on a Dask cluster: the same chunks and ordering as the local pool.

Each Dask worker process keeps its own model cache (the per-process cache of
``batch.models.cache``), so a model loads once per worker. Partitions that a
worker can read itself (CSV byte ranges) are read there; the client only
writes the encoded results, in order, and records the job manifest, so
exactly-once output and resume hold as on one machine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

import pyarrow as pa

from batch.engine.pool.child import ChunkJob, ChunkResult, run_chunk, to_ipc
from batch.engine.pool.startup import thread_limits
from batch.errors import ConfigError, JobError
from connectors import Part


def _worker_setup(threads: int = 1) -> None:
    """Limit native thread pools in a worker process, as the local pool does."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


class DaskPool:
    """Scores chunks in order on a ``distributed`` cluster.

    ``address`` names a running scheduler (``tcp://host:8786``); without one a
    ``LocalCluster`` of ``workers`` processes with one thread each is started
    and closed with the pool.
    """

    def __init__(self, job: ChunkJob, *, address: str | None = None, workers: int = 2) -> None:
        try:
            from distributed import Client, KilledWorker, LocalCluster
            from distributed.comm.core import CommClosedError
        except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
            raise ConfigError("--executor dask needs: pip install 'dask[distributed]'") from exc
        # a worker that died or left (a cancelled future is a concurrent.futures one)
        self._lost: tuple[type[BaseException], ...] = (KilledWorker, CommClosedError,
                                                        CancelledError)
        self.job = job
        self.loads_by_pid: dict[int, int] = {}
        self._cluster: Any = None
        try:
            if address:
                self._client = Client(address, timeout="10s")
            else:
                self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             env=thread_limits(1))
                self._client = Client(self._cluster)
        except OSError as exc:
            raise ConfigError(f"--dask-address {address}: cannot reach the scheduler: {exc}"
                              ) from exc
        self._client.run(_worker_setup)
        self.workers = len(self._client.scheduler_info().get("workers", {})) or workers

    def map_ordered(self, chunks: Iterable[pa.RecordBatch | Part]) -> Iterator[ChunkResult]:
        """Yield results in input order, with at most ``2 * workers + 1`` chunks in flight."""
        window: deque[Any] = deque()
        limit = 2 * self.workers + 1
        for chunk in chunks:
            payload = to_ipc(chunk) if isinstance(chunk, pa.RecordBatch) else chunk
            window.append(self._client.submit(run_chunk, self.job, payload, pure=False))
            if len(window) >= limit:
                yield self._collect(window.popleft())
        while window:
            yield self._collect(window.popleft())

    def _collect(self, future: Any) -> ChunkResult:
        try:
            result: ChunkResult = future.result()
        except self._lost as exc:
            raise JobError(f"a Dask worker died or left: {exc}; nothing was published; "
                           "run the job again with --resume to continue") from exc
        self.loads_by_pid[result.pid] = result.loads
        return result

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
