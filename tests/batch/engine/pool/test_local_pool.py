"""Worker processes: one model load per process, results in input order."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose

from batch import JobSpec, run_job
from batch.engine.pool.local import ScoringPool
from batch.scoring.columns import STATUS_COLUMN, ScoringOptions

PROBA = ["default_no_PREDICTION", "default_yes_PREDICTION"]
CHUNKS = 20


def _uneven_chunks(frame: pd.DataFrame, count: int) -> list[pa.RecordBatch]:
    """``count`` chunks of very different sizes, so a later one can finish first."""
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    weights = np.where(np.arange(count) % 2 == 0, 5.0, 1.0)
    edges = np.round(np.cumsum(weights) / weights.sum() * batch.num_rows).astype(int)
    starts = np.concatenate([[0], edges[:-1]])
    return [batch.slice(s, e - s) for s, e in zip(starts, edges, strict=True)]


def _reference(trained, frame: pd.DataFrame) -> np.ndarray:
    return trained.estimator.predict_proba(frame[list(trained.features)])


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Job records go to a home of the test's own."""
    monkeypatch.setenv("BATCHPRED_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


SLOW_HOOKS = '''\
import time
from pathlib import Path

import joblib
import pandas as pd


def load_model(path):
    return joblib.load(Path(path) / "model.joblib")


def score(frame, model, **kwargs):
    # slow enough that both workers get chunks, longer for bigger chunks so that
    # a later, smaller chunk can finish first
    time.sleep(0.05 + 0.002 * len(frame))
    return pd.DataFrame(model.predict_proba(frame), columns=[str(c) for c in model.classes_])
'''


@pytest.fixture(scope="module")
def slow_package(make_hooks_package):
    """The logistic pipeline behind hooks that take 50-150 ms a chunk."""
    return make_hooks_package("credit-slow", SLOW_HOOKS)


@pytest.fixture
def fresh_process_cache(monkeypatch):
    """This process's model cache, empty for the test and restored after it."""
    monkeypatch.setattr("batch.models.cache._process_cache", None)


@pytest.mark.slow
def test_pool_loads_once_per_worker_and_keeps_order(slow_package, scoring_frame):
    frame = scoring_frame.copy()
    frame["income"] = frame["income"].astype(object)
    frame.loc[123, "income"] = "abc"  # one failed row, to see it counted
    frame["income"] = frame["income"].map(lambda v: None if pd.isna(v) else str(v))
    batches = _uneven_chunks(frame, CHUNKS)

    options = ScoringOptions(passthrough=("id",))
    with ScoringPool(slow_package.package, options, workers=2) as pool:
        results = list(pool.map_ordered(iter(batches)))

    ids = [r.batch.column("id").to_pylist() for r in results]
    assert ids == [b.column("id").to_pylist() for b in batches]
    pids = {r.pid for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert pool.loads_by_pid == {pid: 1 for pid in pids}
    assert all(r.loads == 1 for r in results)
    assert sum(r.failed_rows for r in results) == 1

    out = pa.Table.from_batches([r.batch for r in results]).to_pandas()
    assert out["id"].tolist() == scoring_frame["id"].tolist()
    ok = out.index != 123
    assert out.loc[123, STATUS_COLUMN] == "column 'income' has 'abc' (expected a number)"
    expected = _reference(slow_package, scoring_frame.loc[ok])
    assert_allclose(out.loc[ok, PROBA].to_numpy(), expected, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_run_job_with_two_workers(tmp_path, slow_package, scoring_frame, write_table):
    source = write_table(scoring_frame, "scoring-parquet", "parquet")
    spec = JobSpec(model=str(slow_package.path), input=source,
                   output=str(tmp_path / "out.parquet"), workers=2,
                   chunk_rows=len(scoring_frame) // CHUNKS, passthrough=("id",))
    report = run_job(spec)

    assert report.chunks == CHUNKS
    assert report.rows_scored == len(scoring_frame) and report.rows_failed == 0
    # two scorers: this process and one worker process
    assert len(report.model_loads) == 2 and os.getpid() in report.model_loads
    assert set(report.model_loads.values()) == {1}

    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert out["id"].tolist() == scoring_frame["id"].tolist()
    expected = _reference(slow_package, scoring_frame)
    assert_allclose(out[PROBA].to_numpy(), expected, rtol=0, atol=1e-9)
    assert out["default_PREDICTION"].tolist() == slow_package.estimator.predict(
        scoring_frame[list(slow_package.features)]).tolist()


def test_the_worker_has_a_chunk_queued_while_it_starts(hgb_package, scoring_frame):
    """A worker takes a second or so to start: meanwhile one chunk waits for it and
    this process scores the next ones, on past a full window (3 * workers + 1), so
    the worker begins the moment it is up and neither waits for the other."""
    batches = _uneven_chunks(scoring_frame, CHUNKS)
    with ScoringPool(hgb_package.package, ScoringOptions(), workers=1, inline=True) as pool:
        assert not pool.started()  # a new process takes far longer than this line
        up_when_taken: list[bool] = []

        def chunks():
            for batch in batches:
                up_when_taken.append(pool.started())
                yield batch

        results = list(pool.map_ordered(chunks()))
    pids = [r.pid for r in results]
    before_up = up_when_taken.index(True) if True in up_when_taken else len(batches)
    assert before_up > 3 * 1 + 1, "this process stopped at a full window"
    assert pids[0] != os.getpid()  # queued for the worker, not scored here
    assert pids[1:before_up] == [os.getpid()] * (before_up - 1)
    assert len(set(pids)) == 2 and set(pool.loads_by_pid.values()) == {1}
    out = pa.Table.from_batches([r.batch for r in results]).to_pandas()
    assert_allclose(out[["defaulted_0_PREDICTION", "defaulted_1_PREDICTION"]].to_numpy(),
                    _reference(hgb_package, scoring_frame), rtol=0, atol=1e-9)


def test_in_process_pool_loads_once(fresh_process_cache, hgb_package, scoring_frame):
    batches = _uneven_chunks(scoring_frame, CHUNKS)
    with ScoringPool(hgb_package.package, ScoringOptions(), workers=0) as pool:
        results = list(pool.map_ordered(batches))
    assert pool.loads_by_pid == {os.getpid(): 1}
    out = pa.Table.from_batches([r.batch for r in results]).to_pandas()
    expected = _reference(hgb_package, scoring_frame)
    assert_allclose(out[["defaulted_0_PREDICTION", "defaulted_1_PREDICTION"]].to_numpy(),
                    expected, rtol=0, atol=1e-9)


def test_run_job_on_csv_in_process(
    fresh_process_cache, tmp_path, logistic_package, scoring_frame, write_table
):
    """CSV feature columns arrive as text; predictions still equal the model's."""
    source = write_table(scoring_frame, "scoring-logistic", "csv")
    spec = JobSpec(model=str(logistic_package.path), input=source,
                   output=str(tmp_path / "out.parquet"), workers=0, chunk_rows=128,
                   passthrough_all=True)
    report = run_job(spec)
    assert report.model_loads == {os.getpid(): 1}
    assert report.chunks == 5
    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert out["id"].tolist() == scoring_frame["id"].tolist()
    assert_allclose(out[PROBA].to_numpy(), _reference(logistic_package, scoring_frame),
                    rtol=0, atol=1e-9)
