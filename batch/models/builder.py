"""``batchpred package create``: a package from an artifact and its training data.

The feature schema comes from the training data (restricted to the model's own
feature names when it records them), the classes from the model where it knows
them, else from the training target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from batch.errors import ConfigError, PackageError, validation_message
from batch.models.loaders import ArtifactInfo, get_loader
from batch.models.manifest import (
    MANIFEST_NAME,
    Artifact,
    Feature,
    FeatureType,
    ModelManifest,
    Target,
    TargetType,
)
from batch.models.package import ModelPackage, open_package
from connectors import IntakeRequest, open_intake

_KIND_BY_SUFFIX = {".joblib": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn",
                   ".onnx": "onnx", ".py": "python"}
HOOKS_FILE = "custom.py"


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """The inputs of ``package create``."""

    artifact: Path
    training_data: str
    target: str
    kind: str | None = None
    target_type: TargetType | None = None
    positive_class: str | None = None
    threshold: float = 0.5
    name: str | None = None
    version: str = "1"
    association_id: str | None = None


def infer_kind(artifact: Path) -> str:
    if artifact.is_dir():
        if (artifact / HOOKS_FILE).exists():
            return "python"
        raise ConfigError(f"--artifact {artifact}: a directory artifact needs a {HOOKS_FILE}")
    kind = _KIND_BY_SUFFIX.get(artifact.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"--artifact {artifact}: cannot tell the kind from '{artifact.suffix}'; pass --kind"
        )
    return kind


def feature_type(typ: pa.DataType) -> FeatureType:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_boolean(typ):
        return FeatureType.BOOLEAN
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return FeatureType.NUMBER
    return FeatureType.CATEGORY


def create_package(dest: Path, spec: PackageSpec) -> ModelPackage:
    """Write a package to ``dest`` and load it once to prove it works.

    Raises:
        ConfigError: a bad option (unknown target column, positive class...).
        PackageError: the artifact cannot be loaded or does not fit the data.
    """
    if (dest / MANIFEST_NAME).exists():
        raise ConfigError(f"{dest}: already holds a model package; choose another directory")
    if not spec.artifact.exists():
        raise ConfigError(f"--artifact {spec.artifact}: no such file")
    kind = spec.kind or infer_kind(spec.artifact)
    info = get_loader(kind).inspect(spec.artifact) if kind != "python" else ArtifactInfo()
    table = training_table(spec.training_data)
    if spec.target not in table.column_names:
        raise ConfigError(f"--target {spec.target!r} is not a column of {spec.training_data}; "
                          f"it has: {', '.join(table.column_names)}")
    manifest = ModelManifest(
        name=spec.name or spec.artifact.stem,
        version=spec.version,
        target=_target(spec, info, table.column(spec.target)),
        features=_features(spec, info, table.schema),
        association_id=spec.association_id,
        artifact=Artifact(kind=kind, path=HOOKS_FILE if kind == "python" and
                          spec.artifact.is_dir() else spec.artifact.name),
    )
    return _write(dest, manifest, spec.artifact)


def training_table(uri: str) -> pa.Table:
    """Every row of a training (or holdout) file, read through the file connector."""
    intake = open_intake(IntakeRequest(uri=uri, chunk_rows=1_000_000))
    try:
        return pa.Table.from_batches(list(intake.batches()), schema=intake.schema)
    finally:
        intake.close()


def _features(spec: PackageSpec, info: ArtifactInfo, schema: pa.Schema) -> tuple[Feature, ...]:
    skip = {spec.target, spec.association_id}
    names = info.feature_names or tuple(n for n in schema.names if n not in skip)
    missing = [n for n in names if n not in schema.names]
    if missing:
        raise PackageError(f"the model uses features {missing} that the training data lacks")
    if spec.target in names:
        raise ConfigError(f"--target {spec.target!r} is one of the model's input features")
    return tuple(Feature(name=n, type=feature_type(schema.field(n).type)) for n in names)


def _target(spec: PackageSpec, info: ArtifactInfo, values: pa.ChunkedArray) -> Target:
    ttype = spec.target_type
    classes = info.classes
    if ttype is None:
        if info.is_classifier is False:
            ttype = TargetType.REGRESSION
        else:
            classes = classes or _classes_from(values)
            if info.is_classifier is None and _looks_continuous(values):
                ttype = TargetType.REGRESSION
            else:
                ttype = TargetType.BINARY if len(classes) == 2 else TargetType.MULTICLASS
    if ttype is TargetType.REGRESSION:
        return Target(name=spec.target, type=ttype)
    classes = classes or _classes_from(values)
    positive = spec.positive_class
    if ttype is TargetType.BINARY:
        positive = positive if positive is not None else classes[-1]
        if positive not in classes:
            raise ConfigError(f"--positive-class {positive!r} is not one of {list(classes)}")
    try:
        return Target(name=spec.target, type=ttype, classes=classes, positive=positive,
                      threshold=spec.threshold)
    except ValidationError as exc:
        raise ConfigError(f"--type {ttype}: {validation_message(exc)}") from exc


def _classes_from(values: pa.ChunkedArray) -> tuple[str, ...]:
    unique = pc.unique(values.drop_null()).to_numpy(zero_copy_only=False)
    return tuple(str(v) for v in np.sort(unique))


def _looks_continuous(values: pa.ChunkedArray) -> bool:
    if not pa.types.is_floating(values.type):
        return False
    arr = values.drop_null().to_numpy()
    return bool(len(arr)) and not np.all(arr == np.round(arr))


def _write(dest: Path, manifest: ModelManifest, artifact: Path) -> ModelPackage:
    dest = dest.expanduser().resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        if artifact.is_dir():
            shutil.copytree(artifact, tmp, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
        else:
            shutil.copy2(artifact, tmp / manifest.artifact.path)
        (tmp / MANIFEST_NAME).write_text(manifest.to_yaml(), encoding="utf-8")
        package = open_package(tmp)
        get_loader(manifest.artifact.kind).load(package)  # fail now, not at the first job
        if dest.exists():
            if any(dest.iterdir()):
                raise ConfigError(f"{dest}: exists and is not empty")
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_package(dest)
