"""``batchpred job list`` and ``job discard``: what a failed job left, and removing it
(in this process: what the commands print and leave is what is tested)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pcsv
import pytest
from batchpred_cli import Batchpred

from batch.cli.sample_data import credit_table


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and leave."""
    return Batchpred(home, in_process=True)


def _broken_csv(tmp_path: Path) -> Path:
    """150,000 rows whose row 120,000 holds bytes that are not UTF-8."""
    path = tmp_path / "broken.csv"
    pcsv.write_csv(credit_table(150_000, seed=3).drop_columns(["is_default"]), path)
    lines = path.read_bytes().split(b"\n")
    lines[120_000] = lines[120_000].replace(b",", b",\xff\xfe", 1)
    path.write_bytes(b"\n".join(lines))
    return path


def test_a_failed_job_says_where_its_staging_is_and_discard_removes_it(
        credit, batchpred, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.csv"
    args = ["score", "--model", str(credit.package), "--input", str(_broken_csv(tmp_path)),
            "--output", str(out), "--chunk-size", "1MB", "--workers", "0", "--job-id",
            "broken", "--quiet", "--no-monitoring"]
    res = batchpred(*args)
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "the chunks staged so far are kept in " in line
    assert "`batchpred job discard broken`" in line and "--job-id broken --resume" in line
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv.broken")]
    assert staging and not out.exists()

    ok = batchpred("score", "--model", str(credit.package), "--input", str(credit.csv),
                   "--output", str(tmp_path / "good.csv"), "--job-id", "good", "--quiet")
    assert ok.returncode == 0, ok.stderr
    listed = batchpred("job", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {r.split("\t")[0]: r.split("\t") for r in listed.stdout.strip().splitlines()}
    assert rows["broken"][1] == "failed" and rows["broken"][4] != "staged 0 B"
    assert rows["good"][1] == "succeeded" and rows["good"][4] == "staged 0 B"

    gone = batchpred("job", "discard", "broken")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith("discarded job broken (failed, ")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv.broken")]
    assert not (home / "jobs" / "broken").exists()
    assert (tmp_path / "good.csv").exists()  # published output: never touched
    again = batchpred("job", "discard", "broken")
    assert again.returncode == 1 and again.stderr.startswith("error: no job 'broken'")


def test_discard_failed_before_an_age_keeps_recent_and_succeeded_jobs(
        credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = batchpred("score", "--model", str(credit.package), "--input", str(credit.csv),
                    "--output", str(tmp_path / "a.csv"), "--job-id", "fine", "--quiet")
    assert res.returncode == 0
    none = batchpred("job", "discard", "--failed-before", "1d")
    assert none.returncode == 1 and "name the jobs to discard" in none.stderr
    assert "fine\tsucceeded" in batchpred("job", "list").stdout
