"""Fixtures: a real ``batchpred serve`` subprocess and the packages it serves.

``server`` (one for the session: ``test_server`` and ``test_server_schema`` only read
from it) serves two deployments created with ``batchpred deploy create`` (the
credit model and the multiclass segment model) with a payload limit of
:data:`MAX_PAYLOAD_MB`; ``slow_server`` serves one python-hooks package whose
``load_model`` returns only once the test creates :data:`RELEASE` in the server's home,
to see the server before it is ready.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import batchpred_cli
import joblib
import pyarrow.csv as pcsv
import pytest
from server_harness import MAX_PAYLOAD_MB, RELEASE, Credit, Server, start_server, stop

from batch.cli.sample_data import TARGET, credit_table, train_model
from batch.models import open_package
from batch.models.builder import PackageSpec, create_package, training_table
from batch.monitoring.baseline import build_baseline, write_baseline


@pytest.fixture(scope="session")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Credit:
    root = tmp_path_factory.mktemp("serve-credit")
    train = credit_table(2000, seed=7)
    pcsv.write_csv(train, root / "train.csv")
    estimator = train_model(train)
    joblib.dump(estimator, root / "model.joblib")
    package = create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk", association_id="loan_id",
    ))
    return Credit(package.path, estimator, credit_table(300, seed=8).drop_columns([TARGET]))


@pytest.fixture(scope="session")
def watched_credit(tmp_path_factory: pytest.TempPathFactory, credit: Credit) -> Path:
    """The credit package with a baseline from its training rows (a copy)."""
    pkg = tmp_path_factory.mktemp("watched-credit") / "pkg"
    shutil.copytree(credit.package, pkg)
    package = open_package(pkg)
    write_baseline(package, build_baseline(package, training_table(
        str(credit.package.parent / "train.csv"))))
    return pkg


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, credit: Credit,
           multiclass_package: Any) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve-home")
    for name, package in (("credit", credit.package), ("segment", multiclass_package.path)):
        done = batchpred_cli.invoke("deploy", "create", name, "--model", str(package), home=home)
        assert done.returncode == 0, done.stderr
    running = start_server(home, "--max-payload-mb", str(MAX_PAYLOAD_MB),
                           ready=lambda r: r.status_code == 200)
    yield running
    stop(running)


SLOW_HOOKS = '''\
"""Custom-model hooks around a joblib pipeline that load once {release} exists (the
test creates it; at most a minute)."""
import time
from pathlib import Path

import joblib
import pandas as pd


def load_model(path):
    deadline = time.monotonic() + 60
    while not Path({release!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return joblib.load(Path(path) / "model.joblib")


def score(frame, model, **kwargs):
    return pd.DataFrame(model.predict_proba(frame), columns=[str(c) for c in model.classes_])
'''


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory,
                make_hooks_package: Callable[[str, str], Any]) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve-slow-home")
    release = home / RELEASE
    release.touch()  # building the package loads the model too (for its classes): at once
    package = make_hooks_package("credit-slow", SLOW_HOOKS.format(release=str(release)))
    release.unlink()
    running = start_server(home, "--model", str(package.path), ready=lambda r: True)
    yield running
    stop(running)
