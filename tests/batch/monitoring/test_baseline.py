"""The baseline: buckets counted as MONITORING.md defines them, against numpy references."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from batch.errors import ConfigError, PackageError
from batch.models.package import open_package
from batch.monitoring.baseline import (
    DECILES,
    PROBABILITY_EDGES,
    build_baseline,
    fingerprint,
    numeric_profile,
    read_baseline,
    write_baseline,
)
from batch.monitoring.buckets import (
    MISSING,
    NEW,
    OTHER,
    bucket_index,
    category_counts,
    coarser_counts,
    numeric_counts,
)


def _reference_numeric(values: list[float], edges: list[float]) -> list[int]:
    """Bucket by bucket, as the contract reads: [e_i, e_i+1), missing (NaN, +-inf) last."""
    bounds = [-np.inf, *edges, np.inf]
    counts = [sum(1 for v in values if np.isfinite(v) and lo <= v < hi)
              for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return [*counts, sum(1 for v in values if not np.isfinite(v))]


def test_numeric_buckets_follow_the_contract() -> None:
    rng = np.random.default_rng(3)
    edges = [-1.0, 0.0, 0.5, 2.0]
    values = [*rng.normal(0, 1.5, 500).tolist(), *edges, np.nan, np.inf, -np.inf, -1e300, 1e300]
    assert numeric_counts(np.array(values), edges).tolist() == _reference_numeric(values, edges)
    assert numeric_counts(np.array([0.0, 0.0]), []).tolist() == [2, 0]  # no edges: one bucket


def test_category_buckets_follow_the_contract() -> None:
    values = np.array(["car", "home", None, np.nan, "", "yacht", "travel", "car"], dtype=object)
    counts = category_counts(values, ("car", "home"), frozenset({"car", "home", "travel"}))
    assert dict(zip(["car", "home", OTHER, NEW, MISSING], counts.tolist(), strict=True)) == {
        "car": 2, "home": 1, OTHER: 1, NEW: 1, MISSING: 3}


def _table(trained) -> pa.Table:  # type: ignore[no-untyped-def]
    return pa.Table.from_pandas(trained.data, preserve_index=False)


def test_numeric_profile_is_numpy_deciles_and_moments(logistic_package) -> None:
    baseline = build_baseline(logistic_package.package, _table(logistic_package))
    income = logistic_package.data["income"].to_numpy(dtype=float)
    finite = income[np.isfinite(income)]
    profile = baseline.feature("income")
    assert profile.kind == "numeric"
    assert list(profile.edges) == np.unique(np.quantile(finite, DECILES)).tolist()
    assert list(profile.counts) == _reference_numeric(income.tolist(), list(profile.edges))
    assert profile.counts[-1] == int(np.isnan(income).sum()) > 0  # the missing bucket
    assert (profile.min, profile.max) == (finite.min(), finite.max())
    assert profile.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert profile.std == pytest.approx(finite.std(), rel=1e-12)
    assert sum(profile.sketch_counts) == len(income) and len(profile.sketch_edges) > 50


def test_categorical_profile_keeps_levels_by_count(logistic_package) -> None:
    baseline = build_baseline(logistic_package.package, _table(logistic_package))
    purpose = logistic_package.data["purpose"]
    profile = baseline.feature("purpose")
    assert profile.kind == "categorical"
    tally = purpose.value_counts()
    expected = sorted(tally.index, key=lambda level: (-tally[level], level))
    assert list(profile.levels) == expected and list(profile.seen) == sorted(expected)
    assert list(profile.counts) == [*(int(tally[v]) for v in expected), 0, 0,
                                    int(purpose.isna().sum())]


def test_a_low_cardinality_constant_or_empty_numeric_gets_fewer_buckets() -> None:
    tenure = numeric_profile("t", np.array([1.0, 2.0, 2.0, 3.0] * 50))
    assert tenure.edges == (1.0, 2.0, 3.0)  # de-duplicated deciles
    constant = numeric_profile("c", np.full(10, 7.0))
    assert constant.edges == (7.0,) and constant.counts == (0, 10, 0)
    empty = numeric_profile("e", np.array([np.nan, np.inf]))
    assert empty.edges == () and empty.counts == (0, 2) and empty.mean is None


def test_prediction_profiles_by_target_type(logistic_package, multiclass_package,
                                            regressor_package) -> None:
    binary = build_baseline(logistic_package.package, _table(logistic_package))
    (positive,) = binary.predictions
    assert positive.name == "default_yes_PREDICTION" and positive.edges == PROBABILITY_EDGES
    assert sum(positive.counts) == len(logistic_package.data)
    multi = build_baseline(multiclass_package.package, _table(multiclass_package))
    names = [p.name for p in multi.predictions]
    assert names == ["segment_bronze_PREDICTION", "segment_gold_PREDICTION",
                     "segment_silver_PREDICTION", "segment_PREDICTION"]
    label = multi.predictions[-1]
    assert label.kind == "categorical" and label.levels == ("bronze", "gold", "silver")
    regression = build_baseline(regressor_package.package, _table(regressor_package))
    (value,) = regression.predictions
    assert value.name == "amount_PREDICTION" and len(value.edges) == 9


def test_permutation_importance_is_normalised_seeded_and_deterministic(
        logistic_package) -> None:
    first = build_baseline(logistic_package.package, _table(logistic_package))
    again = build_baseline(logistic_package.package, _table(logistic_package))
    assert first.model_dump_json() == again.model_dump_json()  # byte for byte
    assert max(first.importance.values()) == 1.0
    assert all(0.0 <= v <= 1.0 for v in first.importance.values())
    assert set(first.importance) == set(logistic_package.features)
    assert first.importance_source == "permutation"


def test_given_importance_is_normalised_and_checked(logistic_package) -> None:
    given = build_baseline(logistic_package.package, _table(logistic_package),
                           importance={"income": 4.0, "tenure": 1.0})
    assert given.importance == {"income": 1.0, "debt_ratio": 0.0, "tenure": 0.25, "purpose": 0.0}
    with pytest.raises(ConfigError, match="'salary' is not a feature of the model"):
        build_baseline(logistic_package.package, _table(logistic_package),
                       importance={"salary": 1.0})


def test_the_fingerprint_covers_edges_and_levels_not_counts(logistic_package) -> None:
    baseline = build_baseline(logistic_package.package, _table(logistic_package))
    profiles = (*baseline.features, *baseline.predictions)
    assert baseline.fingerprint == fingerprint(profiles)
    income = baseline.feature("income")
    moved = income.model_copy(update={"edges": (*income.edges[:-1], income.edges[-1] + 1)})
    recounted = income.model_copy(update={"counts": tuple(c + 1 for c in income.counts)})
    swap = [moved if p.name == "income" else p for p in profiles]
    assert fingerprint(tuple(swap)) != baseline.fingerprint
    same = [recounted if p.name == "income" else p for p in profiles]
    assert fingerprint(tuple(same)) == baseline.fingerprint


def test_the_package_digest_covers_its_baseline(logistic_package, tmp_path: Path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(logistic_package.path, copy)
    package = open_package(copy)
    assert read_baseline(package) is None
    with_it = write_baseline(package, build_baseline(package, _table(logistic_package)))
    assert with_it.manifest.baseline == "baseline.json" and with_it.digest != package.digest
    assert read_baseline(with_it) == build_baseline(package, _table(logistic_package))
    (copy / "baseline.json").unlink()
    with pytest.raises(PackageError, match=r"is missing; write it again with `batchpred baseline"):
        read_baseline(open_package(copy))


def test_holdout_rows_profile_the_predictions(logistic_package) -> None:
    holdout = logistic_package.data.head(300)
    baseline = build_baseline(logistic_package.package, _table(logistic_package),
                              holdout=pa.Table.from_pandas(pd.DataFrame(holdout),
                                                           preserve_index=False))
    assert baseline.prediction_source == "holdout"
    assert sum(baseline.predictions[0].counts) == 300


def test_the_grid_lookup_is_numpy_searchsorted_exactly() -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        sample = rng.normal(0, 1, 2_000)
        edges = np.unique(np.quantile(sample, np.arange(1, 100) / 100))
        if trial % 3 == 0:  # close and crowded edges share grid cells
            edges = np.unique(np.round(edges, 1))
        values = np.concatenate([rng.normal(0, 3, 2_000), edges, np.nextafter(edges, -np.inf),
                                 np.nextafter(edges, np.inf), [-1e300, 1e300, 0.0]])
        expected = np.searchsorted(edges, values, side="right")
        assert (bucket_index(values, tuple(edges.tolist())) == expected).all(), trial


def test_decile_counts_sum_from_the_percentile_counts() -> None:
    values = np.random.default_rng(5).gamma(2.0, 3.0, 5_000)
    profile = numeric_profile("x", values)
    assert set(profile.edges) <= set(profile.sketch_edges)
    fine = numeric_counts(values, profile.sketch_edges)
    coarse = coarser_counts(fine, profile.sketch_edges, profile.edges)
    assert coarse is not None and coarse.tolist() == list(profile.counts)
    assert coarser_counts(fine, profile.sketch_edges, (profile.edges[0] + 1e-9,)) is None


@pytest.mark.parametrize("edges", [[0.5], [-1.0, -1.0 + 1e-12, 0.0, 3.0], [-1e300, 1e300],
                                   [1.0, 2.0, 3.0, 4.0, 5.0]])
def test_numeric_counts_put_nan_and_infinity_in_the_missing_bucket(edges: list[float]) -> None:
    rng = np.random.default_rng(len(edges))
    values = [*rng.normal(1, 2, 300).tolist(), *edges, np.nan, np.inf, -np.inf, np.inf, 5e-324]
    rng.shuffle(values)
    assert numeric_counts(np.array(values), edges).tolist() == _reference_numeric(values, edges)
    missing_only = np.array([np.nan, np.inf, -np.inf])
    assert numeric_counts(missing_only, edges).tolist()[-1] == 3
