"""The counts of one chunk on its baseline's buckets, and their merge.

:func:`count_chunk` runs where the chunk is scored (a worker process, a Dask
worker, the job's own process) on the features as the model saw them and the
scored prediction columns; only these small arrays leave the process. Every
figure here merges exactly (counts add, min and max take the extreme), so the
stats of any split of the same rows into chunks are identical.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa

from batch.errors import ConfigError
from batch.monitoring.baseline import Baseline, CategoricalProfile, NumericProfile
from batch.monitoring.buckets import (
    Tally,
    category_counts,
    coarser_counts,
    coded_counts,
    numeric_counts,
    tally,
)
from batch.monitoring.exactsum import decode, encode, exact_sum, to_float, units

BLOCK = 1 << 15  # values per pass of the numeric kernels (256 KiB of float64)


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
    sum: int = 0  # numeric: the exact sum of the finite values, in units of 2 ** -1074
    # numeric: the sum of their squares, a float (merged sums agree to ~1e-15, so it is
    # left out of equality; nothing bit-identical is derived from it)
    sum_sq: float = field(default=0.0, compare=False)
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
            sum=self.sum + other.sum, sum_sq=self.sum_sq + other.sum_sq, new=self.new + other.new)

    @property
    def mean(self) -> float | None:
        """The mean of the finite values, correctly rounded from the exact sum."""
        finite = self.rows - self.missing
        return to_float(self.sum) / finite if finite and self.low is not None else None


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """The stats of some rows (a chunk, or chunks merged) under one baseline fingerprint."""

    fingerprint: str
    rows: int
    columns: tuple[ColumnStats, ...]  # the baseline's features, then its predictions
    # per humility rule ("name/action"): the rows it fired on
    humility: tuple[tuple[str, int], ...] = ()

    def merge(self, other: ChunkStats) -> ChunkStats:
        """Both together.

        Raises:
            ConfigError: the two were counted on different baselines.
        """
        if other.fingerprint != self.fingerprint:
            raise ConfigError(f"stats of baseline {other.fingerprint[:12]} cannot merge with "
                              f"stats of baseline {self.fingerprint[:12]}")
        fired = dict(self.humility)
        for key, rows in other.humility:
            fired[key] = fired.get(key, 0) + rows
        return ChunkStats(self.fingerprint, self.rows + other.rows, tuple(
            a.merge(b) for a, b in zip(self.columns, other.columns, strict=True)),
            tuple(fired.items()))

    def column(self, name: str) -> ColumnStats:
        for stats in self.columns:
            if stats.name == name:
                return stats
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (the job manifest keeps it with its chunk); exact sums as text."""
        return {"fingerprint": self.fingerprint, "rows": self.rows,
                "columns": [{**{name: getattr(c, name) for name in _FIELDS},
                             "counts": list(c.counts), "sketch": list(c.sketch),
                             "sum": encode(c.sum)} for c in self.columns],
                "humility": [list(pair) for pair in self.humility]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChunkStats:
        columns = tuple(ColumnStats(**{**c, "counts": tuple(c["counts"]),
                                       "sketch": tuple(c["sketch"]), "sum": decode(c["sum"])})
                        for c in data["columns"])
        humility = tuple((str(key), int(rows)) for key, rows in data.get("humility", ()))
        return cls(data["fingerprint"], data["rows"], columns, humility)


_FIELDS = tuple(f.name for f in fields(ColumnStats))


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
                scored: pa.RecordBatch, *,
                codes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> ChunkStats:
    """Count a chunk: ``features`` as the model got them (name -> values, every row of
    the chunk), ``scored`` the chunk's output (prediction columns by their names;
    a row that could not be scored has nulls, counted as missing).

    ``codes``: for categories, their distinct values and each row's position among
    them (the features' dictionary encoding), so they are counted without hashing.
    """
    codes = codes or {}
    columns = [_count(p, features[p.name], codes.get(p.name)) for p in baseline.features]
    for profile in baseline.predictions:
        values = scored.column(profile.name).to_numpy(zero_copy_only=False)
        columns.append(_count(profile, values))
    return ChunkStats(baseline.fingerprint, scored.num_rows, tuple(columns))


def _count(profile: NumericProfile | CategoricalProfile, values: np.ndarray,
           codes: tuple[np.ndarray, np.ndarray] | None = None) -> ColumnStats:
    if isinstance(profile, CategoricalProfile):
        seen = frozenset(profile.seen)
        counts = (category_counts(values, profile.levels, seen) if codes is None else
                  coded_counts(*codes, profile.levels, seen))
        return ColumnStats(profile.name, _ints(counts), new=int(counts[-2]))
    x = np.asarray(values, dtype=np.float64)
    if x.size > BLOCK:  # in cache-sized blocks: a pass over a block stays in the CPU cache
        parts = (_count(profile, x[i:i + BLOCK]) for i in range(0, x.size, BLOCK))
        return functools.reduce(ColumnStats.merge, parts)
    edges = profile.sketch_edges
    one = tally(x, edges)
    filled = one.filled  # a scratch array: use it before the next tally
    bound = None if one.low is None or one.high is None else max(-one.low, one.high)
    total = exact_sum(filled, bound=bound) - one.missing * units(one.filler)
    with np.errstate(over="ignore", invalid="ignore"):  # squares of 1e300: infinite
        squares = float(np.dot(filled, filled)) - one.missing * float(
            np.float64(one.filler) * one.filler)
    squares = math.inf if math.isnan(squares) else squares
    coarse = coarser_counts(one.counts, edges, profile.edges)  # deciles from the sketch
    counts = coarse if coarse is not None else numeric_counts(x, profile.edges)
    return ColumnStats(
        profile.name, _ints(counts), sketch=_ints(one.counts),
        out_low=_outside(one, edges, profile.min, x, low=True),
        out_high=_outside(one, edges, profile.max, x, low=False),
        low=one.low, high=one.high, sum=total, sum_sq=squares)


def _outside(one: Tally, edges: tuple[float, ...], limit: float | None, x: np.ndarray,
             *, low: bool) -> int:
    """Finite values below the training min (``low``) or above the max: the sketch's
    first or last bucket when its edges start at the min and end just above the max."""
    if limit is None or one.low is None:
        return 0
    if low:
        if edges and edges[0] == limit:
            return int(one.counts[0])
        return int(np.count_nonzero(np.isfinite(x) & (x < limit)))
    if edges and edges[-1] == float(np.nextafter(limit, np.inf)):
        return int(one.counts[-2])
    return int(np.count_nonzero(np.isfinite(x) & (x > limit)))


def _ints(counts: np.ndarray) -> tuple[int, ...]:
    return tuple(counts.tolist())


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _extreme(pick: Callable[[float, float], float], a: float | None, b: float | None
             ) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return float(pick(a, b))

