"""``batchpred score`` from S3 to S3 (moto's server), with ``kill -9``.

The input is split into byte ranges that the scoring workers fetch from S3
themselves, so the storage options must reach those processes. The output is
one object: it must not appear before the job ends, and a killed job resumed
with ``--resume`` must publish the same bytes as a run that was never killed.
The killed job is the installed script's process tree; the clean run and the
resume run the command in this process (their workers are processes all the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import batchpred_cli
import joblib
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET, credit_table, train_model
from batch.models.builder import PackageSpec, create_package

if TYPE_CHECKING:
    from conftest import S3  # the fixture's type; several conftest modules exist


ROWS = 12_000


@dataclass(frozen=True)
class Workload:
    package: Path
    csv: Path


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    root = tmp_path_factory.mktemp("s3-cli")
    train = credit_table(2000, seed=7)
    pcsv.write_csv(train, root / "train.csv")
    joblib.dump(train_model(train), root / "model.joblib")
    package = create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk", association_id="loan_id",
    ))
    pcsv.write_csv(credit_table(ROWS, seed=8).drop_columns([TARGET]), root / "score.csv")
    return Workload(package.path, root / "score.csv")


def score_args(workload: Workload, s3: S3 | None, source: str, target: str, job: str) -> list[str]:
    args = ["score", "--model", str(workload.package), "--input", source, "--output", target,
            "--passthrough", "loan_id", "--chunk-size", "32KB", "--workers", "2",
            "--job-id", job, "--quiet"]
    if s3 is not None:
        args += ["--input-option", f"endpoint_url={s3.endpoint}",
                 "--output-option", f"endpoint_url={s3.endpoint}"]
    return args


def cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return batchpred_cli.invoke(*args, home=home)  # AWS_* dummies from the s3 fixture


def manifest_lines(home: Path, job: str) -> int:
    try:
        return (home / "jobs" / job / "manifest.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_after(args: list[str], home: Path, job: str, chunks: int) -> int:
    """Start the job, ``kill -9`` its whole process tree once ``chunks`` are recorded."""
    proc = batchpred_cli.start(*args, home=home, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while manifest_lines(home, job) < chunks and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return manifest_lines(home, job)


def test_s3_to_s3_survives_kill_minus_nine_with_identical_bytes(
    workload: Workload, s3: S3, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    s3.put("in/score.csv", workload.csv.read_bytes())
    clean = score_args(workload, s3, s3.uri("in/score.csv"), s3.uri("out/clean.csv"), "clean")
    res = cli(clean, home)
    assert res.returncode == 0, res.stderr
    assert f"scored {ROWS:,} rows (0 failed)" in res.stdout
    scored = pcsv.read_csv(pa.BufferReader(s3.get("out/clean.csv")))
    assert scored.column("loan_id").equals(pcsv.read_csv(workload.csv).column("loan_id"))

    killed = score_args(workload, s3, s3.uri("in/score.csv"), s3.uri("out/scored.csv"), "k")
    seen = kill_after(killed, home, "k", chunks=4)
    assert 4 <= seen < manifest_lines(home, "clean"), seen
    assert s3.objects("out/scored") == [], "a killed job published its output"
    assert s3.objects("out/.scored.csv.k.staging/")  # its staged chunks wait for the resume
    res = cli([*killed, "--resume"], home)
    assert res.returncode == 0, res.stderr
    assert s3.get("out/scored.csv") == s3.get("out/clean.csv")
    assert s3.objects("out/") == ["out/clean.csv", "out/scored.csv"]  # no staging left
    assert s3.pending_uploads() == []
