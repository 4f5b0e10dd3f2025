"""A chunk's stats: counted on the baseline's buckets, merged exactly whatever the chunking."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from batch.errors import ConfigError
from batch.models.cache import process_cache
from batch.monitoring.baseline import build_baseline
from batch.monitoring.stats import ChunkStats, count_chunk
from batch.scoring.chunk import score_batch
from batch.scoring.columns import ScoringOptions
from batch.scoring.features import coerce_features


@pytest.fixture(scope="module")
def baseline(logistic_package):  # type: ignore[no-untyped-def]
    return build_baseline(logistic_package.package,
                          pa.Table.from_pandas(logistic_package.data, preserve_index=False))


def _stats(package, baseline, batch: pa.RecordBatch) -> ChunkStats:  # type: ignore[no-untyped-def]
    scored = score_batch(batch, package, process_cache().get(package), ScoringOptions())
    return count_chunk(baseline, coerce_features(batch, package.manifest).columns, scored)


def _merged(parts: list[ChunkStats]) -> ChunkStats:
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def test_training_rows_count_as_the_baseline_did(logistic_package, baseline) -> None:
    table = pa.Table.from_pandas(logistic_package.data, preserve_index=False)
    stats = _stats(logistic_package.package, baseline, table.combine_chunks().to_batches()[0])
    for profile in baseline.features:
        assert stats.column(profile.name).counts == profile.counts, profile.name
    income = stats.column("income")
    assert income.out_low == income.out_high == 0  # the training range holds itself
    assert (income.low, income.high) == (baseline.feature("income").min,
                                         baseline.feature("income").max)
    assert stats.column("default_yes_PREDICTION").counts == baseline.predictions[0].counts


def test_one_chunk_or_37_merge_to_the_same_stats(logistic_package, baseline,
                                                 scoring_frame) -> None:
    batch = pa.RecordBatch.from_pandas(scoring_frame, preserve_index=False)
    whole = _stats(logistic_package.package, baseline, batch)
    cuts = np.linspace(0, batch.num_rows, 38).astype(int)
    parts = [_stats(logistic_package.package, baseline, batch.slice(a, b - a))
             for a, b in zip(cuts, cuts[1:], strict=False)]
    merged = _merged(parts)
    assert merged == whole  # exact sums included: the means are bit-identical
    for a, b in zip(merged.columns, whole.columns, strict=True):
        assert a.mean == b.mean and a.sum_sq == pytest.approx(b.sum_sq, rel=1e-12)
    assert whole.rows == batch.num_rows == sum(whole.column("purpose").counts)


def test_out_of_range_new_levels_and_unscored_rows(logistic_package, baseline) -> None:
    income = baseline.feature("income")
    batch = pa.RecordBatch.from_pydict({
        "id": [1, 2, 3, 4],
        "income": [income.min - 1, income.max + 1, float("inf"), None],
        "debt_ratio": [0.2, 0.3, 0.4, 0.5],
        "tenure": [1, 2, 3, 4],
        "purpose": ["car", "yacht", None, "car"],
    })
    stats = _stats(logistic_package.package, baseline, batch)
    counted = stats.column("income")
    assert (counted.out_low, counted.out_high, counted.missing) == (1, 1, 2)
    assert counted.counts[0] == 1 and counted.counts[-2] == 1  # the two outer buckets
    purpose = stats.column("purpose")
    assert purpose.new == 1 and purpose.missing == 1


def test_stats_of_two_baselines_never_merge(logistic_package, baseline, scoring_frame) -> None:
    batch = pa.RecordBatch.from_pandas(scoring_frame.head(50), preserve_index=False)
    stats = _stats(logistic_package.package, baseline, batch)
    other = ChunkStats("0" * 64, stats.rows, stats.columns)
    with pytest.raises(ConfigError, match="cannot merge with stats of baseline"):
        stats.merge(other)


def test_huge_and_tiny_values_count_without_overflow() -> None:
    from batch.monitoring.baseline import numeric_profile
    from batch.monitoring.stats import _count

    profile = numeric_profile("x", np.random.default_rng(2).normal(0, 1, 5_000))
    x = np.array([1e300, np.nan, -1e300, 5e-324, 1.0, np.inf])
    stats = _count(profile, x)
    assert stats.missing == 2 and stats.out_low == 1 and stats.out_high == 1
    assert stats.mean == pytest.approx((1.0 + 5e-324) / 4)  # the exact sum: 1e300s cancel
    assert stats.sum_sq == float("inf")
