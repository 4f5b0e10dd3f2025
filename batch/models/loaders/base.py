"""The loader contract: ``Loader.load(package) -> Scorer``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
