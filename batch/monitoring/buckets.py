"""Counting values on a baseline's frozen buckets, vectorised.

Numeric buckets are ``(-inf, e1), [e1, e2), ..., [ek, +inf)`` (a value equal to an
edge goes to the bucket that starts there) and a last bucket for missing values
(NaN, +-inf). Categorical buckets are the kept levels, then ``__other__`` (seen in
training, not kept), ``__new__`` (never seen) and ``__missing__``. Counts are int64
and merge by addition, so any split of the rows into chunks gives the same sums.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from batch.monitoring.scratch import scratch

OTHER, NEW, MISSING = "__other__", "__new__", "__missing__"


CELLS = 4096  # the lookup grid between the first and the last edge


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts of ``values`` on the buckets of ``edges``, the missing bucket last
    (``len(edges) + 2`` counts in all)."""
    x = np.asarray(values, dtype=np.float64)
    return tally(x, tuple(edges)).counts


@dataclass(frozen=True, slots=True)
class Tally:
    """One pass over a numeric column: its counts on some edges (missing last), how
    many values are missing, and the values with each missing one (NaN, +-inf)
    replaced by ``filler``, one of the finite values (so min and max need no mask)."""

    counts: np.ndarray
    missing: int
    filled: np.ndarray  # ``x`` itself, or a scratch array valid until the next tally
    filler: float  # what stands for a missing value in ``filled`` (0.0: none missing)
    low: float | None  # the smallest finite value
    high: float | None


def tally(x: np.ndarray, edges: tuple[float, ...]) -> Tally:
    """Count float64 ``x`` on ``edges`` (the missing bucket last) in a few vectorised
    passes over scratch arrays. Exact: a value equal to an edge goes to the bucket
    that starts there, NaN and +-inf to the missing bucket."""
    n = x.size
    ok = np.isfinite(x, out=scratch(n, "ok", np.bool_))
    missing = n - int(np.count_nonzero(ok))
    filled, filler, posinf = x, 0.0, 0
    if missing:
        if missing > int(np.count_nonzero(np.isnan(x, out=scratch(n, "nan", np.bool_)))):
            posinf = int(np.count_nonzero(np.equal(x, np.inf, out=scratch(n, "inf", np.bool_))))
        if missing < n:
            filler = float(x[int(np.argmax(ok))])
            filled = scratch(n, "filled")
            np.copyto(filled, x)
            np.copyto(filled, filler, where=np.logical_not(ok, out=ok))
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    if edges:
        counts[:-1] = np.bincount(bucket_index(x, edges), minlength=len(edges) + 1)
        counts[0] -= missing - posinf  # NaN and -inf were put first
        counts[_grid(edges).inf_bucket] -= posinf
    else:
        counts[0] = n - missing
    counts[-1] = missing
    if missing == n:
        return Tally(counts, missing, np.zeros(n), 0.0, None, None)
    return Tally(counts, missing, filled, filler, float(filled.min()), float(filled.max()))


def bucket_index(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """``numpy.searchsorted(edges, x, side="right")`` for finite ``x`` (NaN and -inf
    give 0, +inf ``len(edges)``), several times faster: a grid of cells over the
    edges gives each value the edges below its cell, and one comparison with the
    edge inside its cell (a cell holding several edges falls back to the search).
    Exact: the cell of a value never decreases as the value grows, so an edge in a
    lower cell is below it and one in a higher cell above it.

    The result is a scratch array, valid until the next call in this thread.
    """
    grid = _grid(edges)
    n = x.size
    cell = _cells(x, grid.scale, grid.offset, work=scratch(n, "cell-f"),
                  out=scratch(n, "cell", np.int32))
    # mode="clip" is numpy's fast path; every cell is in range anyway
    index = np.take(grid.below, cell, out=scratch(n, "index", np.intp), mode="clip")
    first = np.take(grid.first, cell, out=scratch(n, "first"), mode="clip")
    index += np.greater_equal(x, first, out=scratch(n, "above", np.bool_))
    if grid.crowded:
        crowded = np.take(grid.inside, cell, mode="clip") > 1
        values = x[crowded]
        found = np.searchsorted(np.asarray(edges), values, side="right")
        found[np.isnan(values)] = 0  # as everywhere else
        index[crowded] = found
    return index


def coarser_counts(fine: np.ndarray, fine_edges: tuple[float, ...],
                   edges: tuple[float, ...]) -> np.ndarray | None:
    """The counts on ``edges`` summed from counts on ``fine_edges`` (missing bucket
    last in both), when every edge is one of the fine edges; else None."""
    parent = _parents(fine_edges, edges)
    if parent is None:
        return None
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    np.add.at(counts, parent, fine[:-1])
    counts[-1] = fine[-1]
    return counts


@functools.lru_cache(maxsize=512)
def _parents(fine_edges: tuple[float, ...], edges: tuple[float, ...]) -> np.ndarray | None:
    """For each fine bucket, the bucket of ``edges`` that holds it."""
    if not set(edges) <= set(fine_edges):
        return None
    starts = np.asarray((-np.inf, *fine_edges))  # where each fine bucket starts
    return np.searchsorted(np.asarray(edges, dtype=np.float64), starts, side="right")


@dataclass(frozen=True, slots=True)
class _Grid:
    scale: float
    offset: float
    below: np.ndarray  # per cell: the edges in lower cells
    first: np.ndarray  # per cell: its lowest edge (NaN: none, so nothing is above it)
    inside: np.ndarray  # per cell: how many edges
    crowded: bool  # some cell holds several edges
    inf_bucket: int  # where +inf lands (to take it out again: it is missing)


@functools.lru_cache(maxsize=512)
def _grid(edges: tuple[float, ...]) -> _Grid:
    e = np.asarray(edges, dtype=np.float64)
    lo, hi = float(e[0]), float(e[-1])
    scale = CELLS / (hi - lo) if hi > lo else 0.0
    offset = 1.0 - lo * scale
    if not (np.isfinite(scale) and np.isfinite(offset)):  # edges too far apart: search
        scale, offset = 0.0, 1.0
    cells = _cells(e, scale, offset, work=np.empty(e.size), out=np.empty(e.size, np.int32))
    below = np.searchsorted(cells, np.arange(CELLS + 2), side="left").astype(np.intp)
    inside = np.bincount(cells, minlength=CELLS + 2)
    first = np.full(CELLS + 2, np.nan)
    first[inside >= 1] = e[below[inside >= 1]]
    crowded = bool((inside > 1).any())
    top = max(int(_cells(np.array([np.inf]), scale, offset, work=np.empty(1),
                         out=np.empty(1, np.int32))[0]), 0)
    inf_bucket = len(edges) if inside[top] > 1 else int(below[top]) + (inside[top] == 1)
    return _Grid(scale, offset, below, first, inside, crowded, inf_bucket)


def _cells(x: np.ndarray, scale: float, offset: float, *, work: np.ndarray, out: np.ndarray
           ) -> np.ndarray:
    """0 below the grid, 1..CELLS on it, CELLS + 1 above it (NaN: negative, read as 0):
    a function of ``x`` that never decreases, computed alike for values and edges."""
    with np.errstate(invalid="ignore"):  # inf * 0 (one edge) is NaN, and NaN casts to
        np.multiply(x, scale, out=work)  # the least int32 (or 0): a lookup with
        work += offset  # mode="clip" reads cell 0
        np.clip(work, 0.0, CELLS + 1.0, out=work)
        np.copyto(out, work, casting="unsafe")
    return out


def category_counts(values: np.ndarray, levels: Sequence[str], seen: frozenset[str]
                    ) -> np.ndarray:
    """Counts of ``values`` on ``levels`` + other + new + missing (``len(levels) + 3``).

    ``seen``: every training level (a value seen but not kept is ``__other__``).
    A missing value is None, NaN or an empty string. Distinct values are counted
    by hashing (pandas), so the Python work is per distinct value, not per row.
    """
    distinct = pd.Series(np.asarray(values, dtype=object)).value_counts(dropna=False, sort=False)
    return _on_levels(distinct.index.tolist(), distinct.tolist(), levels, seen)


def _on_levels(values: list[object], tallies: list[int], levels: Sequence[str],
               seen: frozenset[str]) -> np.ndarray:
    counts = np.zeros(len(levels) + 3, dtype=np.int64)
    slot = {level: i for i, level in enumerate(levels)}
    for value, n in zip(values, tallies, strict=True):
        label = level_label(value)
        if label is None:
            counts[-1] += n
        elif label in slot:
            counts[slot[label]] += n
        else:
            counts[len(levels) + (0 if label in seen else 1)] += n
    return counts


def coded_counts(labels: np.ndarray, codes: np.ndarray, levels: Sequence[str],
                 seen: frozenset[str]) -> np.ndarray:
    """:func:`category_counts` of ``labels[codes]``, without building it: the rows are
    counted per code, and only the distinct labels are named."""
    per_label = np.bincount(codes, minlength=len(labels))
    return _on_levels(labels.tolist(), per_label.tolist(), levels, seen)


def level_label(value: object) -> str | None:
    """How a category value is named in a baseline (None: missing). Booleans are
    ``true``/``false``; a whole float is named as an integer (``3.0`` -> ``3``)."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
