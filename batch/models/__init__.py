"""Model packages: manifest, loaders by artifact kind, and the per-process cache.

The names below load on first use, so importing one light module of this
package (the kinds, for the command line's choices) does not load pandas,
pydantic and the loaders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.models.cache import ModelCache, configure_process_cache, process_cache
    from batch.models.kinds import FeatureType, TargetType
    from batch.models.manifest import Artifact, Feature, ModelManifest, Target, read_manifest
    from batch.models.package import ModelPackage, open_package, package_digest

_LAZY = {
    "Artifact": "batch.models.manifest",
    "Feature": "batch.models.manifest",
    "FeatureType": "batch.models.kinds",
    "ModelCache": "batch.models.cache",
    "ModelManifest": "batch.models.manifest",
    "ModelPackage": "batch.models.package",
    "Target": "batch.models.manifest",
    "TargetType": "batch.models.kinds",
    "configure_process_cache": "batch.models.cache",
    "open_package": "batch.models.package",
    "package_digest": "batch.models.package",
    "process_cache": "batch.models.cache",
    "read_manifest": "batch.models.manifest",
}

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

__getattr__ = lazy_names(__name__, _LAZY)
