"""The batch-score flow on the harness's API: artifacts, retries that resume, re-runs, Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from flow_support import CHUNK_ROWS, SCORE_ROWS, Credit
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    TaskRunFilter,
    TaskRunFilterName,
)
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, TaskRunSort
from prefect.states import Failed, State

from batch.engine.spec import JobSpec
from batch.engine.store import JobStatus, JobStore
from batch.errors import JobError, SchemaError, UserCodeError
from connectors import (
    ConnectorConfigError,
    OutputError,
    OutputExistsError,
    SourceNotFoundError,
)
from flows import batch_score, score
from flows.scoring import _transient, score_job


def _hooks_job(credit: Credit, out: Path, job_id: str, **kw: Any) -> JobSpec:
    return JobSpec(model=str(credit.hooks), input=str(credit.csv), output=str(out),
                   passthrough=("loan_id",), chunk_rows=CHUNK_ROWS, workers=0,
                   preflight_rows=0, job_id=job_id, **kw)


def _flow_run_id(state: State[Any]) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


def _calls(control: Path) -> dict[int, int]:
    """How often the hooks scored a chunk, by the chunk's first loan id."""
    counts: dict[int, int] = {}
    for line in (control / "calls.log").read_text().splitlines():
        first = int(line.split()[0])
        counts[first] = counts.get(first, 0) + 1
    return counts


def test_flow_scores_a_file_and_publishes_artifacts(credit: Credit, home: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    spec = JobSpec(model=str(credit.sklearn), input=str(credit.csv), output=str(out),
                   passthrough=("loan_id",), chunk_rows=2_000, workers=0, job_id="e2e-1")
    state = batch_score(spec, return_state=True)
    assert state.is_completed()
    report = state.result()
    assert report["rows_scored"] == SCORE_ROWS and report["percentageCompleted"] == 100.0

    scored = pcsv.read_csv(out).to_pandas()
    frame = credit.table.to_pandas()
    frame = frame.astype(object).where(frame.notna(), np.nan).infer_objects()
    expected = credit.estimator.predict_proba(frame)[:, list(credit.estimator.classes_)
                                                     .index("yes")]
    assert scored["loan_id"].tolist() == frame["loan_id"].tolist()
    np.testing.assert_allclose(scored["is_default_yes_PREDICTION"], expected, rtol=1e-6)

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(_flow_run_id(state))
        artifacts = client.read_artifacts(  # the sync client needs every filter
            artifact_filter=ArtifactFilter(), task_run_filter=TaskRunFilter(),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            sort=ArtifactSort.CREATED_DESC, limit=10, offset=0)
    assert run.name == "e2e-1" and run.state_name == "Completed"
    by_type = {a.type: a for a in artifacts}
    assert set(by_type) == {"table", "progress"}
    assert by_type["table"].key == "report-e2e-1"
    assert '"field": "rows_scored", "value": 6000' in str(by_type["table"].data)
    assert by_type["progress"].key == "progress-e2e-1" and by_type["progress"].data == 100.0


def test_failed_chunk_is_retried_and_resumes_after_committed_chunks(
        credit: Credit, home: Path, control: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPRED_FLOW_RETRIES", "2")
    monkeypatch.setenv("BATCHPRED_FLOW_RETRY_DELAY", "0")
    (control / "fail-3001").write_text("once")  # the fourth chunk fails on the first try
    out = tmp_path / "out.csv"
    state = batch_score(_hooks_job(credit, out, "retry-1"), return_state=True)

    assert state.is_completed()
    report = state.result()
    assert report["resumed_chunks"] == 3 and report["chunks"] == 6
    assert report["rows_scored"] == SCORE_ROWS
    # chunks committed before the failure were scored once, the failed one twice
    assert _calls(control) == {1: 1, 1001: 1, 2001: 1, 3001: 2, 4001: 1, 5001: 1}
    assert [c.index for c in JobStore().chunks("retry-1")] == list(range(6))
    assert pcsv.read_csv(out)["loan_id"].to_pylist() == list(range(1, SCORE_ROWS + 1))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[_flow_run_id(state)])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="score")),
            sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=10)
    assert [r.run_count for r in runs] == [2]


def test_failed_run_resumes_when_run_again_with_its_job_id(
        credit: Credit, home: Path, control: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPRED_FLOW_RETRIES", "0")
    (control / "fail-3001").write_text("always")
    out = tmp_path / "out.csv"
    with pytest.raises(UserCodeError, match="refusing the chunk that starts at loan 3001"):
        batch_score(_hooks_job(credit, out, "again-1"))
    record = JobStore().load("again-1")
    assert record is not None and record.status is JobStatus.FAILED
    assert len(JobStore().chunks("again-1")) == 3 and not out.exists()

    (control / "fail-3001").unlink()  # the cause is fixed
    report = score(_hooks_job(credit, out, "again-1"))
    assert report.resumed_chunks == 3 and report.rows_scored == SCORE_ROWS
    assert _calls(control)[1] == 1 and _calls(control)[3001] == 2
    assert pcsv.read_csv(out).num_rows == SCORE_ROWS

    again = score(_hooks_job(credit, out, "again-1"))  # finished: a no-op
    assert again.already_done and again.rows_scored == SCORE_ROWS
    assert _calls(control)[1] == 1
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["again-1"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=10)
    assert sorted(r.state_name for r in runs) == ["Completed", "Completed", "Failed"]


def test_only_transient_errors_are_retried() -> None:
    def failed(exc: Exception) -> State[Any]:
        return Failed(data=exc)

    def retried(exc: Exception) -> bool:
        return _transient(score_job, None, failed(exc))  # type: ignore[arg-type]

    assert retried(UserCodeError("flaky")) and retried(JobError("a worker died"))
    assert retried(OutputError("s3://b/out.csv: upload failed"))
    assert not retried(SchemaError("no column 'income'"))
    assert not retried(SourceNotFoundError("in.csv: no such file"))
    assert not retried(OutputExistsError("out.csv: exists; pass --overwrite to replace it"))
    assert not retried(ConnectorConfigError("out.csv: option 'bogus' does not apply"))
    # by type, not by message: the same words on another error change nothing
    assert retried(OutputError("out.csv: already exists; pass --overwrite to replace it"))


def test_a_bad_output_option_fails_at_once_with_no_retry(
        credit: Credit, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPRED_FLOW_RETRIES", "3")
    monkeypatch.setenv("BATCHPRED_FLOW_RETRY_DELAY", "30")  # a retry would show as a wait
    spec = JobSpec(model=str(credit.sklearn), input=str(credit.csv),
                   output=str(tmp_path / "out.csv"), output_options={"compresion": "gzip"},
                   workers=0, job_id="bad-option-1")
    state = batch_score(spec, return_state=True)

    assert state.is_failed()
    with pytest.raises(ConnectorConfigError, match="compresion"):
        state.result()
    with get_client(sync_client=True) as client:
        def runs(name: str) -> list[tuple[int, str | None]]:
            found = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[_flow_run_id(state)])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
                sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=10)
            return [(r.run_count, r.state_name) for r in found]

        # refused with the job's other checks, before its pre-flight: nothing scored
        assert runs("plan") == [(1, "Failed")] and runs("score") == []
    assert not (tmp_path / "out.csv").exists()
    assert not (home / "jobs" / "bad-option-1").exists()


@pytest.mark.slow
def test_dask_run_matches_local_run_and_loads_the_model_once_per_worker(
        credit: Credit, home: Path, tmp_path: Path) -> None:
    def spec(name: str, **kw: Any) -> JobSpec:
        return JobSpec(model=str(credit.sklearn), input=str(credit.csv),
                       output=str(tmp_path / f"{name}.csv"), passthrough=("loan_id",),
                       chunk_size="64KB", job_id=f"dask-test-{name}", **kw)

    local = score(spec("local", workers=0))
    dask = score(spec("dask", executor="dask", workers=2))
    assert dask.chunks == local.chunks >= 4
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(dask.model_loads) == 2 and set(dask.model_loads.values()) == {1}


def test_each_partition_is_a_task_retried_on_its_own(
        credit: Credit, home: Path, control: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPRED_FLOW_RETRIES", "2")
    monkeypatch.setenv("BATCHPRED_FLOW_RETRY_DELAY", "0")
    monkeypatch.setenv("BATCHPRED_FLOW_PARTITION_CHUNKS", "2")
    src = tmp_path / "in.parquet"
    pq.write_table(credit.table, src)  # row counts known: the chunks can be planned
    (control / "fail-3001").write_text("once")  # chunk 3, in the second partition
    out = tmp_path / "out.csv"
    job = _hooks_job(credit, out, "parts-1").model_copy(update={"input": str(src)})
    state = batch_score(job, return_state=True)

    assert state.is_completed()
    report = state.result()
    assert report["chunks"] == 6 and report["rows_scored"] == SCORE_ROWS
    assert _calls(control) == {1: 1, 1001: 1, 2001: 1, 3001: 2, 4001: 1, 5001: 1}
    assert pcsv.read_csv(out)["loan_id"].to_pylist() == list(range(1, SCORE_ROWS + 1))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[_flow_run_id(state)])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="score-")),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=10)
    assert [(r.name.rsplit("-", 1)[0], r.run_count) for r in runs] == [
        ("score-0", 1), ("score-1", 2), ("score-2", 1)]
    assert all(r.state_name == "Completed" for r in runs)
