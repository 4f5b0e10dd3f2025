"""Python hook packages: a ``custom.py`` with ``load_model`` and ``score``.

The hooks follow the custom-model convention::

    def load_model(path: str) -> Any            # path: the package directory
    def score(frame: pd.DataFrame, model: Any, **kwargs) -> pd.DataFrame

``score`` returns one column ``Predictions`` for regression, or one probability
column per class label for classification.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from batch.errors import ModelOutputError, PackageError, UserCodeError
from batch.models.loaders.base import ArtifactInfo, Scorer
from batch.models.manifest import TargetType
from batch.models.package import ModelPackage

REGRESSION_COLUMN = "Predictions"


def import_hooks(path: Path, module_name: str) -> ModuleType:
    """Import ``path`` as ``module_name`` without touching ``sys.path``."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PackageError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # lets pickles and dataclasses find the module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UserCodeError(f"{path}: importing raised {type(exc).__name__}: {exc}") from exc
    for hook in ("load_model", "score"):
        if not callable(getattr(module, hook, None)):
            sys.modules.pop(module_name, None)
            raise PackageError(f"{path}: defines no {hook}() hook")
    return module


class HooksScorer:
    def __init__(self, package: ModelPackage, module: ModuleType, model: Any) -> None:
        self._label = package.label
        self._module = module
        self._model = model
        target = package.manifest.target
        self._regression = target.type is TargetType.REGRESSION
        self._columns = [REGRESSION_COLUMN] if self._regression else list(target.classes)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        try:
            out = self._module.score(frame, self._model)
        except Exception as exc:
            raise UserCodeError(
                f"{self._label}: score() raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, pd.DataFrame):
            raise ModelOutputError(
                f"{self._label}: score() returned {type(out).__name__}, expected a DataFrame"
            )
        out = out.rename(columns=str)
        missing = [c for c in self._columns if c not in out.columns]
        if missing or len(out) != len(frame):
            raise ModelOutputError(
                f"{self._label}: score() must return {len(frame)} rows with columns "
                f"{self._columns}; got {len(out)} rows with {list(out.columns)}"
            )
        values = out[self._columns].to_numpy(dtype=np.float64)
        return values[:, 0] if self._regression else values


class HooksLoader:
    def load(self, package: ModelPackage, *, threads: int = 1) -> Scorer:
        module = import_hooks(package.artifact_path, f"batchpred_hooks_{package.digest[:16]}")
        try:
            model = module.load_model(str(package.path))
        except Exception as exc:
            raise UserCodeError(
                f"{package.label}: load_model() raised {type(exc).__name__}: {exc}"
            ) from exc
        return HooksScorer(package, module, model)

    def inspect(self, artifact: Path) -> ArtifactInfo:
        return ArtifactInfo()
