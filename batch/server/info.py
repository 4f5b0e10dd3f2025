"""What ``/info`` and ``/deployments`` say about a served model."""

from __future__ import annotations

from typing import Any

from batch.models.kinds import TargetType
from batch.server.models import ServedModel

# what scores a package's rows here, by artifact kind, when no batch job checked an ONNX
# conversion of it (then onnxruntime scores it, as in batch jobs)
SCORERS = {"sklearn": "scikit-learn", "onnx": "onnxruntime", "python": "python hooks"}


def scorer_name(kind: str) -> str:
    return SCORERS.get(kind, kind)


def model_summary(model: ServedModel, *, loaded: bool) -> dict[str, Any]:
    """One entry of ``GET /deployments``."""
    manifest = model.package.manifest
    return {"id": model.name, "modelName": manifest.name, "modelVersion": manifest.version,
            "modelDigest": model.package.digest, "targetName": manifest.target.name,
            "targetType": manifest.target.type.value, "loaded": loaded}


def model_info(model: ServedModel, *, loaded: bool) -> dict[str, Any]:
    """``GET /info``: the model, its target, its features and what scores it."""
    manifest = model.package.manifest
    target = manifest.target
    info = model_summary(model, loaded=loaded)
    info["classes"] = list(target.classes)
    if target.type is TargetType.BINARY:
        info["positiveClass"] = target.positive
        info["predictionThreshold"] = target.threshold
    info["features"] = [{"name": f.name, "type": f.type.value, "required": f.required}
                        for f in manifest.features]
    info["associationId"] = manifest.association_id
    info["artifactKind"] = manifest.artifact.kind
    info["scorer"] = model.scorer_note if model.fast is not None else scorer_name(
        manifest.artifact.kind)
    return info
