"""``package``, ``deploy`` and ``quickstart`` through the command line, in this process.

The quickstart runs its job here, as the engine's command line does;
``tests/flows/test_flow_cleanup.py`` runs the installed one, whose job is a Prefect flow.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pcsv
import pytest
from batchpred_cli import Batchpred


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and write."""
    return Batchpred(home, in_process=True)


def test_package_create_and_info(credit, batchpred, tmp_path: Path) -> None:
    train = credit.package.parent / "train.csv"
    res = batchpred("package", "create", str(tmp_path / "p"), "--artifact",
              str(credit.package / "model.joblib"), "--training-data", str(train),
              "--target", "is_default", "--association-id", "loan_id")
    assert res.returncode == 0, res.stderr
    info = batchpred("package", "info", str(tmp_path / "p"))
    assert info.returncode == 0, info.stderr
    assert "type: binary" in info.stdout and "positive: 'yes'" in info.stdout
    assert "- name: purpose\n  type: category" in info.stdout
    assert "- name: income\n  type: number" in info.stdout
    assert "loan_id" in info.stdout.split("association_id:")[1].splitlines()[0]
    again = batchpred("package", "create", str(tmp_path / "p"), "--artifact",
                str(credit.package / "model.joblib"), "--training-data", str(train),
                "--target", "is_default")
    assert again.returncode == 1 and "already holds a model package" in again.stderr


def test_deploy_then_score_by_name(credit, batchpred, tmp_path: Path, home: Path) -> None:
    assert "no deployments yet" in batchpred("deploy", "list").stdout
    res = batchpred("deploy", "create", "credit", "--model", str(credit.package))
    assert res.returncode == 0, res.stderr
    listed = batchpred("deploy", "list").stdout
    assert listed.startswith("credit\tcredit-risk v1\t")
    shown = batchpred("deploy", "show", "credit").stdout
    assert "deployment: credit" in shown and str(home / "packages") in shown
    out = tmp_path / "o.parquet"
    scored = batchpred("score", "--model", "credit", "--input", str(credit.csv),
                       "--output", str(out))
    assert scored.returncode == 0, scored.stderr
    dup = batchpred("deploy", "create", "credit", "--model", str(credit.package))
    assert dup.returncode == 1 and "already exists" in dup.stderr


def test_quickstart_small(batchpred, tmp_path: Path) -> None:
    res = batchpred("quickstart", "--rows", "5000", "--dir", str(tmp_path / "qs"))
    assert res.returncode == 0, res.stderr
    assert "scored 5,000 rows (0 failed)" in res.stdout
    scored = pcsv.read_csv(tmp_path / "qs" / "predictions.csv")
    assert scored.num_rows == 5000
    assert scored.column("loan_id").to_pylist() == list(range(1, 5001))
    assert "credit-risk" in batchpred("deploy", "list").stdout
    drift = batchpred("drift", "credit-risk")  # the quickstart's job was watched
    assert drift.returncode == 0, drift.stderr
    assert "5,000 rows from 1 job(s)" in drift.stdout and "and: batchpred drift" in res.stdout
