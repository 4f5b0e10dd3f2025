"""A python-hooks package whose failures are switched on by environment variables.

``BP_TEST_FAIL_LOAN`` makes ``score`` raise on the chunk holding that loan id;
``BP_TEST_DIE_LOAN`` makes a scoring worker process kill itself on any chunk from
that loan id on. Both are real
configuration read by real code in the worker processes, not mocks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET, credit_table
from batch.engine.pool.local import ScoringPool
from batch.engine.spec import JobSpec
from batch.engine.workers import JobWorkers
from batch.models import open_package
from batch.models.builder import PackageSpec, create_package
from batch.models.manifest import TargetType
from batch.monitoring.baseline import build_baseline, write_baseline

CUSTOM = '''
import multiprocessing
import os
import signal

import numpy as np
import pandas as pd


def load_model(path):
    return {"center": 680.0, "scale": 45.0}


def score(frame, model, **kwargs):
    ids = set(frame["loan_id"].astype("int64"))
    loan = os.environ.get("BP_TEST_FAIL_LOAN")
    if loan and int(loan) in ids:
        raise RuntimeError(f"refusing loan {loan}")
    loan = os.environ.get("BP_TEST_DIE_LOAN")
    # only worker processes die (never the job's own process, which scores too)
    if loan and max(ids) >= int(loan) and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    z = (frame["credit_score"].fillna(model["center"]) - model["center"]) / model["scale"]
    z = z - frame["loan_amount"] / frame["income"].fillna(60000.0)
    p = 1.0 / (1.0 + np.exp(z.to_numpy(dtype=float)))
    return pd.DataFrame({"no": 1.0 - p, "yes": p})
'''


@dataclass(frozen=True)
class Workload:
    package: Path
    csv: Path
    table: pa.Table


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    root = tmp_path_factory.mktemp("engine")
    hooks = root / "hooks"
    hooks.mkdir()
    (hooks / "custom.py").write_text(CUSTOM)
    train = credit_table(500, seed=3)
    pcsv.write_csv(train.select(["loan_id", "credit_score", "loan_amount", "income", TARGET]),
                   root / "train.csv")
    package = create_package(root / "pkg", PackageSpec(
        artifact=hooks, training_data=str(root / "train.csv"), target=TARGET,
        target_type=TargetType.BINARY, positive_class="yes", name="hooked",
    ))
    table = credit_table(60_000, seed=4).drop_columns([TARGET])
    pcsv.write_csv(table, root / "score.csv")
    return Workload(package.path, root / "score.csv", table)


@pytest.fixture(scope="session")
def watched(workload, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The workload's package with a baseline from its training data."""
    path = tmp_path_factory.mktemp("watched") / "pkg"
    shutil.copytree(workload.package, path)
    training = pcsv.read_csv(workload.package.parent / "train.csv")
    write_baseline(open_package(path), build_baseline(open_package(path), training))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("BATCHPRED_HOME", str(home))
    return home




@pytest.fixture
def started_workers() -> Iterator[Callable[[JobSpec], JobWorkers]]:
    """Local scoring workers for a job, up and waiting: the job's own process scores
    every chunk until its workers are up, which may be all of a small job's chunks."""
    made: list[JobWorkers] = []

    def start(job: JobSpec) -> JobWorkers:
        workers = JobWorkers(job, open_package(job.model))
        made.append(workers)
        workers.plan(2, None)
        assert isinstance(workers.pool, ScoringPool)
        deadline = time.monotonic() + 60
        while not workers.pool.started():
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.01)
        return workers

    yield start
    for workers in made:
        workers.close()

