"""Flow tests: one Prefect test harness for the session, real model packages, a home per test.

``flows`` points Prefect's home under the batchpred home when it is imported,
so this module gives the session a home of its own before ``flows`` (and
with it ``prefect``) is imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.csv as pcsv
import pytest

os.environ["BATCHPRED_HOME"] = tempfile.mkdtemp(prefix="batchpred-flows-")
atexit.register(shutil.rmtree, os.environ["BATCHPRED_HOME"], ignore_errors=True)
for _name in [k for k in os.environ if k.startswith("PREFECT_")]:
    del os.environ[_name]  # the developer's Prefect settings stay out of the tests

import flows  # noqa: E402,F401  (before prefect: applies the embedded default)

# isort: split
from flow_support import SCORE_ROWS, Credit, seed  # noqa: E402
from prefect.settings import PREFECT_API_URL  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from batch.cli.sample_data import TARGET, credit_table, train_model  # noqa: E402
from batch.models.builder import PackageSpec, create_package  # noqa: E402
from batch.models.manifest import TargetType  # noqa: E402

# Scores like a credit model; logs each call, and fails where the test says:
# a file ``fail-<first loan id>`` in $BP_FLOW_CONTROL holding "once" (removed
# when it fires) or "always".
HOOKS = '''
import os
from pathlib import Path

import numpy as np
import pandas as pd


def load_model(path):
    return {"center": 680.0, "scale": 45.0}


def score(frame, model, **kwargs):
    first = int(frame["loan_id"].iloc[0])
    control = os.environ.get("BP_FLOW_CONTROL")
    if control:
        with open(Path(control) / "calls.log", "a") as log:
            log.write(f"{first} {len(frame)}\\n")
        marker = Path(control) / f"fail-{first}"
        if marker.exists():
            if marker.read_text() == "once":
                marker.unlink()
            raise RuntimeError(f"refusing the chunk that starts at loan {first}")
    z = (frame["credit_score"].fillna(model["center"]) - model["center"]) / model["scale"]
    z = z - frame["loan_amount"] / frame["income"].fillna(60000.0)
    p = 1.0 / (1.0 + np.exp(z.to_numpy(dtype=float)))
    return pd.DataFrame({"no": 1.0 - p, "yes": p})
'''


@pytest.fixture(scope="session", autouse=True)
def prefect_api_url() -> Iterator[str]:
    """Prefect's test harness: a temporary API and database for the whole session."""
    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url
        yield url


@pytest.fixture(scope="session")
def migrated_db(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the harness's (migrated) database: homes seeded with it start their
    Prefect server in seconds instead of migrating a new database first."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    source = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split(":///", 1)[1]
    target = tmp_path_factory.mktemp("prefect-db") / "prefect.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


@pytest.fixture
def seed_home(migrated_db: Path) -> Callable[[Path], Path]:
    """``seed_home(home)``: give a batchpred home the migrated Prefect database."""
    return lambda home: seed(home, migrated_db)


@pytest.fixture(scope="session")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Credit:
    root = tmp_path_factory.mktemp("credit")
    train = credit_table(3000, seed=7)
    pcsv.write_csv(train, root / "train.csv")
    estimator = train_model(train)
    import joblib

    joblib.dump(estimator, root / "model.joblib")
    sklearn = create_package(root / "sklearn-pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk", association_id="loan_id",
    ))
    hooks_src = root / "hooks"
    hooks_src.mkdir()
    (hooks_src / "custom.py").write_text(textwrap.dedent(HOOKS), encoding="utf-8")
    pcsv.write_csv(train.select(["loan_id", "credit_score", "loan_amount", "income", TARGET]),
                   root / "train-hooks.csv")
    hooks = create_package(root / "hooks-pkg", PackageSpec(
        artifact=hooks_src, training_data=str(root / "train-hooks.csv"), target=TARGET,
        target_type=TargetType.BINARY, positive_class="yes", name="credit-hooks",
    ))
    table = credit_table(SCORE_ROWS, seed=8).drop_columns([TARGET])
    pcsv.write_csv(table, root / "score.csv")
    return Credit(sklearn.path, estimator, hooks.path, table, root / "score.csv")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's batchpred home (job records, manifests, reports)."""
    home = tmp_path / "home"
    monkeypatch.setenv("BATCHPRED_HOME", str(home))
    return home


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hooks package's control directory (see ``HOOKS``)."""
    path = tmp_path / "control"
    path.mkdir()
    monkeypatch.setenv("BP_FLOW_CONTROL", str(path))
    return path
