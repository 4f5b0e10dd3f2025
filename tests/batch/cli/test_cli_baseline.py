"""``batchpred baseline`` and the baseline ``package create`` writes, through the command
line (in this process: what the commands write is what is tested)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from batchpred_cli import Batchpred


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and write."""
    return Batchpred(home, in_process=True)


def test_package_create_writes_the_baseline(credit, batchpred, tmp_path: Path) -> None:
    root = credit.package.parent
    res = batchpred("package", "create", str(tmp_path / "pkg"), "--artifact",
                    str(root / "model.joblib"), "--training-data", str(root / "train.csv"),
                    "--target", "is_default", "--positive-class", "yes")
    assert res.returncode == 0, res.stderr
    baseline = json.loads((tmp_path / "pkg" / "baseline.json").read_text())
    assert baseline["rows"] == 3000 and baseline["importance_source"] == "permutation"
    assert "baseline: baseline.json" in (tmp_path / "pkg" / "model.yaml").read_text()
    bare = batchpred("package", "create", str(tmp_path / "bare"), "--artifact",
                     str(root / "model.joblib"), "--training-data", str(root / "train.csv"),
                     "--target", "is_default", "--no-baseline")
    assert bare.returncode == 0, bare.stderr
    assert not (tmp_path / "bare" / "baseline.json").exists()


def _baseline_with(credit, batchpred, tmp_path: Path, importance: str):  # type: ignore[no-untyped-def]
    """``batchpred baseline`` on a copy of the package, with ``importance`` as its file."""
    pkg = tmp_path / "pkg"
    shutil.copytree(credit.package, pkg)
    weights = tmp_path / "importance.yaml"
    weights.write_text(importance)
    res = batchpred("baseline", str(pkg), "--training-data",
                    str(credit.package.parent / "train.csv"), "--importance", str(weights))
    return pkg, weights, res


def test_baseline_replaces_it_with_given_importance(credit, batchpred, tmp_path: Path) -> None:
    pkg, _, res = _baseline_with(credit, batchpred, tmp_path, "credit_score: 2\nincome: 1\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"baseline written to {pkg / 'baseline.json'}")
    importance = json.loads((pkg / "baseline.json").read_text())["importance"]
    assert importance["credit_score"] == 1.0 and importance["income"] == 0.5
    assert importance["age"] == 0.0


def test_a_bad_importance_file_is_one_line_and_writes_nothing(credit, batchpred,
                                                              tmp_path: Path) -> None:
    pkg, weights, res = _baseline_with(credit, batchpred, tmp_path, "- income\n")
    assert res.returncode == 1
    assert res.stderr == (f"error: --importance {weights}: expected a mapping of feature: "
                          "number\n")
    assert not (pkg / "baseline.json").exists()
