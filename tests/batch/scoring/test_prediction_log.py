"""A scored chunk's prediction log: what each target type logs, and what it leaves out."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from batch.errors import SchemaError
from batch.models.kinds import TargetType
from batch.models.manifest import Target
from batch.scoring.prediction_log import BUCKET_COLUMN, ID_BUCKETS, bucket_of, prediction_log

INPUT = pa.record_batch({"id": pa.array([7, 8, None, 10]), "x": [1.0, 2.0, 3.0, 4.0]})


def _manifest(target: Target) -> SimpleNamespace:
    return SimpleNamespace(target=target)  # prediction_log reads only the target


def test_a_binary_log_keeps_the_positive_probability_and_no_list() -> None:
    target = Target(name="y", type=TargetType.BINARY, classes=("no", "yes"), positive="yes")
    scored = pa.record_batch({"y_PREDICTION": ["yes", "no", "no", None],
                              "y_no_PREDICTION": [0.2, 0.9, 0.6, None],
                              "y_yes_PREDICTION": [0.8, 0.1, 0.4, None]})
    log = prediction_log(INPUT, scored, _manifest(target), "id",  # type: ignore[arg-type]
                         buckets=ID_BUCKETS)
    # row 2 has no id, row 3 no prediction: neither is logged
    assert log.column("association_id").to_pylist() == ["7", "8"]
    assert log.column("row").to_pylist() == [0, 1]
    assert log.column("prediction").to_pylist() == [0.8, 0.1]
    assert log.column("label").to_pylist() == ["yes", "no"]
    assert log.column("probabilities").to_pylist() == [None, None]
    assert log.column(BUCKET_COLUMN).to_pylist() == bucket_of(
        pa.array(["7", "8"]), ID_BUCKETS).tolist()


def test_a_multiclass_log_keeps_every_class_probability() -> None:
    target = Target(name="y", type=TargetType.MULTICLASS, classes=("a", "b", "c"))
    scored = pa.record_batch({"y_PREDICTION": ["b", "a", "c", "c"],
                              "y_a_PREDICTION": [0.2, 0.5, 0.1, 0.3],
                              "y_b_PREDICTION": [0.7, 0.3, 0.1, 0.3],
                              "y_c_PREDICTION": [0.1, 0.2, 0.8, 0.4]})
    log = prediction_log(INPUT, scored, _manifest(target), None)  # type: ignore[arg-type]
    assert log.column("association_id").to_pylist() == ["#0", "#1", "#2", "#3"]
    assert log.column("prediction").to_pylist() == [0.7, 0.5, 0.8, 0.4]
    assert log.column("probabilities").to_pylist()[0] == [0.2, 0.7, 0.1]
    assert BUCKET_COLUMN not in log.schema.names


def test_a_regression_log_and_a_missing_id_column() -> None:
    target = Target(name="y", type=TargetType.REGRESSION)
    scored = pa.record_batch({"y_PREDICTION": [1.5, None, 2.5, 3.5]})
    log = prediction_log(INPUT, scored, _manifest(target), "id")  # type: ignore[arg-type]
    assert log.column("prediction").to_pylist() == [1.5, 3.5]
    assert log.column("label").null_count == log.column("probabilities").null_count == 2
    with pytest.raises(SchemaError, match="'loan_id'"):
        prediction_log(INPUT, scored, _manifest(target), "loan_id")  # type: ignore[arg-type]
