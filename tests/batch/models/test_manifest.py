"""model.yaml validation, package opening and corrupt artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from batch.errors import PackageError
from batch.models import ModelCache, ModelManifest, open_package, read_manifest
from batch.models.loaders import get_loader


@pytest.fixture
def package_copy(tmp_path: Path, logistic_package) -> Path:
    path = tmp_path / "package"
    shutil.copytree(logistic_package.path, path)
    return path


def _edit_manifest(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load((path / "model.yaml").read_text())
    edit(data)
    (path / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_written_manifest_round_trips(logistic_package):
    package = logistic_package.package
    manifest = read_manifest(package.path / "model.yaml")
    assert manifest == package.manifest
    assert ModelManifest.model_validate(yaml.safe_load(manifest.to_yaml())) == manifest
    assert manifest.target.negative == "no"


def _set(*keys: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key)


def _duplicate_feature(data: dict[str, Any]) -> None:
    data["features"].append({"name": "income", "type": "number"})


BAD_FIELDS = {
    "target type": (_set("target", "type", value="binry"),
                    r"field 'target\.type': .*'binary'.*\(got 'binry'\)"),
    "positive class": (_set("target", "positive", value="maybe"),
                       r"field 'target': positive class 'maybe' is not one of \['no', 'yes'\]"),
    "threshold": (_set("target", "threshold", value=1.5),
                  r"field 'target\.threshold': .*less than or equal to 1.*\(got 1\.5\)"),
    "binary with one class": (_set("target", "classes", value=["yes"]),
                              r"field 'target': a binary target needs 2 classes"),
    "duplicate feature": (_duplicate_feature,
                          r"field 'features': features listed twice: \['income'\]"),
    "feature type": (_set("features", 0, "type", value="text"),
                     r"field 'features\.0\.type': .*\(got 'text'\)"),
    "no features": (_set("features", value=[]), r"field 'features': .*at least 1 item"),
    "target as feature": (_set("features", 0, "name", value="default"),
                          r"field 'features': target 'default' is also listed as a feature"),
    "no artifact": (_drop("artifact"), r"field 'artifact': Field required"),
    "artifact outside": (_set("artifact", "path", value="../model.joblib"),
                         r"field 'artifact': artifact path '\.\./model\.joblib' must be relative"),
    "unknown field": (_set("colour", value="blue"), r"field 'colour': Extra inputs"),
}


@pytest.mark.parametrize("case", BAD_FIELDS, ids=list(BAD_FIELDS))
def test_bad_field_is_named(package_copy, case):
    edit, pattern = BAD_FIELDS[case]
    _edit_manifest(package_copy, edit)
    with pytest.raises(PackageError, match=pattern) as info:
        open_package(package_copy)
    assert str(package_copy / "model.yaml") in str(info.value)


def test_every_bad_field_is_reported(package_copy):
    def edit(data: dict[str, Any]) -> None:
        data["target"]["type"] = "binry"
        data["features"][1]["type"] = "text"
    _edit_manifest(package_copy, edit)
    with pytest.raises(PackageError, match=r"'target\.type'.*; field 'features\.1\.type'"):
        open_package(package_copy)


def test_not_yaml_or_not_a_mapping(package_copy):
    (package_copy / "model.yaml").write_text("name: [unclosed\n")
    with pytest.raises(PackageError, match="not valid YAML"):
        open_package(package_copy)
    (package_copy / "model.yaml").write_text("- a list\n")
    with pytest.raises(PackageError, match="expected a mapping at the top, got list"):
        open_package(package_copy)


def test_not_a_package(tmp_path):
    with pytest.raises(PackageError, match="not a model package directory"):
        open_package(tmp_path / "nowhere")
    with pytest.raises(PackageError, match="no model.yaml here"):
        open_package(tmp_path)


def test_missing_artifact_file_is_named(package_copy):
    os.remove(package_copy / "model.joblib")
    with pytest.raises(PackageError, match=r"field 'artifact\.path': 'model\.joblib' does not"):
        open_package(package_copy)


def test_unknown_artifact_kind_lists_the_known_ones(package_copy):
    _edit_manifest(package_copy, _set("artifact", "kind", value="xgboost"))
    package = open_package(package_copy)
    with pytest.raises(PackageError, match="unknown artifact kind 'xgboost'; known kinds: .*onnx"):
        ModelCache().get(package)


@pytest.mark.parametrize("fixture", ["logistic_package", "onnx_package"])
def test_corrupt_artifact_names_the_file(tmp_path, request, fixture):
    trained = request.getfixturevalue(fixture)
    path = tmp_path / "package"
    shutil.copytree(trained.path, path)
    artifact = path / trained.package.manifest.artifact.path
    artifact.write_bytes(os.urandom(2048))
    package = open_package(path)
    with pytest.raises(PackageError, match=f"{artifact}: cannot load"):
        get_loader(package.manifest.artifact.kind).load(package)


def test_classes_that_do_not_match_the_model(package_copy):
    _edit_manifest(package_copy, _set("target", "classes", value=["no", "maybe"]))
    _edit_manifest(package_copy, _set("target", "positive", value="maybe"))
    with pytest.raises(PackageError, match=r"classes \['no', 'maybe'\] do not match .*'yes'"):
        ModelCache().get(open_package(package_copy))
