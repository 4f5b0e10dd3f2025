"""``package create``: what it infers from the artifact and the training data."""

from __future__ import annotations

import joblib
import pytest

from batch.errors import ConfigError, PackageError
from batch.models import TargetType
from batch.models.builder import PackageSpec, create_package

NUMERIC = ["income", "debt_ratio", "tenure"]


def _schema(trained) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in trained.package.manifest.features]


def test_feature_schema_from_training_data(logistic_package):
    manifest = logistic_package.package.manifest
    assert _schema(logistic_package) == [
        ("income", "number"), ("debt_ratio", "number"), ("tenure", "number"),
        ("purpose", "category"),
    ]
    assert manifest.association_id == "id"
    assert manifest.artifact.kind == "sklearn"
    assert manifest.name == "credit-logistic"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, hgb_package):
    path = tmp_path_factory.mktemp("builder") / "hgb.joblib"
    joblib.dump(hgb_package.estimator, path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_features_are_the_models_own(tmp_path, artifact, hgb_package, write_table, fmt):
    """Training data with more columns: only the model's features, in its order."""
    data = hgb_package.data.assign(purpose="car", notes="x")[
        ["notes", "defaulted", "tenure", "purpose", "debt_ratio", "income", "id"]]
    spec = PackageSpec(artifact=artifact, training_data=write_table(data, f"wide-{fmt}", fmt),
                       target="defaulted")
    package = create_package(tmp_path / "pkg", spec)
    assert [(f.name, f.type) for f in package.manifest.features] == [
        ("income", "number"), ("debt_ratio", "number"), ("tenure", "number")]
    assert package.manifest.name == "hgb"


def test_schema_without_model_feature_names(hooks_package):
    """A python-kind artifact names no features: every column but target and id is one."""
    assert _schema(hooks_package) == [
        ("income", "number"), ("debt_ratio", "number"), ("tenure", "number"),
        ("purpose", "category"),
    ]


def test_feature_types_from_csv(tmp_path, logistic_package, write_table):
    path = tmp_path / "logistic.joblib"
    joblib.dump(logistic_package.estimator, path)
    spec = PackageSpec(artifact=path, target="default",
                       training_data=write_table(logistic_package.data, "logistic", "csv"))
    package = create_package(tmp_path / "pkg", spec)
    assert package.manifest.features == logistic_package.package.manifest.features
    assert package.manifest.target == logistic_package.package.manifest.target


@pytest.mark.parametrize(("fixture", "ttype", "classes"), [
    ("logistic_package", "binary", ("no", "yes")),
    ("hgb_package", "binary", ("0", "1")),
    ("multiclass_package", "multiclass", ("bronze", "gold", "silver")),
    ("onnx_package", "binary", ("no", "yes")),
    ("hooks_package", "binary", ("no", "yes")),
])
def test_classes_from_the_model(request, fixture, ttype, classes):
    trained = request.getfixturevalue(fixture)
    target = trained.package.manifest.target
    assert target.type == ttype
    assert target.classes == classes
    assert target.classes == tuple(str(c) for c in trained.estimator.classes_)
    if ttype == "binary":
        assert target.positive == classes[-1]


def test_regression_detected_from_a_regressor(regressor_package):
    target = regressor_package.package.manifest.target
    assert target.type is TargetType.REGRESSION
    assert target.classes == () and target.positive is None


def test_positive_class_option(tmp_path, artifact, hgb_package, write_table):
    spec = PackageSpec(artifact=artifact, training_data=write_table(hgb_package.data, "hgb"),
                       target="defaulted", positive_class="0", threshold=0.3)
    target = create_package(tmp_path / "pkg", spec).manifest.target
    assert (target.positive, target.negative, target.threshold) == ("0", "1", 0.3)


def test_invalid_positive_class_is_a_config_error(tmp_path, artifact, hgb_package, write_table):
    spec = PackageSpec(artifact=artifact, training_data=write_table(hgb_package.data, "hgb"),
                       target="defaulted", positive_class="yes")
    with pytest.raises(ConfigError, match=r"--positive-class 'yes' is not one of \['0', '1'\]"):
        create_package(tmp_path / "pkg", spec)
    assert not (tmp_path / "pkg").exists()


def test_unknown_target_lists_the_columns(tmp_path, artifact, hgb_package, write_table):
    spec = PackageSpec(artifact=artifact, training_data=write_table(hgb_package.data, "hgb"),
                       target="defaulted_flag")
    with pytest.raises(ConfigError, match=r"--target 'defaulted_flag' is not a column .*"
                                          r"it has: id, income, debt_ratio"):
        create_package(tmp_path / "pkg", spec)


def test_features_the_data_lacks(tmp_path, artifact, hgb_package, write_table):
    data = hgb_package.data.drop(columns=["tenure"])
    spec = PackageSpec(artifact=artifact, training_data=write_table(data, "no-tenure"),
                       target="defaulted")
    with pytest.raises(PackageError, match=r"uses features \['tenure'\] that the training"):
        create_package(tmp_path / "pkg", spec)


def test_wrong_explicit_type_is_a_config_error(tmp_path, multiclass_package, write_table):
    path = tmp_path / "segment.joblib"
    joblib.dump(multiclass_package.estimator, path)
    spec = PackageSpec(artifact=path, target="segment", target_type=TargetType.BINARY,
                       training_data=write_table(multiclass_package.data, "segment"))
    pattern = r"^--type binary: a binary target needs 2 classes, got \['bronze', 'gold', 's"
    with pytest.raises(ConfigError, match=pattern):
        create_package(tmp_path / "pkg", spec)


def test_existing_package_is_not_overwritten(artifact, hgb_package, write_table):
    spec = PackageSpec(artifact=artifact, training_data=write_table(hgb_package.data, "hgb"),
                       target="defaulted")
    with pytest.raises(ConfigError, match="already holds a model package"):
        create_package(hgb_package.path, spec)


def test_unknown_suffix_needs_kind(tmp_path, hgb_package, write_table):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00")
    spec = PackageSpec(artifact=path, training_data=write_table(hgb_package.data, "hgb"),
                       target="defaulted")
    with pytest.raises(ConfigError, match=r"cannot tell the kind from '\.bin'; pass --kind"):
        create_package(tmp_path / "pkg", spec)
