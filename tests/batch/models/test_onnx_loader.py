"""ONNX packages against onnxruntime run directly and against scikit-learn."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from batch.errors import PackageError
from batch.models import ModelCache, open_package

PROBA = ["default_no_PREDICTION", "default_yes_PREDICTION"]


def _direct(path, frame: pd.DataFrame) -> np.ndarray:
    """Probabilities from onnxruntime, fed by hand."""
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    feed: dict[str, Any] = {
        c: frame[[c]].to_numpy(dtype=np.float32) for c in ("income", "debt_ratio", "tenure")
    }
    feed["purpose"] = frame[["purpose"]].fillna("").to_numpy(dtype=object)
    return session.run(["probabilities"], feed)[0]


def test_onnx_equals_onnxruntime_and_sklearn(onnx_package, scoring_frame, score_frame):
    out = score_frame(onnx_package, scoring_frame)
    direct = _direct(onnx_package.path, scoring_frame)
    assert_allclose(out[PROBA].to_numpy(), direct, rtol=0, atol=1e-9)

    sk_frame = scoring_frame.assign(purpose=scoring_frame["purpose"].fillna(""))
    sklearn = onnx_package.estimator.predict_proba(sk_frame[list(onnx_package.features)])
    assert_allclose(out[PROBA].to_numpy(), sklearn, rtol=0, atol=1e-5)
    assert scoring_frame["purpose"].isna().any() and (scoring_frame["purpose"] == "boat").any()

    labels = np.where(direct[:, 1] > 0.5, "yes", "no")
    assert out["default_PREDICTION"].tolist() == labels.tolist()
    assert (out["POSITIVE_CLASS"] == "yes").all()


@pytest.fixture
def renamed_onnx(tmp_path, onnx_package):
    """The ONNX package with its features renamed, mapped to the inputs in artifact.inputs."""
    path = tmp_path / "renamed"
    shutil.copytree(onnx_package.path, path)
    data = yaml.safe_load((path / "model.yaml").read_text())
    for feature in data["features"]:
        feature["name"] = f"x_{feature['name']}"
    data["artifact"]["inputs"] = {f["name"][2:]: [f["name"]] for f in data["features"]}
    data["artifact"]["output"] = "probabilities"
    (path / "model.yaml").write_text(yaml.safe_dump(data))
    return path


def test_artifact_inputs_map_features_to_model_inputs(
    renamed_onnx, onnx_package, scoring_frame, score_frame
):
    frame = scoring_frame.rename(columns={c: f"x_{c}" for c in onnx_package.features})
    out = score_frame(open_package(renamed_onnx), frame)
    direct = _direct(onnx_package.path, scoring_frame)
    assert_allclose(out[PROBA].to_numpy(), direct, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("field", "value", "pattern"), [
    ("inputs", {"wages": ["x_income"]}, r"artifact\.inputs names \['wages'\], model inputs are"),
    ("inputs", {"income": ["x_income"]}, r"no features to model inputs \['debt_ratio', 'tenu"),
    ("inputs", {"income": ["wages"], "debt_ratio": ["x_debt_ratio"], "tenure": ["x_tenure"],
                "purpose": ["x_purpose"]}, r"artifact\.inputs uses \['wages'\], which are not"),
    ("output", "scores", r"artifact\.output 'scores' is not one of \['label', 'probabilities'\]"),
])
def test_bad_onnx_mapping_is_a_package_error(renamed_onnx, field, value, pattern):
    data = yaml.safe_load((renamed_onnx / "model.yaml").read_text())
    data["artifact"][field] = value
    (renamed_onnx / "model.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PackageError, match=pattern) as info:
        ModelCache().get(open_package(renamed_onnx))
    assert str(info.value).startswith("package 'credit-onnx' v1 (")


def test_unmapped_inputs_that_match_no_feature(renamed_onnx):
    data = yaml.safe_load((renamed_onnx / "model.yaml").read_text())
    del data["artifact"]["inputs"]
    (renamed_onnx / "model.yaml").write_text(yaml.safe_dump(data))
    pattern = r"do not match the features \['x_income', .*\]; map them in artifact\.inputs"
    with pytest.raises(PackageError, match=pattern):
        ModelCache().get(open_package(renamed_onnx))


def _integer_label_model(hgb_package) -> tuple[Pipeline, pd.DataFrame, str, tuple[str, ...]]:
    """0/1 labels on the numeric features (skl2onnx cannot convert this HGB)."""
    features = tuple(hgb_package.features)
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
    model.fit(hgb_package.data[list(features)], hgb_package.data["defaulted"])
    return model, hgb_package.data, "defaulted", features


@pytest.mark.parametrize("labels", ["string", "integer"])
def test_zipmap_output(request, labels, build_package, tmp_path_factory, scoring_frame,
                       score_frame):
    """With ZipMap a model returns one {label: probability} per row."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if labels == "string":
        trained = request.getfixturevalue("onnx_package")
        model, data, target, features = (trained.estimator, trained.data, trained.target,
                                         trained.features)
        types = [(c, StringTensorType([None, 1]) if c == "purpose" else
                  FloatTensorType([None, 1])) for c in features]
    else:  # one input for all features
        model, data, target, features = _integer_label_model(
            request.getfixturevalue("hgb_package"))
        types = [("features", FloatTensorType([None, len(features)]))]
    artifact = tmp_path_factory.mktemp("zipmap") / "model.onnx"
    artifact.write_bytes(convert_sklearn(model, initial_types=types).SerializeToString())
    zipped = build_package(f"zipmap-{labels}", model, data, target, features=features,
                           artifact=artifact)
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[1].type.startswith("seq(map(")

    out = score_frame(zipped, scoring_frame)
    classes = [str(c) for c in model.classes_]
    got = out[[f"{target}_{c}_PREDICTION" for c in classes]].to_numpy()
    frame = scoring_frame.assign(purpose=scoring_frame["purpose"].fillna(""))
    assert_allclose(got, model.predict_proba(frame[list(features)]), rtol=0, atol=1e-5)
