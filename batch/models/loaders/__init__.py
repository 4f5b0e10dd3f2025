"""Model loaders by artifact kind."""

from batch.models.loaders.base import ArtifactInfo, Loader, Scorer
from batch.models.loaders.registry import available_kinds, get_loader, register_loader

__all__ = ["ArtifactInfo", "Loader", "Scorer", "available_kinds", "get_loader", "register_loader"]
