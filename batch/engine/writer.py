"""Writing scored chunks in a background thread, in order.

Writing a chunk to its output and recording it in the job manifest waits on
the disk or the network (and fsyncs), which releases the GIL: done in a
thread, it overlaps with the reading and scoring this process does meanwhile.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_STOP = object()


class OrderedWriter(Generic[T]):
    """Calls ``write`` on each item given to :meth:`put`, in order, in one thread,
    with at most ``depth`` items waiting.

    The first error ``write`` raises stops the writing; it is raised by the next
    :meth:`put` or by :meth:`close`. Items after a failed one are not written.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chunk-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:
                try:
                    self._write(item)  # type: ignore[arg-type]
                except BaseException as exc:  # raised in the caller's thread
                    self._error = exc

    def put(self, item: T) -> None:
        """Queue ``item`` (waiting while ``depth`` items wait)."""
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Write what is queued, stop the thread, and raise the first error, if any."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> OrderedWriter[T]:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
            return
        # the body failed: finish the queued writes, and raise the body's error
        with contextlib.suppress(BaseException):
            self.close()
