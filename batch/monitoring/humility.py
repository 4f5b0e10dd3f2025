"""Humility rules resolved for a package: bounds and levels default to its baseline's
training ranges and levels (:mod:`batch.scoring.humility` applies them)."""

from __future__ import annotations

from collections.abc import Sequence

from batch.models.package import ModelPackage
from batch.monitoring.baseline import CategoricalProfile, NumericProfile, read_baseline
from batch.scoring.humility import Humility, HumilityRule, resolve


def humility_of(rules: Sequence[HumilityRule], package: ModelPackage) -> Humility | None:
    """``rules`` resolved for ``package`` (None without rules).

    Raises:
        ConfigError: see :func:`batch.scoring.humility.resolve`.
        PackageError: the manifest names a baseline that is missing or invalid.
    """
    if not rules:
        return None
    baseline = read_baseline(package)
    if baseline is None:
        return resolve(rules, package.manifest)
    ranges = {p.name: (p.min, p.max) for p in baseline.features
              if isinstance(p, NumericProfile) and p.min is not None and p.max is not None}
    levels = {p.name: p.seen for p in baseline.features if isinstance(p, CategoricalProfile)}
    return resolve(rules, package.manifest, ranges=ranges, levels=levels)
