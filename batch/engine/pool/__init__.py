"""Scoring processes: start-up, the child side, the local pool, the Dask pool.

- :mod:`~batch.engine.pool.startup`: spawning local workers (standard library only,
  so the command line starts them before the engine loads);
- :mod:`~batch.engine.pool.child`: what scores one chunk, in whichever process;
- :mod:`~batch.engine.pool.local` / :mod:`~batch.engine.pool.dask`: the two pools,
  both a :class:`~batch.engine.pool.protocol.Pool`.

The names below load on first use: a worker imports only the child side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.engine.pool.child import ChunkJob, ChunkResult, run_chunk
    from batch.engine.pool.dask import DaskPool
    from batch.engine.pool.local import ScoringPool
    from batch.engine.pool.protocol import Pool

_LAZY = {
    "ChunkJob": "batch.engine.pool.child",
    "ChunkResult": "batch.engine.pool.child",
    "DaskPool": "batch.engine.pool.dask",
    "Pool": "batch.engine.pool.protocol",
    "ScoringPool": "batch.engine.pool.local",
    "run_chunk": "batch.engine.pool.child",
}

__all__ = [
    "ChunkJob",
    "ChunkResult",
    "DaskPool",
    "Pool",
    "ScoringPool",
    "run_chunk",
]

__getattr__ = lazy_names(__name__, _LAZY)
