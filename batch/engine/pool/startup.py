"""Starting the scoring worker processes.

Only the standard library loads here, so the command line can start the
workers first thing (:func:`prestart`), and they load numpy, pyarrow, pandas
and the model runtimes on the other cores while this process loads the
engine. Starting them after the engine costs a resumed job a third of a second
or more. The pool picks them up with :func:`take_prestarted`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_limits: Any = None


def thread_limits(threads: int) -> dict[str, str]:
    """The environment that caps a scoring process's native thread pools at ``threads``
    (local workers and Dask workers alike)."""
    return {var: str(threads) for var in THREAD_VARS}


def default_workers() -> int:
    return os.cpu_count() or 1


def scorers(workers: int | None) -> int:
    """Local scoring processes for a job's ``workers`` option (default: one per core)."""
    return default_workers() if workers is None else workers


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass
class WorkerProcesses:
    """A started process pool, and a future per process that is done once it is up."""

    executor: ProcessPoolExecutor
    starting: list[Future[int]]
    workers: int
    threads: int


def start_processes(workers: int, threads: int) -> WorkerProcesses:
    """Spawn ``workers`` processes whose native thread pools use ``threads`` threads."""
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads,),
    )
    # Children start on submit and copy the environment then: start them all
    # now, so the thread limits apply before numpy loads in them.
    with _thread_env(threads), _main_not_reimported():
        starting = [executor.submit(os.getpid) for _ in range(workers)]
    return WorkerProcesses(executor, starting, workers, threads)


_prestarted: WorkerProcesses | None = None


def prestart(scorers: int) -> None:
    """Start the workers of a job with ``scorers`` scoring processes, this one included
    (this process scores too, so ``scorers - 1`` workers share the cores with it)."""
    global _prestarted
    if scorers > 1 and _prestarted is None:
        _prestarted = start_processes(scorers - 1, threads_per_worker(scorers))


def take_prestarted(workers: int, threads: int) -> WorkerProcesses | None:
    """The prestarted processes, if they are ``workers`` with ``threads`` threads each."""
    global _prestarted
    found = _prestarted
    if found is None or (found.workers, found.threads) != (workers, threads):
        return None
    _prestarted = None
    return found


def discard_prestarted() -> None:
    """Stop prestarted processes that no pool took (the job did not need them)."""
    global _prestarted
    if _prestarted is not None:
        _prestarted.executor.shutdown(wait=True, cancel_futures=True)
        _prestarted = None


@contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    os.environ.update(thread_limits(threads))
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
    names: tuple[str, ...] = ("__file__", "__spec__")
    saved: dict[str, Any] = {k: main.__dict__[k] for k in names if main and k in main.__dict__}
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
    """Runs first in each worker: thread limits, then the scoring code and model cache."""
    global _limits
    os.environ.update(thread_limits(threads))
    from threadpoolctl import threadpool_limits

    from batch.engine.pool.process_exit import skip_final_collection
    from batch.models.cache import configure_process_cache

    _limits = threadpool_limits(limits=threads)
    configure_process_cache(threads=threads)
    skip_final_collection()
    import batch.engine.pool.child  # noqa: F401  (loaded before the first chunk comes)
