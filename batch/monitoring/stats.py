"""The counts of one chunk on its baseline's buckets, and their merge.

:func:`count_chunk` runs where the chunk is scored (a worker process, a Dask
worker, the job's own process) on the features as the model saw them and the
scored prediction columns; only these small arrays leave the process. Every
figure here merges exactly (counts add, min and max take the extreme), so the
stats of any split of the same rows into chunks are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from batch.errors import ConfigError
from batch.monitoring.baseline import Baseline, CategoricalProfile, NumericProfile
from batch.monitoring.buckets import (
    category_counts,
    coarser_counts,
    finite_counts,
    finite_values,
)


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """One feature or prediction column of a chunk, on its profile's buckets."""

    name: str
    counts: tuple[int, ...]  # on the profile's buckets; the missing bucket last
    sketch: tuple[int, ...] = ()  # numeric: on the percentile edges
    out_low: int = 0  # numeric: finite values below the training min
    out_high: int = 0  # numeric: finite values above the training max
    low: float | None = None  # numeric: the smallest finite value
    high: float | None = None
    new: int = 0  # categorical: values never seen in training

    @property
    def rows(self) -> int:
        return sum(self.counts)

    @property
    def missing(self) -> int:
        return self.counts[-1]

    def merge(self, other: ColumnStats) -> ColumnStats:
        return replace(
            self, counts=_add(self.counts, other.counts), sketch=_add(self.sketch, other.sketch),
            out_low=self.out_low + other.out_low, out_high=self.out_high + other.out_high,
            low=_extreme(min, self.low, other.low), high=_extreme(max, self.high, other.high),
            new=self.new + other.new)


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """The stats of some rows (a chunk, or chunks merged) under one baseline fingerprint."""

    fingerprint: str
    rows: int
    columns: tuple[ColumnStats, ...]  # the baseline's features, then its predictions

    def merge(self, other: ChunkStats) -> ChunkStats:
        """Both together.

        Raises:
            ConfigError: the two were counted on different baselines.
        """
        if other.fingerprint != self.fingerprint:
            raise ConfigError(f"stats of baseline {other.fingerprint[:12]} cannot merge with "
                              f"stats of baseline {self.fingerprint[:12]}")
        return ChunkStats(self.fingerprint, self.rows + other.rows, tuple(
            a.merge(b) for a, b in zip(self.columns, other.columns, strict=True)))

    def column(self, name: str) -> ColumnStats:
        for stats in self.columns:
            if stats.name == name:
                return stats
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (the job manifest keeps it with its chunk)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChunkStats:
        columns = tuple(ColumnStats(**{**c, "counts": tuple(c["counts"]),
                                       "sketch": tuple(c["sketch"])}) for c in data["columns"])
        return cls(data["fingerprint"], data["rows"], columns)


def merged(parts: Iterable[ChunkStats]) -> ChunkStats | None:
    """The merge of ``parts`` (None when there are none).

    Raises:
        ConfigError: two of them were counted on different baselines.
    """
    total = None
    for part in parts:
        total = part if total is None else total.merge(part)
    return total


def count_chunk(baseline: Baseline, features: Mapping[str, np.ndarray],
                scored: pa.RecordBatch) -> ChunkStats:
    """Count a chunk: ``features`` as the model got them (name -> values, every row of
    the chunk), ``scored`` the chunk's output (prediction columns by their names;
    a row that could not be scored has nulls, counted as missing)."""
    columns = [_count(p, features[p.name]) for p in baseline.features]
    for profile in baseline.predictions:
        values = scored.column(profile.name).to_numpy(zero_copy_only=False)
        columns.append(_count(profile, values))
    return ChunkStats(baseline.fingerprint, scored.num_rows, tuple(columns))


def _count(profile: NumericProfile | CategoricalProfile, values: np.ndarray) -> ColumnStats:
    if isinstance(profile, CategoricalProfile):
        seen = frozenset(profile.seen)
        counts = category_counts(values, profile.levels, seen)
        return ColumnStats(profile.name, _ints(counts), new=int(counts[-2]))
    x = np.asarray(values, dtype=np.float64)
    finite = finite_values(x)  # once, for the counts and the range alike
    missing = x.size - finite.size
    sketch = finite_counts(finite, profile.sketch_edges, missing=missing)
    coarse = coarser_counts(sketch, profile.sketch_edges, profile.edges)  # deciles: percentiles
    counts = coarse if coarse is not None else finite_counts(finite, profile.edges,
                                                             missing=missing)
    return ColumnStats(
        profile.name, _ints(counts), sketch=_ints(sketch),
        out_low=int((finite < profile.min).sum()) if profile.min is not None else 0,
        out_high=int((finite > profile.max).sum()) if profile.max is not None else 0,
        low=float(finite.min()) if finite.size else None,
        high=float(finite.max()) if finite.size else None)


def _ints(counts: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in counts)


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _extreme(pick: Callable[[float, float], float], a: float | None, b: float | None
             ) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return float(pick(a, b))

