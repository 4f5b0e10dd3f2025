"""Exact sums: the same integer whatever the order or the split of the values."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from batch.monitoring.exactsum import decode, encode, exact_sum, to_float, units

CASES = {
    "rounded normal": np.round(np.random.default_rng(1).normal(0, 1, 42_000), 4),
    "lognormal": np.random.default_rng(2).lognormal(0, 5, 5_000),
    "cancelling extremes": np.array([1e300, -1e300, 1e-300, 3.0]),
    "subnormal": np.array([5e-324, 1e-310, -5e-324]),
    "near the largest float": np.array([1.7e308, 1.7e308, -1.7e308]),
    "zeros": np.zeros(5),
    "tiny": np.random.default_rng(3).normal(0, 1, 7) * 1e-200,
    "integers": np.arange(-1000, 3000, dtype=np.float64),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_sum_is_exact_and_splits_add_up_to_it(name: str) -> None:
    x = CASES[name]
    exact = sum(Fraction(v) for v in x.tolist())
    total = exact_sum(x)
    assert Fraction(total, 2 ** 1074) == exact
    assert to_float(total) == float(exact)  # correctly rounded
    if math.isfinite(math.fsum(x[np.abs(x) < 1e300])):
        assert exact_sum(x[::-1]) == total
    cut = len(x) // 3
    assert exact_sum(x[:cut]) + exact_sum(x[cut:]) == total
    assert exact_sum(x, bound=float(np.abs(x).max())) == total
    assert decode(encode(total)) == total


def test_a_float_in_units_and_the_text_form() -> None:
    assert units(1.0) == 2 ** 1074 and units(-0.5) == -(2 ** 1073) and units(5e-324) == 1
    assert encode(0) == "0" and encode(units(3.0)) == "3*2^0"
    with pytest.raises(ValueError, match="not an exact sum"):
        decode("3*2^-1080")
    with pytest.raises(ValueError, match="finite"):
        exact_sum(np.array([1.0, np.nan]))
