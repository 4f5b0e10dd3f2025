"""Reusable scratch arrays for the counting kernels.

Counting a chunk makes a dozen temporaries of the chunk's length per column; a
fresh large array costs page faults on first touch, often more than the
arithmetic itself. Each thread keeps one array per purpose and reuses it.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(size: int, purpose: str, dtype: type = np.float64) -> np.ndarray:
    """An uninitialised array of ``size`` items, reused by the next call of the same
    ``purpose`` in this thread (so a caller must be done with it by then)."""
    pool: dict[tuple[str, type], np.ndarray] = _LOCAL.__dict__.setdefault("pool", {})
    buffer = pool.get((purpose, dtype))
    if buffer is None or buffer.size < size:
        buffer = pool[(purpose, dtype)] = np.empty(max(size, 1024), dtype=dtype)
    return buffer[:size]
