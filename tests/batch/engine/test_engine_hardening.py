"""What a job must never do: succeed with fewer rows than it saw, lose a CR-only file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.csv as pcsv
import pytest

from batch.engine.report import JobReport
from batch.engine.run import _check_complete, run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobRecord, JobStatus, JobStore
from batch.errors import IncompleteInputError
from connectors import ConnectorConfigError, OutputError, OutputExistsError


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


def _as_if_killed_while_publishing(job_id: str) -> None:
    """The job record as a kill between the publishing mark and the success record
    leaves it (the manifest and the output are what they are)."""
    store = JobStore()
    record = store.load(job_id)
    assert record is not None
    record.status = JobStatus.PUBLISHING
    store.save(record)


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "parts/", "out.csv.gz"])
def test_a_job_killed_after_publishing_is_finished_by_its_resume(
        workload, home, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    where = tmp_path / "out"
    spec = JobSpec(model=str(workload.package), input=str(workload.csv),
                   output=f"{where}/{name}", chunk_rows=7_000, workers=0, job_id="pub",
                   monitoring=False)
    run_job(spec)
    published = sorted((p.name, p.read_bytes()) for p in where.rglob("*") if p.is_file())
    _as_if_killed_while_publishing("pub")
    report = run_job(spec.model_copy(update={"resume": True}))  # no --overwrite needed
    assert report.status == "succeeded" and report.rows_scored == workload.table.num_rows
    assert JobStore().load("pub").status is JobStatus.SUCCEEDED
    after = sorted((p.name, p.read_bytes()) for p in where.rglob("*") if p.is_file())
    assert after == published  # untouched, and nothing left beside it


def test_a_job_killed_before_its_output_appeared_publishes_on_resume(
        workload, home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.csv"
    spec = JobSpec(model=str(workload.package), input=str(workload.csv), output=str(out),
                   chunk_rows=7_000, workers=0, job_id="pre", monitoring=False)
    run_job(spec, until_chunk=8)  # staged, nothing published
    _as_if_killed_while_publishing("pre")
    assert not out.exists()
    report = run_job(spec.model_copy(update={"resume": True}))
    assert report.status == "succeeded" and pcsv.read_csv(out).num_rows == 60_000


def test_an_output_that_is_not_the_jobs_is_not_taken_for_it(
        workload, home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.csv"
    spec = JobSpec(model=str(workload.package), input=str(workload.csv), output=str(out),
                   chunk_rows=7_000, workers=0, job_id="other", monitoring=False)
    run_job(spec, until_chunk=8)
    _as_if_killed_while_publishing("other")
    out.write_text("someone else's file\n")
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        run_job(spec.model_copy(update={"resume": True}))
    assert out.read_text() == "someone else's file\n"


@pytest.mark.parametrize(("output", "options", "message"), [
    ("snowflake://acct/db/schema/scores", {"password": "hunter2"},
     "snowflake output option 'password'"),
    ("s3://bucket/out.csv", {"endpoint_url": "http://user:hunter2@127.0.0.1:9"},
     "output option 'endpoint_url'"),
])
def test_a_secret_in_an_output_option_is_refused_before_anything_is_recorded(
        workload, home: Path, tmp_path: Path, output: str, options: dict[str, str],
        message: str) -> None:  # type: ignore[no-untyped-def]
    spec = JobSpec(model=str(workload.package), input=str(workload.csv), output=output,
                   output_options=options, job_id="secret", workers=0)
    with pytest.raises(ConnectorConfigError, match=message) as caught:
        run_job(spec)
    assert "hunter2" not in str(caught.value)
    assert not (home / "jobs" / "secret").exists()  # no record: nothing holds the secret
    leaked = [p for p in home.rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()]
    assert leaked == []


def test_recorded_options_never_hold_a_secret() -> None:
    spec = JobSpec(model="m", input="i", output="o", input_options={"token": "t0k"},
                   output_options={"endpoint_url": "http://u:pw@h:9000", "key_columns": "id"})
    recorded = spec.model_dump_json()
    assert "t0k" not in recorded and ":pw@" not in recorded
    assert spec.model_dump()["output_options"] == {"endpoint_url": "http://u:***@h:9000",
                                                   "key_columns": "id"}


def test_an_existing_or_impossible_output_fails_before_the_preflight(
        workload, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import time

    taken = tmp_path / "taken.csv"
    taken.write_text("keep me\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    cases = [(str(taken), OutputExistsError, "already exists; pass --overwrite"),
             (f"{blocker}/sub/out.csv", OutputError, "is a file, not a folder")]
    for output, error, message in cases:
        spec = JobSpec(model=str(workload.package), input=str(workload.csv), output=output,
                       job_id="early", workers=0, preflight_rows=50_000)
        started = time.perf_counter()
        with pytest.raises(error, match=message):
            run_job(spec)
        assert time.perf_counter() - started < 1.0  # no pre-flight scoring first
        assert not (home / "jobs" / "early").exists()
    assert taken.read_text() == "keep me\n"
