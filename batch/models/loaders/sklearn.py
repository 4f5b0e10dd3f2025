"""scikit-learn artifacts: any estimator or Pipeline saved with joblib or pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from batch.errors import ModelOutputError, PackageError, UserCodeError
from batch.models.loaders.base import ArtifactInfo, Scorer, class_labels
from batch.models.manifest import TargetType
from batch.models.package import ModelPackage


def load_estimator(path: Path) -> Any:
    """Unpickle an estimator (joblib reads plain pickles too)."""
    try:
        return joblib.load(path)
    except Exception as exc:  # unpickling can raise nearly anything
        raise PackageError(
            f"{path}: cannot load the artifact: {type(exc).__name__}: {exc}"
        ) from exc


class SklearnScorer:
    """Calls ``predict_proba`` (classification) or ``predict`` (regression)."""

    def __init__(self, package: ModelPackage, estimator: Any) -> None:
        self._label = package.label
        self._estimator = estimator
        target = package.manifest.target
        self._regression = target.type is TargetType.REGRESSION
        self._order: np.ndarray | None = None
        if self._regression:
            if not hasattr(estimator, "predict"):
                raise PackageError(f"{self._label}: the estimator has no predict()")
            return
        if not hasattr(estimator, "predict_proba"):
            raise PackageError(
                f"{self._label}: target type is {target.type} but the estimator has no "
                "predict_proba()"
            )
        model_classes = class_labels(getattr(estimator, "classes_", ()))
        if sorted(model_classes) != sorted(target.classes):
            raise PackageError(
                f"{self._label}: model.yaml classes {list(target.classes)} do not match the "
                f"model's classes {list(model_classes)}"
            )
        self._order = np.array([model_classes.index(c) for c in target.classes])

    @property
    def estimator(self) -> Any:
        return self._estimator

    @property
    def class_order(self) -> np.ndarray | None:
        """Column of ``predict_proba`` for each manifest class (None: regression)."""
        return self._order

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        try:
            if self._regression:
                out = self._estimator.predict(frame)
            else:
                out = self._estimator.predict_proba(frame)
        except Exception as exc:
            raise UserCodeError(
                f"{self._label}: the model raised {type(exc).__name__}: {exc}"
            ) from exc
        out = np.asarray(out, dtype=np.float64)
        if self._regression:
            return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out
        if out.ndim != 2:
            raise ModelOutputError(f"{self._label}: predict_proba returned shape {out.shape}")
        assert self._order is not None
        return out[:, self._order]


class SklearnLoader:
    def load(self, package: ModelPackage, *, threads: int = 1) -> Scorer:
        estimator = load_estimator(package.artifact_path)
        return SklearnScorer(package, estimator)

    def inspect(self, artifact: Path) -> ArtifactInfo:
        est = load_estimator(artifact)
        is_classifier = hasattr(est, "predict_proba") and hasattr(est, "classes_")
        names = getattr(est, "feature_names_in_", None)
        return ArtifactInfo(
            is_classifier=is_classifier,
            classes=class_labels(est.classes_) if is_classifier else None,
            feature_names=tuple(str(n) for n in names) if names is not None else None,
        )
