"""Jobs through the engine: order, resume after failures, budget, quarantine, pre-flight."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from batch.engine.run import plan_job, run_job
from batch.engine.spec import JobSpec
from batch.errors import ConfigError, ErrorBudgetExceeded, JobError, SchemaError, UserCodeError
from batch.models import open_package
from connectors import IntakeRequest
from connectors.files import FileIntake


def spec(workload, out: Path | str, **kw) -> JobSpec:  # type: ignore[no-untyped-def]
    base = {"model": str(workload.package), "input": str(workload.csv), "output": str(out),
            "passthrough": ("loan_id",), "chunk_rows": 2_000, "workers": 0}
    return JobSpec(**{**base, **kw})


def test_many_chunks_on_two_workers_keep_input_order(workload, home, tmp_path: Path) -> None:
    one = run_job(spec(workload, tmp_path / "one.csv", workers=0, job_id="one"))
    two = run_job(spec(workload, tmp_path / "two.csv", workers=2, job_id="two"))
    assert one.chunks == two.chunks == 30
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    ids = pcsv.read_csv(tmp_path / "two.csv").column("loan_id").to_pylist()
    assert ids == workload.table.column("loan_id").to_pylist()
    assert set(two.model_loads.values()) == {1} and 1 <= len(two.model_loads) <= 2


@pytest.mark.parametrize("name", ["out.csv.gz", "out.parquet", "parts/"])
def test_resume_after_a_failed_chunk_matches_a_clean_run(
    workload, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    clean = tmp_path / "clean" / name
    run_job(spec(workload, f"{clean}/" if name.endswith("/") else clean, job_id="clean"))
    out = tmp_path / "resumed" / name
    target = f"{out}/" if name.endswith("/") else out
    monkeypatch.setenv("BP_TEST_FAIL_LOAN", "25000")  # in chunk 12
    with pytest.raises(UserCodeError, match="refusing loan 25000"):
        run_job(spec(workload, target, job_id="flaky"))
    assert not out.exists() or not any(p.name.startswith("part-") for p in out.iterdir())
    monkeypatch.delenv("BP_TEST_FAIL_LOAN")
    report = run_job(spec(workload, target, job_id="flaky", resume=True))
    assert report.resumed_chunks == 12 and report.chunks == 30
    assert report.rows_scored == 60_000
    if name.endswith("/"):
        for part in sorted(p.name for p in clean.iterdir()):
            if part.startswith("part-"):
                assert (clean / part).read_bytes() == (out / part).read_bytes(), part
        success = json.loads((out / "_SUCCESS").read_text())
        assert len(success["parts"]) == 30
    else:
        assert clean.read_bytes() == out.read_bytes()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_a_worker_dying_publishes_nothing_and_resume_finishes(
    workload, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started_workers
) -> None:
    out = tmp_path / "o.csv"
    monkeypatch.setenv("BP_TEST_DIE_LOAN", "31000")  # chunk 15 on: the workers' chunks
    dies = spec(workload, out, job_id="dies", workers=3, preflight_rows=0)
    with pytest.raises(JobError, match="worker process died"):
        run_job(dies, workers=started_workers(dies))
    assert not out.exists()
    monkeypatch.delenv("BP_TEST_DIE_LOAN")
    run_job(spec(workload, out, job_id="dies", workers=2, preflight_rows=0, resume=True))
    run_job(spec(workload, tmp_path / "clean.csv", job_id="clean"))
    assert out.read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_finished_job_is_a_no_op_and_resume_checks_settings(workload, home, tmp_path) -> None:
    out = tmp_path / "o.csv"
    first = run_job(spec(workload, out, job_id="once"))
    stamp = out.stat().st_mtime_ns
    again = run_job(spec(workload, out, job_id="once"))
    assert again.already_done and again.rows_scored == first.rows_scored
    assert out.stat().st_mtime_ns == stamp
    fresh = run_job(spec(workload, tmp_path / "fresh.csv", job_id="ghost", resume=True))
    assert fresh.resumed_chunks == 0 and fresh.rows_scored == first.rows_scored


def test_resume_with_other_settings_is_refused(workload, home, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BP_TEST_FAIL_LOAN", "9000")
    with pytest.raises(UserCodeError):
        run_job(spec(workload, tmp_path / "o.csv", job_id="j", preflight_rows=0))
    with pytest.raises(ConfigError, match="already exists"):
        run_job(spec(workload, tmp_path / "o.csv", job_id="j"))
    with pytest.raises(ConfigError, match="ran with output="):
        run_job(spec(workload, tmp_path / "other.csv", job_id="j", resume=True))


def _with_bad_incomes(workload, tmp_path: Path, every: int) -> Path:  # type: ignore[no-untyped-def]
    lines = workload.csv.read_text().splitlines()
    col = lines[0].split(",").index('"income"')
    for i in range(1, len(lines), every):
        cells = lines[i].split(",")
        cells[col] = "n/a?"
        lines[i] = ",".join(cells)
    path = tmp_path / f"bad-{every}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_error_budget_and_quarantine(workload, home, tmp_path: Path) -> None:
    source = _with_bad_incomes(workload, tmp_path, every=50)  # 2% of rows
    out, quarantine = tmp_path / "o.csv", tmp_path / "q.csv"
    report = run_job(spec(workload, out, input=str(source), quarantine=str(quarantine),
                          job_id="ok"))
    assert report.rows_failed == 1_200
    bad = pcsv.read_csv(quarantine)
    assert bad.num_rows == 1_200
    assert bad.column_names[-1] == "prediction_status"
    assert set(bad.column("income").to_pylist()) == {"n/a?"}
    assert bad.column("prediction_status")[0].as_py() == (
        "column 'income' has 'n/a?' (expected a number)")
    strict = tmp_path / "strict.csv"
    with pytest.raises(ErrorBudgetExceeded, match=r"more than --max-error-rate 1\.0%") as info:
        run_job(spec(workload, strict, input=str(source), max_error_rate=0.01,
                     preflight_rows=0, quarantine=str(tmp_path / "q2.csv"), job_id="strict"))
    assert "column 'income' expected a number" in str(info.value)
    assert "row 1: 'n/a?'" in str(info.value)
    assert not strict.exists() and not (tmp_path / "q2.csv").exists()
    with pytest.raises(ErrorBudgetExceeded, match="more than --max-failed-rows 10"):
        run_job(spec(workload, tmp_path / "s2.csv", input=str(source), max_failed_rows=10,
                     preflight_rows=0, job_id="few"))


def test_preflight_fails_fast_before_any_output(workload, home, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ErrorBudgetExceeded, match="200 of 2,000 rows failed"):
        run_job(spec(workload, out / "o.csv", max_error_rate=0.05, workers=2,
                     input=str(_with_bad_incomes(workload, tmp_path, every=10)), job_id="pf"))
    assert not out.exists()
    (tmp_path / "few.csv").write_text("loan_id,age\n1,30\n")
    with pytest.raises(SchemaError, match="has no columns 'credit_score', 'loan_amount', 'income'"):
        run_job(spec(workload, out / "o.csv", input=str(tmp_path / "few.csv"), job_id="pf2"))
    assert not out.exists()


def test_job_report_beside_the_store(workload, home, tmp_path: Path) -> None:
    run_job(spec(workload, tmp_path / "o.csv", job_id="rep", workers=2))
    report = json.loads((home / "jobs" / "rep" / "report.json").read_text())
    assert report["scoredRows"] == 60_000 and report["failedRows"] == 0
    assert report["percentageCompleted"] == 100.0 and report["elapsedTimeSec"] > 0
    assert set(report["timings"]) >= {"preflight", "read", "score", "write", "commit", "total"}
    assert report["peak_memory_bytes"] > 10_000_000
    assert report["input_bytes"] == workload.csv.stat().st_size
    assert report["model_digest"] and report["version"]


def test_batch_score_takes_a_job_as_fields(workload, home, tmp_path: Path) -> None:
    import batch

    report = batch.score({"model": str(workload.package), "input": str(workload.csv),
                          "output": str(tmp_path / "o.parquet"), "workers": 1})
    assert report.rows_scored == 60_000 and report.status == "succeeded"
    with pytest.raises(ValueError, match="outptu"):
        batch.score({"model": str(workload.package), "input": str(workload.csv),
                     "outptu": "x.csv"})


def test_a_resume_starts_scoring_at_once_with_the_first_attempts_scorer(
    workload, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BP_TEST_FAIL_LOAN", "25000")
    with pytest.raises(UserCodeError):
        run_job(spec(workload, tmp_path / "out.csv", job_id="again"))
    monkeypatch.delenv("BP_TEST_FAIL_LOAN")
    first = json.loads((home / "jobs" / "again" / "job.json").read_text())
    assert first["scorer"] == "python" and first["fast_model"] is None
    report = run_job(spec(workload, tmp_path / "out.csv", job_id="again", resume=True))
    assert report.timings["preflight"] == 0.0  # passed in the first attempt
    assert report.scorer == "python" and report.resumed_chunks == 12


def test_a_resume_on_changed_input_is_refused(
    workload, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(workload.csv.read_bytes())
    job = spec(workload, tmp_path / "out.csv", job_id="moved", input=str(src))
    monkeypatch.setenv("BP_TEST_FAIL_LOAN", "25000")
    with pytest.raises(UserCodeError):
        run_job(job)
    monkeypatch.delenv("BP_TEST_FAIL_LOAN")
    with src.open("a") as f:
        f.write(src.read_text().splitlines()[-1] + "\n")
    with pytest.raises(JobError, match="cannot be resumed on changed input"):
        run_job(job.model_copy(update={"resume": True}))
    assert not (tmp_path / "out.csv").exists()


def test_a_job_scored_partition_by_partition_matches_a_one_shot_run(
    workload, home, tmp_path: Path, started_workers
) -> None:
    clean = run_job(spec(workload, tmp_path / "clean.csv", job_id="whole", chunk_rows=None,
                         chunk_size="256KB", workers=2))
    job = spec(workload, tmp_path / "parts.csv", job_id="parts", chunk_rows=None,
               chunk_size="256KB", workers=2, resume=True)
    plan = plan_job(job, partition_chunks=4)
    assert plan.chunks == clean.chunks >= 9 and not plan.finished
    assert plan.partitions[0] == (0, 4) and plan.partitions[-1][1] is None
    assert [start for start, _ in plan.partitions] == list(range(0, clean.chunks, 4))
    package = open_package(workload.package)
    workers = started_workers(job)
    for start, stop in plan.partitions:
        report = run_job(job, package=package, workers=workers, until_chunk=stop)
        assert report.resumed_chunks == start
        if stop is not None:
            assert report.status == "running" and report.chunks == stop
            assert not (tmp_path / "parts.csv").exists()  # staged, not published
    assert report.status == "succeeded" and report.chunks == clean.chunks
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()
    # the partitions shared the processes: each loaded the model once
    assert set(report.model_loads.values()) == {1} and len(report.model_loads) == 2
    assert plan_job(job).finished


def test_parquet_row_groups_are_read_by_the_workers_and_resume_exactly(
    workload, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started_workers
) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(workload.table, src, row_group_size=5_000)  # 12 row groups
    parts = FileIntake(IntakeRequest(uri=str(src), chunk_rows=1)).partitions()
    assert [p.rows for p in parts] == [5_000] * 12
    assert parts[3].after(1_200).read().column("loan_id")[0].as_py() == (
        workload.table.column("loan_id")[15_000 + 1_200].as_py())

    def job(name: str, **kw):  # type: ignore[no-untyped-def]
        return spec(workload, tmp_path / f"{name}.csv", job_id=name, input=str(src),
                    chunk_rows=None, workers=2, **kw)

    clean = run_job(job("clean"), workers=started_workers(job("clean")))
    assert clean.chunks == 12 and len(clean.model_loads) == 2  # both processes read and scored
    run_job(spec(workload, tmp_path / "csv.csv", job_id="csv", workers=0))
    got, want = (pcsv.read_csv(tmp_path / f"{n}.csv").to_pandas() for n in ("clean", "csv"))
    assert got.astype(str).equals(want.astype(str))  # same rows in order (CSV keeps ids as text)

    monkeypatch.setenv("BP_TEST_FAIL_LOAN", "25000")  # in row group 4
    with pytest.raises(UserCodeError):
        run_job(job("flaky"))
    monkeypatch.delenv("BP_TEST_FAIL_LOAN")
    resumed = run_job(job("flaky", resume=True))
    assert 0 < resumed.resumed_chunks <= 4 and resumed.chunks == 12
    assert (tmp_path / "flaky.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()
