"""score_batch against the models' own predictions, and the output layout."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from numpy.testing import assert_allclose

from batch.errors import SchemaError
from batch.models import open_package
from batch.scoring.columns import STATUS_COLUMN, ScoringOptions

BINARY = ["logistic_package", "hgb_package", "hooks_package"]


def _reference_proba(trained, frame: pd.DataFrame) -> np.ndarray:
    return trained.estimator.predict_proba(frame[list(trained.features)])


@pytest.mark.parametrize("fixture", BINARY)
def test_binary_probabilities_equal_predict_proba(request, fixture, scoring_frame, score_frame):
    trained = request.getfixturevalue(fixture)
    out = score_frame(trained, scoring_frame)
    ref = _reference_proba(trained, scoring_frame)
    target = trained.target
    for j, label in enumerate(trained.estimator.classes_):
        assert_allclose(out[f"{target}_{label}_PREDICTION"], ref[:, j], rtol=0, atol=1e-9)


@pytest.mark.parametrize("fixture", BINARY)
def test_binary_label_equals_estimator_predict(request, fixture, scoring_frame, score_frame):
    trained = request.getfixturevalue(fixture)
    out = score_frame(trained, scoring_frame)
    expected = trained.estimator.predict(scoring_frame[list(trained.features)]).astype(str)
    assert out[f"{trained.target}_PREDICTION"].tolist() == expected.tolist()
    assert set(expected) == {str(c) for c in trained.estimator.classes_}  # both labels occur


@pytest.mark.parametrize("fixture", BINARY)
def test_binary_threshold_and_positive_class_columns(request, fixture, scoring_frame, score_frame):
    trained = request.getfixturevalue(fixture)
    out = score_frame(trained, scoring_frame)
    target = trained.target
    labels = [str(c) for c in trained.estimator.classes_]
    assert list(out.columns) == [
        f"{target}_{labels[0]}_PREDICTION", f"{target}_{labels[1]}_PREDICTION",
        f"{target}_PREDICTION", "THRESHOLD", "POSITIVE_CLASS", STATUS_COLUMN,
    ]
    assert (out["THRESHOLD"] == 0.5).all()
    assert (out["POSITIVE_CLASS"] == labels[-1]).all()
    assert (out[STATUS_COLUMN] == "OK").all()


def test_threshold_decides_the_label(
    logistic_package, build_package, training_frame, scoring_frame, score_frame
):
    trained = build_package("credit-strict", logistic_package.estimator, training_frame,
                            "default", features=logistic_package.features, threshold=0.7)
    out = score_frame(trained, scoring_frame)
    p_yes = _reference_proba(trained, scoring_frame)[:, 1]
    assert ((p_yes > 0.5) & (p_yes <= 0.7)).any()  # rows where the threshold matters
    assert out["default_PREDICTION"].tolist() == np.where(p_yes > 0.7, "yes", "no").tolist()
    assert (out["THRESHOLD"] == 0.7).all()


def test_negative_class_as_positive(
    logistic_package, build_package, training_frame, scoring_frame, score_frame
):
    trained = build_package("credit-no", logistic_package.estimator, training_frame,
                            "default", features=logistic_package.features,
                            positive_class="no", threshold=0.6)
    out = score_frame(trained, scoring_frame)
    p_no = _reference_proba(trained, scoring_frame)[:, 0]
    assert out["default_PREDICTION"].tolist() == np.where(p_no > 0.6, "no", "yes").tolist()
    assert (out["POSITIVE_CLASS"] == "no").all()
    assert_allclose(out["default_no_PREDICTION"], p_no, rtol=0, atol=1e-9)


def test_multiclass_probabilities_and_argmax_label(multiclass_package, scoring_frame, score_frame):
    trained = multiclass_package
    out = score_frame(trained, scoring_frame)
    ref = _reference_proba(trained, scoring_frame)
    classes = [str(c) for c in trained.estimator.classes_]
    assert list(out.columns) == [f"segment_{c}_PREDICTION" for c in classes] + [
        "segment_PREDICTION", STATUS_COLUMN,
    ]
    for j, label in enumerate(classes):
        assert_allclose(out[f"segment_{label}_PREDICTION"], ref[:, j], rtol=0, atol=1e-9)
    expected = np.array(classes)[ref.argmax(axis=1)]
    assert out["segment_PREDICTION"].tolist() == expected.tolist()
    assert len(set(expected)) == 3
    assert out["segment_PREDICTION"].tolist() == trained.estimator.predict(
        scoring_frame[list(trained.features)]).tolist()


def test_regression_equals_predict(regressor_package, scoring_frame, score_frame):
    trained = regressor_package
    out = score_frame(trained, scoring_frame)
    assert list(out.columns) == ["amount_PREDICTION", STATUS_COLUMN]
    expected = trained.estimator.predict(scoring_frame[list(trained.features)])
    assert_allclose(out["amount_PREDICTION"], expected, rtol=0, atol=1e-9)


def test_named_passthrough_comes_first(logistic_package, scoring_frame, score_frame):
    options = ScoringOptions(passthrough=("id", "amount", "id"))
    out = score_frame(logistic_package, scoring_frame, options)
    assert list(out.columns[:2]) == ["id", "amount"]
    assert out.columns[-1] == STATUS_COLUMN
    assert out["id"].tolist() == scoring_frame["id"].tolist()
    assert_allclose(out["amount"], scoring_frame["amount"], rtol=0, atol=0)
    plain = score_frame(logistic_package, scoring_frame)
    pd.testing.assert_frame_equal(out.iloc[:, 2:], plain)


def test_passthrough_all_copies_every_input_column(logistic_package, scoring_frame, score_frame):
    out = score_frame(logistic_package, scoring_frame, ScoringOptions(passthrough_all=True))
    n = len(scoring_frame.columns)
    assert list(out.columns[:n]) == list(scoring_frame.columns)
    assert out.columns[-1] == STATUS_COLUMN
    def plain(frame: pd.DataFrame) -> pd.DataFrame:  # one spelling of "missing": None
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(out.iloc[:, :n]), plain(scoring_frame))


def test_status_column_can_be_left_out(regressor_package, scoring_frame, score_frame):
    out = score_frame(regressor_package, scoring_frame, ScoringOptions(status_column=False))
    assert list(out.columns) == ["amount_PREDICTION"]


def test_unknown_passthrough_column_names_it(logistic_package, scoring_frame, score_frame):
    with pytest.raises(SchemaError, match=r"passthrough column 'loan_ref' .*it has: id, income"):
        score_frame(logistic_package, scoring_frame, ScoringOptions(passthrough=("loan_ref",)))


def test_passthrough_clashing_with_an_output_column(logistic_package, scoring_frame, score_frame):
    frame = scoring_frame.assign(THRESHOLD=1.0)
    with pytest.raises(SchemaError, match="'THRESHOLD' has the name of an output column"):
        score_frame(logistic_package, frame, ScoringOptions(passthrough_all=True))


def test_empty_batch_keeps_the_schema(logistic_package, scoring_frame, score_frame):
    batch = pa.RecordBatch.from_pandas(scoring_frame, preserve_index=False).slice(0, 0)
    out = score_frame(logistic_package, batch, ScoringOptions(passthrough=("id",)))
    assert len(out) == 0
    assert list(out.columns) == ["id", "default_no_PREDICTION", "default_yes_PREDICTION",
                                 "default_PREDICTION", "THRESHOLD", "POSITIVE_CLASS",
                                 STATUS_COLUMN]


def test_manifest_class_order_is_the_column_order(tmp_path, logistic_package, scoring_frame,
                                                  score_frame):
    """The sklearn loader maps model.yaml's class order onto the model's own."""
    path = tmp_path / "reordered"
    shutil.copytree(logistic_package.path, path)
    data = yaml.safe_load((path / "model.yaml").read_text())
    data["target"]["classes"] = ["yes", "no"]
    (path / "model.yaml").write_text(yaml.safe_dump(data))
    out = score_frame(open_package(path), scoring_frame)
    assert list(out.columns[:2]) == ["default_yes_PREDICTION", "default_no_PREDICTION"]
    ref = _reference_proba(logistic_package, scoring_frame)
    assert_allclose(out["default_yes_PREDICTION"], ref[:, 1], rtol=0, atol=1e-9)
    assert_allclose(out["default_no_PREDICTION"], ref[:, 0], rtol=0, atol=1e-9)
    expected = logistic_package.estimator.predict(scoring_frame[list(logistic_package.features)])
    assert out["default_PREDICTION"].tolist() == expected.tolist()
