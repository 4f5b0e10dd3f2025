"""A real package and input files for the command-line tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET, credit_table, train_model
from batch.models.builder import PackageSpec, create_package


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
