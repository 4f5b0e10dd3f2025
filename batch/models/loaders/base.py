"""The loader contract: ``Loader.load(package) -> Scorer``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from batch.models.package import ModelPackage


class Scorer(Protocol):
    """A loaded model, ready to score feature frames."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Score ``frame`` (feature columns in schema order).

        Returns:
            regression: shape ``(n,)`` values; classification: shape
            ``(n, k)`` probabilities in the manifest's class order.

        Raises:
            UserCodeError: the model itself raised.
            ModelOutputError: the output has the wrong shape or labels.
        """
        ...


@runtime_checkable
class ColumnScorer(Protocol):
    """A scorer that takes the feature columns as arrays, so no DataFrame is made
    (the ONNX fast path); the scoring code asks with ``isinstance``."""

    def predict_columns(self, columns: Mapping[str, np.ndarray], rows: int,
                        category_missing: np.ndarray | None) -> np.ndarray:
        """Score ``rows`` rows given as one array per feature; ``category_missing`` marks
        the rows with a missing category (scored by the reference model). Returns and
        raises as :meth:`Scorer.predict`."""
        ...


@runtime_checkable
class EstimatorScorer(Protocol):
    """A scorer around a scikit-learn estimator, which the ONNX fast path may convert."""

    @property
    def estimator(self) -> Any:
        """The fitted estimator (or pipeline) the scorer calls."""
        ...


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What ``package create`` can learn from an artifact before a manifest exists."""

    is_classifier: bool | None = None
    classes: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None


class Loader(Protocol):
    """Turns a package's artifact into a :class:`Scorer`."""

    def load(self, package: ModelPackage, *, threads: int = 1) -> Scorer:
        """Load the artifact. Raises ``PackageError`` if it cannot be loaded."""
        ...

    def inspect(self, artifact: Path) -> ArtifactInfo:
        """Learn classes and feature names from a bare artifact, where possible."""
        ...


def class_labels(values: object) -> tuple[str, ...]:
    """Labels as the manifest spells them: ``str`` of each class, in model order."""
    return tuple(str(v) for v in np.asarray(values).tolist())
