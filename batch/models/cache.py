"""A bounded LRU cache of loaded models, keyed by package digest.

Each scoring process keeps one (:func:`process_cache`), so a model loads once
per process, never per chunk.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict

from batch.models.loaders import Scorer, get_loader
from batch.models.package import ModelPackage

DEFAULT_MAXSIZE = 4


class ModelCache:
    """At most ``maxsize`` loaded models; the least recently used is dropped first."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE, *, threads: int = 1) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.threads = threads
        self.loads: Counter[str] = Counter()
        self._models: OrderedDict[str, Scorer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, package: ModelPackage) -> Scorer:
        """The loaded model for ``package``, loading it on first use."""
        with self._lock:
            scorer = self._models.get(package.digest)
            if scorer is not None:
                self._models.move_to_end(package.digest)
                return scorer
            scorer = get_loader(package.manifest.artifact.kind).load(package, threads=self.threads)
            self.loads[package.digest] += 1
            self._models[package.digest] = scorer
            while len(self._models) > self.maxsize:
                self._models.popitem(last=False)
            return scorer

    def __contains__(self, digest: object) -> bool:
        return digest in self._models

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


_process_cache: ModelCache | None = None


def process_cache() -> ModelCache:
    """This process's cache (created on first use)."""
    global _process_cache
    if _process_cache is None:
        _process_cache = ModelCache()
    return _process_cache


def configure_process_cache(maxsize: int = DEFAULT_MAXSIZE, *, threads: int = 1) -> ModelCache:
    """Replace this process's cache; scoring workers call it at start-up."""
    global _process_cache
    _process_cache = ModelCache(maxsize, threads=threads)
    return _process_cache
