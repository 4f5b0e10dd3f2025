"""A real package and input files for the command-line tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from batch.models.builder import PackageSpec, create_package
from batch.quickstart import TARGET, credit_table, train_model


@dataclass(frozen=True)
class CreditModel:
    package: Path
    estimator: Any
    table: pa.Table  # scoring rows, no target
    csv: Path


@pytest.fixture(scope="session")
def credit(tmp_path_factory: pytest.TempPathFactory) -> CreditModel:
    root = tmp_path_factory.mktemp("credit")
    train = credit_table(3000, seed=7)
    pcsv.write_csv(train, root / "train.csv")
    estimator = train_model(train)
    joblib.dump(estimator, root / "model.joblib")
    package = create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk", association_id="loan_id",
    ))
    table = credit_table(2500, seed=8).drop_columns([TARGET])
    pcsv.write_csv(table, root / "score.csv")
    return CreditModel(package.path, estimator, table, root / "score.csv")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def run(home: Path):  # type: ignore[no-untyped-def]
    """Run ``batchpred ARGS`` in a subprocess with its own home."""

    def _run(*args: str, cwd: Path | None = None) -> Result:
        env = {**os.environ, "BATCHPRED_HOME": str(home)}
        proc = subprocess.run(
            [sys.executable, "-m", "batch.cli", *args], capture_output=True, text=True,
            env=env, cwd=cwd, timeout=300, check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return _run
