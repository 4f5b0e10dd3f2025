"""Counting values on a baseline's frozen buckets, vectorised.

Numeric buckets are ``(-inf, e1), [e1, e2), ..., [ek, +inf)`` (a value equal to an
edge goes to the bucket that starts there) and a last bucket for missing values
(NaN, +-inf). Categorical buckets are the kept levels, then ``__other__`` (seen in
training, not kept), ``__new__`` (never seen) and ``__missing__``. Counts are int64
and merge by addition, so any split of the rows into chunks gives the same sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

OTHER, NEW, MISSING = "__other__", "__new__", "__missing__"


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts of ``values`` on the buckets of ``edges``, the missing bucket last
    (``len(edges) + 2`` counts in all)."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    counts = np.zeros(len(edges) + 2, dtype=np.int64)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), x[finite], side="right")
    counts[: len(edges) + 1] = np.bincount(index, minlength=len(edges) + 1)
    counts[-1] = int(x.size - finite.sum())
    return counts


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
