"""Model loaders by artifact kind, and the scorer contract with its optional capabilities."""

from batch.models.loaders.base import (
    ArtifactInfo,
    ColumnScorer,
    EstimatorScorer,
    Loader,
    Scorer,
)
from batch.models.loaders.registry import available_kinds, get_loader, register_loader

__all__ = ["ArtifactInfo", "ColumnScorer", "EstimatorScorer", "Loader", "Scorer",
           "available_kinds", "get_loader", "register_loader"]
