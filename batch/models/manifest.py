"""``model.yaml``: the validated description of a model package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from batch.errors import PackageError, validation_message, yaml_message
from batch.models.kinds import FeatureType, TargetType

MANIFEST_NAME = "model.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    name: str = Field(min_length=1, description="Name of the predicted column.")
    type: TargetType = Field(description="regression, binary or multiclass.")
    classes: tuple[str, ...] = Field(
        default=(), description="Class labels in the model's probability column order."
    )
    positive: str | None = Field(default=None, description="Positive class (binary only).")
    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Positive-class probability above which "
        "a row is labelled positive (binary only)."
    )

    @model_validator(mode="after")
    def _check_classes(self) -> Target:
        if self.type is TargetType.REGRESSION:
            if self.classes:
                raise ValueError("a regression target has no classes")
            return self
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {list(self.classes)}")
        if self.type is TargetType.BINARY:
            if len(self.classes) != 2:
                raise ValueError(f"a binary target needs 2 classes, got {list(self.classes)}")
            if self.positive is None:
                raise ValueError("a binary target needs 'positive' (one of its classes)")
            if self.positive not in self.classes:
                raise ValueError(
                    f"positive class {self.positive!r} is not one of {list(self.classes)}"
                )
        elif len(self.classes) < 3:
            raise ValueError(f"a multiclass target needs 3+ classes, got {list(self.classes)}")
        return self

    @property
    def negative(self) -> str:
        """The binary target's other class."""
        return next(c for c in self.classes if c != self.positive)


class Feature(_Frozen):
    name: str = Field(min_length=1, description="Input column name.")
    type: FeatureType = Field(description="number, integer, category or boolean.")
    required: bool = Field(
        default=True, description="Whether the input must have this column; "
        "an optional missing column is scored as all-missing."
    )


class Artifact(_Frozen):
    kind: str = Field(min_length=1, description="Loader kind: sklearn, onnx, python, ...")
    path: str = Field(min_length=1, description="Artifact path relative to the package.")
    inputs: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="onnx: model input name -> the features it takes, in order."
    )
    output: str | None = Field(
        default=None, description="onnx: name of the output holding probabilities/values."
    )

    @model_validator(mode="after")
    def _check_path(self) -> Artifact:
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"artifact path {self.path!r} must be relative to the package")
        return self


class ModelManifest(_Frozen):
    """The content of ``model.yaml``."""

    name: str = Field(min_length=1, description="Model name.")
    version: str = Field(default="1", description="Model version.")
    target: Target
    features: tuple[Feature, ...] = Field(min_length=1, description="Feature schema.")
    association_id: str | None = Field(
        default=None, description="Column that identifies a row, to join actuals later."
    )
    artifact: Artifact
    baseline: str | None = Field(default=None, description="Training profile for drift.")

    @model_validator(mode="before")
    @classmethod
    def _coerce_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = {**data, "version": str(data["version"])}
        return data

    @field_validator("features")
    @classmethod
    def _check_features(
        cls, features: tuple[Feature, ...], info: ValidationInfo
    ) -> tuple[Feature, ...]:
        # a field validator, so errors point at 'features' rather than the top level
        names = [f.name for f in features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"features listed twice: {dupes}")
        target = info.data.get("target")  # absent when the target itself is invalid
        if target is not None and target.name in names:
            raise ValueError(f"target {target.name!r} is also listed as a feature")
        return features

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.model_dump(mode="json", exclude_none=True), sort_keys=False
        )


def read_manifest(path: Path) -> ModelManifest:
    """Read and validate ``model.yaml``.

    Raises:
        PackageError: the file is missing, not YAML, or a field is wrong; the
            message names the file and each bad field.
    """
    if not path.is_file():
        raise PackageError(f"{path}: no {MANIFEST_NAME} here; is this a model package?")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PackageError(f"{path}: not valid YAML: {yaml_message(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as exc:
        raise PackageError(f"{path}: {validation_message(exc)}") from exc
