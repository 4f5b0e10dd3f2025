"""``batchpred score`` starts its scoring processes before it loads the engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pyarrow.csv as pcsv
import pytest
from click.testing import CliRunner

from batch.cli import context
from batch.engine.pool import local, startup
from batch.engine.pool.startup import WorkerProcesses, threads_per_worker
from flows.cli import cli

EVENTS: list[str] = []


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[WorkerProcesses]:
    """Every process pool started, by the command line or by the engine; EVENTS says
    whether each started before or after the job."""
    pools: list[WorkerProcesses] = []
    EVENTS.clear()
    real_start, real_run = startup.start_processes, context.run_with_progress

    def recording_start(count: int, threads: int) -> WorkerProcesses:
        EVENTS.append("processes")
        pools.append(real_start(count, threads))
        return pools[-1]

    def recording_run(*args: Any, **kwargs: Any) -> Any:
        EVENTS.append("job")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(startup, "start_processes", recording_start)
    monkeypatch.setattr(local, "start_processes", recording_start)
    monkeypatch.setattr(context, "run_with_progress", recording_run)
    return pools


def _score(credit, home: Path, out: Path, *extra: str) -> str:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, [
        "score", "--model", str(credit.package), "--input", str(credit.csv), "--output",
        str(out), "--passthrough", "loan_id", "--workers", "2", "--quiet", *extra,
    ], env={"BATCHPRED_HOME": str(home)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _pids(pool: WorkerProcesses) -> list[int]:
    return [f.result(timeout=60) for f in pool.starting]


def test_the_job_scores_in_the_processes_started_first(credit, home, tmp_path,
                                                       started) -> None:  # type: ignore[no-untyped-def]
    assert credit.csv.stat().st_size > 2 * 16_000
    out = tmp_path / "scored.csv"
    _score(credit, home, out, "--chunk-size", "16KB", "--job-id", "early")
    # one pool, started by the command line before the job, and used by the job
    assert EVENTS == ["processes", "job"]
    assert [(p.workers, p.threads) for p in started] == [(1, threads_per_worker(2))]
    assert startup._prestarted is None
    assert pcsv.read_csv(out).column("loan_id").to_pylist() == (
        credit.table.column("loan_id").to_pylist())
    assert not any(psutil.pid_exists(pid) for pid in _pids(started[0]))


def test_processes_a_job_does_not_need_are_stopped(credit, home, tmp_path,
                                                   started) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "scored.csv"
    _score(credit, home, out, "--chunk-size", "16KB", "--job-id", "twice")
    output = _score(credit, home, out, "--chunk-size", "16KB", "--job-id", "twice")
    assert "already finished; nothing to do" in output
    assert len(started) == 2  # the second run started its processes, then stopped them
    assert startup._prestarted is None
    assert not any(psutil.pid_exists(pid) for pid in _pids(started[1]))


def test_a_small_input_starts_no_processes_early(credit, home, tmp_path,
                                                 started) -> None:  # type: ignore[no-untyped-def]
    _score(credit, home, tmp_path / "scored.csv", "--chunk-size", "8MB")
    assert EVENTS == ["job"]  # one chunk: this process scores it alone


def test_prestarted_processes_of_another_shape_are_left() -> None:
    startup.prestart(3)
    try:
        assert startup.take_prestarted(1, threads_per_worker(2)) is None
        taken = startup.take_prestarted(2, threads_per_worker(3))
        assert taken is not None and len(_pids(taken)) == 2
        taken.executor.shutdown()
    finally:
        startup.discard_prestarted()


@pytest.mark.parametrize(("option", "value", "early"), [
    ("--job-id", "a/b", ["processes"]),  # started, then stopped: the job id is checked after
    ("--chunk-size", "lots", []),  # not a size: nothing to decide on
])
def test_a_bad_option_leaves_no_processes(credit, home, tmp_path, started, option, value,
                                          early) -> None:  # type: ignore[no-untyped-def]
    args = ["--chunk-size", "16KB", option, value] if option != "--chunk-size" else [
        option, value]
    result = CliRunner().invoke(cli, [
        "score", "--model", str(credit.package), "--input", str(credit.csv), "--output",
        str(tmp_path / "scored.csv"), "--workers", "2", *args,
    ], env={"BATCHPRED_HOME": str(home)})
    assert result.exit_code == 1 and result.output.startswith(f"error: {option}: {value!r}")
    assert early == EVENTS
    assert startup._prestarted is None
    assert not any(psutil.pid_exists(pid) for pool in started for pid in _pids(pool))


def test_the_command_line_loads_no_engine_before_the_command_runs() -> None:
    """Not even pydantic and the job spec: the workers start before those load."""
    code = ("import sys, flows.cli; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'pydantic', 'prefect', "
            "'batch.engine.spec', 'batch.engine.run') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"
