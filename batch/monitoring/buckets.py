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

import numpy as np
import pandas as pd

OTHER, NEW, MISSING = "__other__", "__new__", "__missing__"


CELLS = 4096  # the lookup grid between the first and the last edge


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts of ``values`` on the buckets of ``edges``, the missing bucket last
    (``len(edges) + 2`` counts in all)."""
    x = np.asarray(values, dtype=np.float64)
    finite = finite_values(x)
    return finite_counts(finite, edges, missing=x.size - finite.size)


def finite_values(x: np.ndarray) -> np.ndarray:
    """The finite values of ``x`` (``x`` itself when all are: no copy)."""
    keep = np.isfinite(x)
    return x if keep.all() else x[keep]


def finite_counts(finite: np.ndarray, edges: Sequence[float], *, missing: int) -> np.ndarray:
    """:func:`numeric_counts` of values already split into ``finite`` ones and a
    number of ``missing`` ones (a caller that needs the finite values too)."""
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    index = bucket_index(finite, tuple(edges)) if edges else np.zeros(finite.size, np.int64)
    counts[: len(edges) + 1] = np.bincount(index, minlength=len(edges) + 1)
    counts[-1] = missing
    return counts


def bucket_index(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """``numpy.searchsorted(edges, x, side="right")`` for finite ``x``, about three times
    faster: a grid of cells over the edges gives each value the edges below its cell,
    and one comparison with the edge inside its cell (a cell holding several edges
    falls back to the search). Exact: the cell of a value never decreases as the
    value grows, so an edge in a lower cell is below it and one in a higher cell
    above it."""
    lo, scale, below, inside, first = _grid(edges)
    cell = _cells(x, lo, scale)
    index = below[cell] + (x >= first[cell])
    crowded = inside[cell] > 1
    if crowded.any():
        index[crowded] = np.searchsorted(np.asarray(edges), x[crowded], side="right")
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


@functools.lru_cache(maxsize=512)
def _grid(edges: tuple[float, ...]) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    e = np.asarray(edges, dtype=np.float64)
    lo, hi = float(e[0]), float(e[-1])
    scale = CELLS / (hi - lo) if hi > lo else 0.0
    cells = _cells(e, lo, scale)
    below = np.searchsorted(cells, np.arange(CELLS + 2), side="left")  # edges in lower cells
    inside = np.bincount(cells, minlength=CELLS + 2)
    first = np.full(CELLS + 2, np.inf)
    first[inside >= 1] = e[below[inside >= 1]]
    return lo, scale, below, inside, first


def _cells(x: np.ndarray, lo: float, scale: float) -> np.ndarray:
    """0 below the grid, 1..CELLS on it, CELLS + 1 above it."""
    return (np.clip(np.floor((x - lo) * scale), -1, CELLS) + 1).astype(np.int64)


def category_counts(values: np.ndarray, levels: Sequence[str], seen: frozenset[str]
                    ) -> np.ndarray:
    """Counts of ``values`` on ``levels`` + other + new + missing (``len(levels) + 3``).

    ``seen``: every training level (a value seen but not kept is ``__other__``).
    A missing value is None, NaN or an empty string. Distinct values are counted
    by hashing (pandas), so the Python work is per distinct value, not per row.
    """
    counts = np.zeros(len(levels) + 3, dtype=np.int64)
    slot = {level: i for i, level in enumerate(levels)}
    tally = pd.Series(np.asarray(values, dtype=object)).value_counts(dropna=False, sort=False)
    for value, n in zip(tally.index.tolist(), tally.tolist(), strict=True):
        label = level_label(value)
        if label is None:
            counts[-1] += n
        elif label in slot:
            counts[slot[label]] += n
        else:
            counts[len(levels) + (0 if label in seen else 1)] += n
    return counts


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
