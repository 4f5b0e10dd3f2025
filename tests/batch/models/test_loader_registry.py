"""Loader kinds: a lazy table that third parties extend."""

from __future__ import annotations

import shutil

import pytest
import yaml

from batch.errors import ConfigError, PackageError
from batch.models import ModelCache, open_package
from batch.models.loaders import available_kinds, get_loader, register_loader
from batch.models.loaders.sklearn import SklearnScorer


@pytest.fixture(autouse=True)
def own_registrations(monkeypatch):
    monkeypatch.setattr("batch.models.loaders.registry._registered", {})


def test_built_in_kinds():
    assert {"onnx", "python", "sklearn"} <= set(available_kinds())


def test_registered_kind_scores_a_package(tmp_path, hgb_package):
    register_loader("pickled", "batch.models.loaders.sklearn:SklearnLoader")
    assert "pickled" in available_kinds()
    path = tmp_path / "package"
    shutil.copytree(hgb_package.path, path)
    data = yaml.safe_load((path / "model.yaml").read_text())
    data["artifact"]["kind"] = "pickled"
    (path / "model.yaml").write_text(yaml.safe_dump(data))
    assert isinstance(ModelCache().get(open_package(path)), SklearnScorer)


def test_taken_kind_needs_replace():
    with pytest.raises(ConfigError, match="loader kind 'sklearn' is already registered"):
        register_loader("sklearn", "batch.models.loaders.onnx:OnnxLoader")
    register_loader("sklearn", "batch.models.loaders.onnx:OnnxLoader", replace=True)
    assert type(get_loader("sklearn")).__name__ == "OnnxLoader"


def test_kind_that_cannot_be_imported():
    register_loader("broken", "batch.models.loaders.nowhere:Loader")
    with pytest.raises(PackageError, match=r"artifact kind 'broken': cannot import "
                                           r"batch\.models\.loaders\.nowhere:Loader"):
        get_loader("broken")
