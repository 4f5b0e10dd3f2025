"""``kill -9`` of the whole process tree at several points, then ``--resume``.

The resumed output must equal an uninterrupted run's byte for byte. The killed jobs
are the installed script's processes; the runs that are not killed (the reference,
the resume) run in this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from batchpred_cli import Batchpred


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """Commands in this process; ``batchpred.start`` still starts the installed script."""
    return Batchpred(home, in_process=True)


def _args(workload, out: Path, job: str, chunks: tuple[str, str] = ("--chunk-rows", "1000"),
          ) -> list[str]:  # type: ignore[no-untyped-def]
    return ["score", "--model", str(workload.package), "--input", str(workload.csv),
            "--output", str(out), "--passthrough", "loan_id", *chunks,
            "--workers", "2", "--job-id", job, "--quiet"]


def _manifest_lines(home: Path, job: str) -> int:
    path = home / "jobs" / job / "manifest.jsonl"
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(proc: subprocess.Popen[bytes], home: Path, job: str, chunks: int) -> int:
    deadline = time.monotonic() + 120
    while _manifest_lines(home, job) < chunks and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return _manifest_lines(home, job)


@pytest.mark.parametrize(("name", "chunks"), [
    ("scored.csv", ("--chunk-rows", "1000")),  # streamed chunks
    ("scored.csv.gz", ("--chunk-size", "100KB")),  # byte ranges read by the workers
    ("scored.parquet", ("--chunk-size", "100KB")),
])
def test_kill_minus_nine_then_resume_is_byte_identical(
    workload, home: Path, batchpred, tmp_path: Path, name: str, chunks: tuple[str, str]
) -> None:
    clean = tmp_path / "clean" / name
    res = batchpred(*_args(workload, clean, "clean", chunks))
    assert res.returncode == 0, res.stderr
    total = _manifest_lines(home, "clean")
    assert total >= 20, total
    out = tmp_path / "killed" / name
    seen = []
    for point in (0, total // 8, total // 2, total * 3 // 4):
        proc = batchpred.start(*_args(workload, out, "k", chunks),
                               *(["--resume"] if point else []), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if point == 0:
            time.sleep(0.15)  # during start-up: the imports alone take longer
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert _manifest_lines(home, "k") == 0
            continue
        seen.append(_kill_when(proc, home, "k", point))
        assert not out.exists(), f"output published by a job killed at chunk {point}"
    assert seen == sorted(seen) and seen[-1] < total, seen
    res = batchpred(*_args(workload, out, "k", chunks), "--resume")
    assert res.returncode == 0, res.stderr
    assert "scored 60,000 rows" in res.stdout
    assert out.read_bytes() == clean.read_bytes()
    leftovers = [p.name for p in out.parent.iterdir() if p.name != name]
    assert leftovers == [], leftovers
    again = batchpred(*_args(workload, out, "k", chunks), "--resume")
    assert again.returncode == 0 and "already finished; nothing to do" in again.stdout


def test_job_show_prints_the_report(workload, home: Path, batchpred, tmp_path: Path) -> None:
    res = batchpred(*_args(workload, tmp_path / "o.csv", "shown"))
    assert res.returncode == 0, res.stderr
    shown = batchpred("job", "show", "shown")
    assert shown.returncode == 0, shown.stderr
    assert '"scoredRows": 60000' in shown.stdout and '"status": "succeeded"' in shown.stdout
    missing = batchpred("job", "show", "nope")
    assert missing.returncode == 1 and "no job 'nope'" in missing.stderr


def test_kill_minus_nine_as_the_output_appears_then_resume(
    workload, home: Path, batchpred, tmp_path: Path
) -> None:
    clean = tmp_path / "clean" / "out.csv"
    assert batchpred(*_args(workload, clean, "clean2")).returncode == 0
    out = tmp_path / "killed" / "out.csv"
    proc = batchpred.start(*_args(workload, out, "appear"), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    res = batchpred(*_args(workload, out, "appear"), "--resume")  # no --overwrite
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == clean.read_bytes()
    shown = batchpred("job", "show", "appear")
    assert "succeeded" in shown.stdout, shown.stdout
