"""Fitting input columns to the feature schema: whole-input errors and per-row reasons."""

from __future__ import annotations

import shutil
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from numpy.testing import assert_allclose, assert_array_equal

from batch.errors import SchemaError
from batch.models import ModelManifest, open_package
from batch.scoring.columns import STATUS_COLUMN
from batch.scoring.features import check_schema, coerce_features

PROBA = ["default_no_PREDICTION", "default_yes_PREDICTION"]


def _batch(frame: pd.DataFrame) -> pa.RecordBatch:
    return pa.RecordBatch.from_pandas(frame, preserve_index=False)


def _replace(batch: pa.RecordBatch, name: str, values: pa.Array) -> pa.RecordBatch:
    return batch.set_column(batch.schema.get_field_index(name), name, values)


def _as_text(values: pd.Series) -> list[str | None]:
    """Numbers spelled as a CSV would spell them (shortest round-trip repr)."""
    return [None if pd.isna(v) else repr(float(v)) for v in values]


def _proba(trained, frame: pd.DataFrame) -> np.ndarray:
    return trained.estimator.predict_proba(frame[list(trained.features)])


def test_missing_required_column_names_it_and_lists_the_input(
    logistic_package, scoring_frame, score_frame
):
    frame = scoring_frame.drop(columns=["debt_ratio"])
    with pytest.raises(SchemaError) as info:
        score_frame(logistic_package, frame)
    message = str(info.value)
    assert "'debt_ratio'" in message
    assert "credit-logistic" in message
    assert "it has: " + ", ".join(frame.columns) in message


def test_check_schema_reports_every_missing_column(logistic_package):
    schema = pa.schema([("id", pa.int64()), ("tenure", pa.int64())])
    pattern = r"loans\.csv has no columns 'income', 'debt_ratio', 'purpose' required by"
    with pytest.raises(SchemaError, match=pattern):
        check_schema(logistic_package.package.manifest, schema, source="loans.csv")


def test_column_of_unusable_type_is_a_schema_error(logistic_package, scoring_frame, score_frame):
    frame = scoring_frame.assign(income=pd.Timestamp("2024-01-01"))
    with pytest.raises(SchemaError, match=r"column 'income' has type timestamp.*number feature"):
        score_frame(logistic_package, frame)


def test_extra_and_reordered_columns_are_ignored(logistic_package, scoring_frame, score_frame):
    frame = scoring_frame.assign(notes="free text", score2=np.arange(len(scoring_frame)))
    frame = frame[list(reversed(frame.columns))]
    out = score_frame(logistic_package, frame)
    assert_allclose(out[PROBA], _proba(logistic_package, scoring_frame), rtol=0, atol=1e-9)
    assert (out[STATUS_COLUMN] == "OK").all()


@pytest.mark.parametrize("typ", [pa.int64(), pa.int32(), pa.uint32()])
def test_integer_columns_upcast_to_float(logistic_package, scoring_frame, score_frame, typ):
    income = scoring_frame["income"].fillna(40_000).round().clip(0, 4e9)
    frame = scoring_frame.assign(income=income)
    values = pa.array([int(v) for v in income], typ)
    out = score_frame(logistic_package, _replace(_batch(frame), "income", values))
    assert_allclose(out[PROBA], _proba(logistic_package, frame), rtol=0, atol=1e-9)
    assert (out[STATUS_COLUMN] == "OK").all()


def test_decimal_column_upcasts_to_float(logistic_package, scoring_frame, score_frame):
    cents = [None if pd.isna(v) else Decimal(f"{v:.2f}") for v in scoring_frame["income"]]
    frame = scoring_frame.assign(income=[np.nan if d is None else float(d) for d in cents])
    values = pa.array(cents, pa.decimal128(12, 2))
    out = score_frame(logistic_package, _replace(_batch(frame), "income", values))
    assert_allclose(out[PROBA], _proba(logistic_package, frame), rtol=0, atol=1e-9)


def test_dictionary_encoded_category(logistic_package, scoring_frame, score_frame):
    """A pandas categorical (Parquet dictionary column) scores like plain strings."""
    frame = scoring_frame.assign(purpose=scoring_frame["purpose"].astype("category"))
    batch = _batch(frame)
    assert pa.types.is_dictionary(batch.schema.field("purpose").type)
    out = score_frame(logistic_package, batch)
    assert_allclose(out[PROBA], _proba(logistic_package, scoring_frame), rtol=0, atol=1e-9)


def test_numbers_as_text_parse_exactly(logistic_package, scoring_frame, score_frame):
    batch = _batch(scoring_frame)
    for name in ("income", "debt_ratio", "tenure"):
        batch = _replace(batch, name, pa.array(_as_text(scoring_frame[name]), pa.string()))
    out = score_frame(logistic_package, batch)
    assert_array_equal(out[PROBA].to_numpy(), _proba(logistic_package, scoring_frame))


def test_bad_value_fails_only_its_row(logistic_package, scoring_frame, score_frame):
    frame = scoring_frame.head(60).reset_index(drop=True)
    text = _as_text(frame["income"])
    text[7] = "abc"
    text[8] = "  "  # blank is missing, not bad
    batch = _replace(_batch(frame), "income", pa.array(text, pa.string()))
    out = score_frame(logistic_package, batch)

    assert out.loc[7, STATUS_COLUMN] == "column 'income' has 'abc' (expected a number)"
    assert out.loc[7, PROBA + ["default_PREDICTION"]].isna().all()
    ok = out.index != 7
    assert (out.loc[ok, STATUS_COLUMN] == "OK").all()
    expected_frame = frame.assign(income=frame["income"].where(frame.index != 8))
    expected = _proba(logistic_package, expected_frame.loc[ok])
    assert_array_equal(out.loc[ok, PROBA].to_numpy(), expected)
    assert out.loc[ok, "default_PREDICTION"].tolist() == np.where(
        expected[:, 1] > 0.5, "yes", "no").tolist()


def test_every_bad_value_in_a_row_is_named(logistic_package, scoring_frame, score_frame):
    frame = scoring_frame.head(5)
    batch = _batch(frame)
    income = _as_text(frame["income"])
    tenure = _as_text(frame["tenure"])
    income[2], tenure[2], tenure[4] = "12k", "n/a?", "ten"
    batch = _replace(batch, "income", pa.array(income, pa.string()))
    batch = _replace(batch, "tenure", pa.array(tenure, pa.string()))
    status = score_frame(logistic_package, batch)[STATUS_COLUMN].tolist()
    assert status == [
        "OK", "OK",
        "column 'income' has '12k' (expected a number); "
        "column 'tenure' has 'n/a?' (expected a number)",
        "OK",
        "column 'tenure' has 'ten' (expected a number)",
    ]


def test_all_rows_bad_scores_nothing(regressor_package, scoring_frame, score_frame):
    frame = scoring_frame.head(4)
    batch = _replace(_batch(frame), "debt_ratio", pa.array(["x"] * 4, pa.string()))
    out = score_frame(regressor_package, batch)
    assert out["amount_PREDICTION"].isna().all()
    assert (out[STATUS_COLUMN] == "column 'debt_ratio' has 'x' (expected a number)").all()


def test_missing_optional_feature_scores_as_all_missing(
    tmp_path, logistic_package, scoring_frame, score_frame
):
    path = tmp_path / "optional"
    shutil.copytree(logistic_package.path, path)
    manifest = yaml.safe_load((path / "model.yaml").read_text())
    for feature in manifest["features"]:
        if feature["name"] == "tenure":
            feature["required"] = False
    (path / "model.yaml").write_text(yaml.safe_dump(manifest))
    out = score_frame(open_package(path), scoring_frame.drop(columns=["tenure"]))
    expected = _proba(logistic_package, scoring_frame.assign(tenure=np.nan))
    assert_allclose(out[PROBA], expected, rtol=0, atol=1e-9)


def _manifest(*features: tuple[str, str]) -> ModelManifest:
    return ModelManifest.model_validate({
        "name": "m", "target": {"name": "y", "type": "regression"},
        "features": [{"name": n, "type": t} for n, t in features],
        "artifact": {"kind": "sklearn", "path": "model.joblib"},
    })


def test_boolean_and_integer_features():
    manifest = _manifest(("flag", "boolean"), ("count", "integer"), ("code", "category"))
    batch = pa.RecordBatch.from_pydict({
        "flag": ["Yes", " false", "maybe", None, "1"],
        "count": [1.0, 2.5, 3.0, None, 4.0],
        "code": [3, 4, None, 5, 6],
    })
    features = coerce_features(batch, manifest)
    assert_array_equal(features.frame["flag"], [1.0, 0.0, np.nan, np.nan, 1.0])
    assert_array_equal(features.frame["count"], [1.0, np.nan, 3.0, np.nan, 4.0])
    assert features.frame["code"].tolist()[:2] == ["3", "4"]
    assert features.frame["code"].isna().tolist() == [False, False, True, False, False]
    assert features.reasons.tolist() == [
        None,
        "column 'count' has 2.5 (expected an integer)",
        "column 'flag' has 'maybe' (expected true or false)",
        None,
        None,
    ]
    assert features.valid.tolist() == [True, False, False, True, True]


def test_a_dictionary_encoded_category_gives_the_same_features():
    """Parquet categories may arrive dictionary-encoded; they score like plain text."""
    manifest = _manifest(("code", "category"), ("size", "category"), ("x", "number"))
    plain = pa.RecordBatch.from_pydict({
        "code": ["b", None, "a", "b", "c"],
        "size": [3, 4, None, 3, 4],
        "x": [1.0, 2.0, None, 4.0, 5.0],
    })
    encoded = pa.RecordBatch.from_arrays(
        [pa.DictionaryArray.from_arrays(pa.array([1, None, 0, 1, 3], pa.int32()),
                                        pa.array(["a", "b", "unused", "c"])),
         pc.dictionary_encode(plain.column(1)),
         pc.dictionary_encode(plain.column(2))], names=plain.schema.names)
    want, got = coerce_features(plain, manifest), coerce_features(encoded, manifest)
    assert got.frame.equals(want.frame)
    assert want.frame["code"].tolist()[::2] == ["b", "a", "c"]
    assert want.frame["size"].tolist()[:2] == ["3", "4"]
    assert_array_equal(got.category_missing, [False, True, True, False, False])
    with_null = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1, 0], pa.int32()),
                                               pa.array(["a", None]))
    batch = pa.RecordBatch.from_arrays([with_null, plain.column(1), plain.column(2)],
                                       names=plain.schema.names)
    features = coerce_features(batch, manifest)  # a null in the dictionary: a missing row
    assert features.frame["code"].isna().tolist() == [False, True, False, True, False]
    assert_array_equal(features.category_missing, [False, True, True, True, False])


@pytest.mark.parametrize("value", [np.inf, -np.inf, "inf", "-Infinity"])
def test_infinite_number_fails_only_its_row(logistic_package, scoring_frame, score_frame, value):
    frame = scoring_frame.head(10).reset_index(drop=True)
    batch = _batch(frame)
    if isinstance(value, str):
        text = _as_text(frame["debt_ratio"])
        text[3] = value
        batch = _replace(batch, "debt_ratio", pa.array(text, pa.string()))
    else:
        ratio = frame["debt_ratio"].to_numpy(copy=True)
        ratio[3] = value
        batch = _replace(batch, "debt_ratio", pa.array(ratio, pa.float64()))
    out = score_frame(logistic_package, batch)
    assert out.loc[3, STATUS_COLUMN] == f"column 'debt_ratio' has {value!r} (expected a number)"
    assert out.loc[3, PROBA].isna().all()
    ok = out.index != 3
    expected = _proba(logistic_package, frame.loc[ok])
    assert_array_equal(out.loc[ok, PROBA].to_numpy(), expected)
