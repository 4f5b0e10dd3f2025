"""ONNX artifacts scored with onnxruntime.

``artifact.inputs`` maps each model input to the features it takes, in order
(a model converted from a ColumnTransformer usually has one input per column;
a plain numeric model, one input for all). Without it, inputs named like
features take that feature, and a single-input model takes all features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batch.errors import ModelOutputError, PackageError, UserCodeError
from batch.models.loaders.base import ArtifactInfo, Scorer
from batch.models.manifest import TargetType
from batch.models.package import ModelPackage

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def new_session(model: Path | bytes, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU, with ``threads`` threads inside an operator and
    one across them (the one set of session options: the worker's share of the cores).

    Raises:
        Whatever onnxruntime raises for a model it cannot load.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def open_session(path: Path, threads: int = 1) -> Any:
    """:func:`new_session` on a package's ONNX file.

    Raises:
        PackageError: onnxruntime cannot load it.
    """
    try:
        return new_session(path, threads)
    except Exception as exc:
        raise PackageError(f"{path}: cannot load the ONNX model: {exc}") from exc


def input_plan(
    session: Any, features: list[str], mapping: dict[str, tuple[str, ...]] | None, *, label: str
) -> dict[str, list[str]]:
    """Model input name -> feature names feeding it; ``label`` names the package in errors."""
    inputs = [i.name for i in session.get_inputs()]
    if mapping:
        _check_mapping(mapping, inputs, features, label)
        return {k: list(v) for k, v in mapping.items()}
    if set(inputs) <= set(features):
        return {name: [name] for name in inputs}
    if len(inputs) == 1:
        return {inputs[0]: list(features)}
    raise PackageError(
        f"{label}: model inputs {inputs} do not match the features {features}; "
        "map them in artifact.inputs"
    )


def _check_mapping(
    mapping: dict[str, tuple[str, ...]], inputs: list[str], features: list[str], label: str
) -> None:
    unknown = sorted(set(mapping) - set(inputs))
    if unknown:
        raise PackageError(f"{label}: artifact.inputs names {unknown}, model inputs are {inputs}")
    unfed = [i for i in inputs if not mapping.get(i)]
    if unfed:
        raise PackageError(f"{label}: artifact.inputs gives no features to model inputs {unfed}")
    strays = sorted({c for cols in mapping.values() for c in cols} - set(features))
    if strays:
        raise PackageError(
            f"{label}: artifact.inputs uses {strays}, which are not features; "
            f"the features are {features}"
        )


class OnnxScorer:
    def __init__(self, package: ModelPackage, session: Any) -> None:
        m = package.manifest
        self._label = package.label
        self._session = session
        self._plan = input_plan(session, m.feature_names, m.artifact.inputs, label=self._label)
        self._types = {i.name: i.type for i in session.get_inputs()}
        self._regression = m.target.type is TargetType.REGRESSION
        self._classes = list(m.target.classes)
        outputs = [o.name for o in session.get_outputs()]
        if m.artifact.output:
            if m.artifact.output not in outputs:
                raise PackageError(
                    f"{self._label}: artifact.output {m.artifact.output!r} is not one of {outputs}"
                )
            self._output = m.artifact.output
        elif self._regression:
            self._output = outputs[0]
        else:
            probs = [o for o in outputs if "prob" in o.lower()]
            self._output = probs[0] if probs else outputs[-1]

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        feed = {}
        for name, cols in self._plan.items():
            kind = self._types[name]
            if kind == "tensor(string)":
                block = frame[cols].astype(object).where(frame[cols].notna(), "")
                feed[name] = block.astype(str).to_numpy(dtype=object)
            else:
                feed[name] = frame[cols].to_numpy(dtype=_NUMPY_TYPES.get(kind, np.float32))
        return feed

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        try:
            (out,) = self._session.run([self._output], self._feed(frame))
        except Exception as exc:
            raise UserCodeError(f"{self._label}: onnxruntime raised: {exc}") from exc
        if isinstance(out, list):  # ZipMap output: one {label: probability} per row
            keys = [(c, _maybe_int(c)) for c in self._classes]
            out = [[row.get(c, row.get(k, np.nan)) for c, k in keys] for row in out]
        values = np.asarray(out, dtype=np.float64)
        if self._regression:
            return values.reshape(len(frame), -1)[:, 0]
        if values.ndim != 2 or values.shape[1] != len(self._classes):
            raise ModelOutputError(
                f"{self._label}: output {self._output!r} has shape {values.shape}, "
                f"expected ({len(frame)}, {len(self._classes)})"
            )
        return values


def _maybe_int(label: str) -> Any:
    try:
        return int(label)
    except ValueError:
        return label


class OnnxLoader:
    def load(self, package: ModelPackage, *, threads: int = 1) -> Scorer:
        return OnnxScorer(package, open_session(package.artifact_path, threads))

    def inspect(self, artifact: Path) -> ArtifactInfo:
        session = open_session(artifact)
        outputs = [o.name for o in session.get_outputs()]
        return ArtifactInfo(is_classifier=any("prob" in o.lower() for o in outputs))
