"""A bounded LRU cache of loaded models, keyed by package digest.

Each scoring process keeps one (:func:`process_cache`), so a model loads once
per process, never per chunk.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from pathlib import Path

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

    @staticmethod
    def key(package: ModelPackage, fast: str | None = None) -> str:
        """What :attr:`loads` counts a model under."""
        return package.digest if fast is None else f"{package.digest}:{fast}"

    def get(self, package: ModelPackage, fast: str | None = None) -> Scorer:
        """The loaded model for ``package``, loading it on first use.

        ``fast``: an ONNX file checked against the package (see
        :mod:`batch.models.onnx_fastpath`), scored with onnxruntime.
        """
        with self._lock:
            return self._get(package, fast)

    def _get(self, package: ModelPackage, fast: str | None) -> Scorer:
        key = self.key(package, fast)
        scorer = self._models.get(key)
        if scorer is not None:
            self._models.move_to_end(key)
            return scorer
        if fast is None:
            scorer = get_loader(package.manifest.artifact.kind).load(package, threads=self.threads)
        else:
            from batch.models.onnx_fastpath import FastScorer

            scorer = FastScorer(package, Path(fast).read_bytes(), lambda: self.get(package),
                                self.threads)
        self.loads[key] += 1
        self._models[key] = scorer
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
