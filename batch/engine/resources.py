"""Peak memory of a job's process tree (this process and its scoring workers)."""

from __future__ import annotations

import threading

import psutil


class PeakMemory:
    """Samples the resident memory of this process and its children in the background."""

    def __init__(self, interval: float = 0.25) -> None:
        self.peak_bytes = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._me = psutil.Process()

    def sample(self) -> int:
        total = 0
        try:
            total = self._me.memory_info().rss
            for child in self._me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
        except psutil.Error:
            pass
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
