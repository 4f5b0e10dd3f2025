"""What a job must never do: succeed with fewer rows than it saw, lose a CR-only file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.csv as pcsv
import pytest

from batch.engine.report import JobReport
from batch.engine.run import _check_complete, run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobRecord
from batch.errors import IncompleteInputError


@pytest.mark.parametrize("newline", [b"\r", b"\r\n"], ids=["cr-only", "crlf"])
def test_a_csv_of_any_line_end_scores_every_row(workload, home, tmp_path: Path,
                                                newline: bytes) -> None:  # type: ignore[no-untyped-def]
    lines = workload.csv.read_bytes().splitlines()
    path = tmp_path / "old-mac.csv"
    path.write_bytes(newline.join(lines) + newline)
    out = tmp_path / "out.csv"
    report = run_job(JobSpec(model=str(workload.package), input=str(path), output=str(out),
                             chunk_size="64KB", workers=2, job_id="cr", monitoring=False))
    assert report.rows_scored == workload.table.num_rows and report.chunks > 5
    assert pcsv.read_csv(out).num_rows == workload.table.num_rows


def _run(rows_seen: int, scored: int, planned: int | None = None,
         chunks: int = 1) -> SimpleNamespace:
    spec = JobSpec(model="m", input="in.csv", output="out.csv")
    record = JobRecord(job_id="j", spec=spec, model_digest="d", rows_seen=rows_seen,
                       chunk_bytes=1 << 20 if planned else None, chunks_planned=planned)
    report = JobReport("j", "out.csv", "d", rows_scored=scored, chunks=chunks)
    return SimpleNamespace(spec=spec, record=record, report=report)


def test_a_job_with_fewer_rows_than_its_preflight_saw_fails() -> None:
    _check_complete(_run(2_000, 2_000))  # type: ignore[arg-type]
    _check_complete(_run(2_000, 9_000, planned=3, chunks=3))  # type: ignore[arg-type]
    with pytest.raises(IncompleteInputError, match="the pre-flight read 2,000 rows, but the "
                       "job's chunks held 0; nothing was published"):
        _check_complete(_run(2_000, 0))  # type: ignore[arg-type]
    with pytest.raises(IncompleteInputError, match="planned as 3 byte ranges, but 2 were"):
        _check_complete(_run(10, 9_000, planned=3, chunks=2))  # type: ignore[arg-type]
