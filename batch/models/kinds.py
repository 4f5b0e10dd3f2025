"""The kinds of target and feature a manifest names, without the manifest's pydantic
models (the command line offers them as choices before anything heavy loads)."""

from __future__ import annotations

from enum import StrEnum


class TargetType(StrEnum):
    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"


class FeatureType(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    CATEGORY = "category"
    BOOLEAN = "boolean"
