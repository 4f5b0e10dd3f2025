"""Exact sums of floats, so sums merge by addition with no rounding at all.

A float sum depends on the order of its terms, so the mean of the same rows cut
into chunks differently would differ in its last bits. :func:`exact_sum` gives
the sum of a float64 array with no error at all, as an integer: the number of
units of ``2 ** -1074`` (every finite float64 is a
whole multiple of ``2 ** -1074``). Sums of any split of the same values add up
to the same integer, so every figure derived from them is bit-identical.

The work is vectorised by error-free extraction (Rump, Ogita and Oishi): adding
and subtracting ``sigma = 1.5 * 2 ** (s + 52)`` rounds each value to a whole
multiple of ``2 ** s`` exactly, and those multiples, while their total stays
below ``2 ** 53`` units, add up exactly in float64. The exact remainders go to
the next, finer level. Values within a few dozen binary orders of magnitude of
each other (most data) take two or three levels.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from batch.monitoring.scratch import scratch

UNIT_EXPONENT = -1074  # every finite float64 is a whole multiple of 2 ** -1074


def exact_sum(x: np.ndarray, *, bound: float | None = None) -> int:
    """The exact sum of the finite float64 values ``x``, in units of ``2 ** -1074``.

    ``bound``: the largest ``abs(x)`` when the caller knows it (saves two passes).

    Raises:
        ValueError: a value is NaN or infinite.
    """
    if not x.size:
        return 0
    if bound is None:
        bound = max(-float(np.min(x)), float(np.max(x)))
    if not math.isfinite(bound):
        raise ValueError("exact_sum takes finite values only")
    spare = 53 - x.size.bit_length() - 1  # bits per level: n terms stay below 2 ** 53 units
    if math.frexp(bound)[1] - spare + 53 > 1023:  # sigma would overflow: rare, per value
        return sum(int(Fraction(v) * (1 << -UNIT_EXPONENT)) for v in x.tolist())
    high, rest = scratch(x.size, "sum-high"), scratch(x.size, "sum-rest")
    total = 0
    values = x
    while bound > 0:
        top = math.frexp(bound)[1]  # |values| < 2 ** top
        shift = max(top - spare, UNIT_EXPONENT)
        sigma = 1.5 * 2.0 ** (shift + 52)
        np.add(values, sigma, out=high)
        high -= sigma  # each value rounded to a whole multiple of 2 ** shift, exactly
        units = int(math.ldexp(float(high.sum()), -shift))  # whole, below 2 ** 53: exact
        total += units << (shift - UNIT_EXPONENT)
        if shift == UNIT_EXPONENT:
            break
        np.subtract(values, high, out=rest)  # exact: at most half a unit each
        if values is not x and not rest.any():  # (the first level rarely ends it)
            break
        values, rest = rest, (scratch(x.size, "sum-next") if values is x else values)
        bound = math.ldexp(1.0, shift - 1)
    return total


def units(value: float) -> int:
    """The finite float ``value`` in units of ``2 ** -1074``, exactly."""
    numerator, denominator = value.as_integer_ratio()  # the denominator: a power of 2
    return numerator * ((1 << -UNIT_EXPONENT) // denominator)


def to_float(units: int) -> float:
    """The float64 nearest to ``units * 2 ** -1074`` (correctly rounded)."""
    return units / (1 << -UNIT_EXPONENT)  # int / int is correctly rounded, any size


def encode(units: int) -> str:
    """A short text form of an exact sum: ``"m*2^e"`` with ``m`` odd (``"0"`` for zero)."""
    if units == 0:
        return "0"
    zeros = (units & -units).bit_length() - 1
    return f"{units >> zeros}*2^{zeros + UNIT_EXPONENT}"


def decode(text: str) -> int:
    """The exact sum :func:`encode` wrote.

    Raises:
        ValueError: ``text`` is not such a form.
    """
    if text == "0":
        return 0
    mantissa, _, exponent = text.partition("*2^")
    shift = int(exponent) - UNIT_EXPONENT
    if shift < 0:
        raise ValueError(f"not an exact sum: {text!r}")
    return int(mantissa) << shift
