"""The score histogram of a binary model, and the ranking metrics it gives.

Scores (the positive-class probability) fall in ``BINS = 100`` bins of width
0.01: ``[0, 0.01), ..., [0.98, 0.99), [0.99, 1.0]``, bin ``min(floor(100 p), 99)``
(scores outside [0, 1] go to the end bins). The histogram holds, per bin, the
positives and the negatives: counts of labelled rows for the realised metrics,
expected counts (sums of calibrated probabilities) for the estimated ones.
Rows in one bin count as tied:

- :func:`auc`: the trapezoid under the ROC curve through the 101 bin edges, a
  positive and a negative in the same bin counting half. Only pairs within one
  bin can be misjudged, so it is within ``tie_share / 2`` of the exact AUC
  (:func:`tie_share`: the share of positive-negative pairs that share a bin);
  for scores spread over a few dozen bins that is well under 0.005.
- :func:`ks`: the largest ``|TPR - FPR|`` at the 101 bin edges. It is at most
  the exact KS statistic, short of it only by how far TPR - FPR moves inside
  the bin where the exact maximum falls.
- :func:`top_rate`: the positive share of the ``share * n`` highest-scored rows.
  The top usually ends inside a bin; that bin's positives are taken as spread
  evenly over its rows, so taking a fraction ``f`` of its rows takes ``f`` of
  its positives. The error is bounded by how unevenly the positives sit in that
  one bin (for scores that track the probability: about the bin width, 0.01).

:func:`binned_sums` gives exact per-bin sums of floats, so histograms of
expected counts merge bit-identically like counts do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from batch.monitoring.exactsum import UNIT_EXPONENT

BINS = 100


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Each score's bin (``int64``): ``min(floor(100 * score), 99)``, clipped to [0, 99].

    ``scores`` must be free of NaN (the callers drop those rows first).
    """
    scaled = np.clip(np.asarray(scores, dtype=np.float64) * BINS, 0, BINS - 1)
    return np.floor(scaled).astype(np.int64)


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The AUC of a histogram (positives and negatives per bin, lowest bin first).

    Integer counts give the exact trapezoid, correctly rounded. None without
    positives or without negatives.
    """
    total_pos, total_neg = sum(positives), sum(negatives)
    if total_pos <= 0 or total_neg <= 0:
        return None
    area, above = 0 * total_pos, 0 * total_pos  # ints stay ints: the sums are exact
    for pos, neg in zip(reversed(positives), reversed(negatives), strict=True):
        area += neg * (2 * above + pos)
        above += pos
    return float(area / (2 * total_pos * total_neg))


def tie_share(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The share of positive-negative pairs in the same bin (the AUC is within half of it)."""
    total_pos, total_neg = sum(positives), sum(negatives)
    if total_pos <= 0 or total_neg <= 0:
        return None
    same = sum(pos * neg for pos, neg in zip(positives, negatives, strict=True))
    return float(same / (total_pos * total_neg))


def ks(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The largest ``|TPR - FPR|`` over the bin edges; None without both classes."""
    total_pos, total_neg = sum(positives), sum(negatives)
    if total_pos <= 0 or total_neg <= 0:
        return None
    best, tp, fp = 0 * total_pos, 0 * total_pos, 0 * total_pos
    for pos, neg in zip(reversed(positives), reversed(negatives), strict=True):
        tp, fp = tp + pos, fp + neg
        best = max(best, abs(tp * total_neg - fp * total_pos))  # exact for counts
    return float(best / (total_pos * total_neg))


def top_rate(positives: Sequence[float], counts: Sequence[float], share: float) -> float | None:
    """The positive share among the ``share`` (0 < share <= 1) highest-scored rows,
    interpolated within the bin where they end; None without rows."""
    want = share * sum(counts)
    if want <= 0:
        return None
    taken, hits = 0.0, 0.0
    for pos, count in zip(reversed(positives), reversed(counts), strict=True):
        if count <= 0:
            continue
        if taken + count >= want:
            hits += float(pos) * ((want - taken) / count)
            break
        taken, hits = taken + count, hits + pos
    return min(max(hits / want, 0.0), 1.0)


def binned_sums(values: np.ndarray, bins: np.ndarray, size: int) -> list[int]:
    """The exact sum of ``values`` (float64, each in [-1, 1]) per bin (``bins``: int64
    in ``range(size)``), in units of ``2 ** -1074``.

    The levels of :func:`~batch.monitoring.exactsum.exact_sum`, with each level's
    whole multiples summed per bin by ``numpy.bincount`` (exact below ``2 ** 53``
    units per bin).

    Raises:
        ValueError: a value is outside [-1, 1] or not a number.
    """
    totals = [0] * size
    if not values.size:
        return totals
    bound = float(np.max(np.abs(values)))
    if not bound <= 1.0:
        raise ValueError(f"binned_sums takes values in [-1, 1], got {bound!r}")
    spare = 53 - values.size.bit_length() - 1  # bits per level: n terms stay below 2 ** 53
    rest = values
    while bound > 0:
        shift = max(math.frexp(bound)[1] - spare, UNIT_EXPONENT)
        sigma = 1.5 * 2.0 ** (shift + 52)
        high = (rest + sigma) - sigma  # each rounded to a whole multiple of 2 ** shift
        sums = np.bincount(bins, weights=high, minlength=size)
        for k in np.flatnonzero(sums).tolist():
            totals[k] += int(math.ldexp(float(sums[k]), -shift)) << (shift - UNIT_EXPONENT)
        if shift == UNIT_EXPONENT:
            break
        rest = rest - high  # exact: at most half a unit each
        bound = float(np.max(np.abs(rest)))
    return totals
