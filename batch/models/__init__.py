"""Model packages: manifest, loaders by artifact kind, and the per-process cache."""

from batch.models.cache import ModelCache, configure_process_cache, process_cache
from batch.models.manifest import (
    Artifact,
    Feature,
    FeatureType,
    ModelManifest,
    Target,
    TargetType,
    read_manifest,
)
from batch.models.package import ModelPackage, open_package, package_digest

__all__ = [
    "Artifact",
    "Feature",
    "FeatureType",
    "ModelCache",
    "ModelManifest",
    "ModelPackage",
    "Target",
    "TargetType",
    "configure_process_cache",
    "open_package",
    "package_digest",
    "process_cache",
    "read_manifest",
]
