"""Monitoring: the baseline frozen with a model, and counting on its buckets.

- :mod:`~batch.monitoring.buckets`: values counted on a baseline's frozen buckets;
- :mod:`~batch.monitoring.baseline`: the training profile written into a package;
- :mod:`~batch.monitoring.stats`: a chunk's counts on those buckets, merged exactly.

Imports scoring, models and deployments, never the engine or the command line
(an import-linter contract holds it). The names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.monitoring.baseline import Baseline, build_baseline, read_baseline, write_baseline
    from batch.monitoring.stats import ChunkStats, ColumnStats, count_chunk

_LAZY = {
    "Baseline": "batch.monitoring.baseline",
    "ChunkStats": "batch.monitoring.stats",
    "ColumnStats": "batch.monitoring.stats",
    "count_chunk": "batch.monitoring.stats",
    "build_baseline": "batch.monitoring.baseline",
    "read_baseline": "batch.monitoring.baseline",
    "write_baseline": "batch.monitoring.baseline",
}

__all__ = [
    "Baseline",
    "ChunkStats",
    "ColumnStats",
    "build_baseline",
    "count_chunk",
    "read_baseline",
    "write_baseline",
]

__getattr__ = lazy_names(__name__, _LAZY)
