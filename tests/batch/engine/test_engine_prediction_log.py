"""The prediction log: a deployment with an association id logs each scored row once,
under its id, however the job was cut or resumed; an input without the column fails
the pre-flight naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET
from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobStore
from batch.errors import SchemaError
from batch.models import open_package
from batch.monitoring.store import MonitoringStore


def _deploy(watched: Path, *, association_id: str | None = "loan_id", accuracy: bool = True
            ) -> None:
    registry = DeploymentRegistry()
    registry.create("logged", open_package(watched))
    settings = registry.get("logged").settings.model_copy(
        update={"association_id": association_id, "accuracy": accuracy})
    registry.update_settings("logged", settings)


def _logged(home: Path) -> dict[str, list]:  # type: ignore[type-arg]
    table = MonitoringStore(str(home / "monitoring")).read("logged", "predictions").table
    return table.sort_by("row").to_pydict()


def test_each_scored_row_is_logged_under_its_id(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched)
    out = tmp_path / "out.csv"
    report = run_job(JobSpec(model="logged", input=str(workload.csv), output=str(out),
                             chunk_rows=7_000, passthrough=("loan_id",), job_id="log"))
    scored = pcsv.read_csv(out)
    logged = _logged(home)
    assert report.predictions_logged == scored.num_rows == len(logged["row"])
    assert logged["row"] == list(range(scored.num_rows))
    assert logged["association_id"] == [str(v) for v in scored.column("loan_id").to_pylist()]
    assert logged["prediction"] == scored.column(f"{TARGET}_yes_PREDICTION").to_pylist()
    assert logged["label"] == scored.column(f"{TARGET}_PREDICTION").to_pylist()
    assert set(logged["probabilities"]) == {None}  # binary: the prediction says it all
    assert set(logged["job_id"]) == {"log"} and report.duplicate_association_ids == 0
    assert JobStore().load("log").association_id == "loan_id"  # type: ignore[union-attr]


def test_a_resumed_job_logs_every_row_once(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched)
    spec = JobSpec(model="logged", input=str(workload.csv), output=str(tmp_path / "o.csv"),
                   chunk_rows=2_000, workers=0, job_id="half")
    first = run_job(spec, until_chunk=11)
    assert first.status == "running"
    assert not (home / "monitoring").exists()  # the log goes out with the output
    run_job(spec.model_copy(update={"resume": True}))
    rows = _logged(home)["row"]
    assert rows == list(range(workload.table.num_rows))


def _manifest_lines(home: Path, job: str) -> int:
    path = home / "jobs" / job / "manifest.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_minus_nine_then_resume_logs_each_row_once(watched, workload, home, batchpred,
                                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched)
    args = ["score", "--model", "logged", "--input", str(workload.csv), "--output",
            str(tmp_path / "out.csv"), "--chunk-rows", "1000", "--workers", "2", "--job-id",
            "k", "--quiet"]
    proc = batchpred.start(*args, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _manifest_lines(home, "k") < 20 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    result = batchpred(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert "logged 60,000 predictions for accuracy" in result.stdout
    assert batchpred(*args, "--resume").returncode == 0  # finished: nothing twice
    assert _logged(home)["row"] == list(range(workload.table.num_rows))


def test_duplicate_ids_are_counted(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched)
    table = workload.table
    twice = table.set_column(table.schema.get_field_index("loan_id"), "loan_id",
                             pc.divide(table.column("loan_id"), 2))  # pairs share an id
    pcsv.write_csv(twice, tmp_path / "twice.csv")
    report = run_job(JobSpec(model="logged", input=str(tmp_path / "twice.csv"),
                             output=str(tmp_path / "o.csv"), job_id="twice"))
    distinct = pc.count_distinct(twice.column("loan_id")).as_py()
    assert report.duplicate_association_ids == table.num_rows - distinct > 0


def test_an_input_without_the_id_column_fails_the_preflight(watched, workload, home,
                                                            tmp_path) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched, association_id="application_id")
    with pytest.raises(SchemaError, match="no column 'application_id', the deployment's "
                                          "association id"):
        run_job(JobSpec(model="logged", input=str(workload.csv),
                        output=str(tmp_path / "o.csv"), job_id="noid"))
    assert JobStore().load("noid") is None and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("settings", [dict(association_id=None),
                                      dict(association_id="loan_id", accuracy=False)])
def test_no_log_without_an_association_id_or_with_accuracy_off(
        watched, workload, home, tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    _deploy(watched, **settings)
    report = run_job(JobSpec(model="logged", input=str(workload.csv),
                             output=str(tmp_path / "o.csv"), job_id="nolog"))
    assert report.predictions_logged is None
    assert not _logged(home)["row"]


def test_ids_are_logged_as_given(watched, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"00007" stays "00007" (as an actuals upload reads it), not the number 7."""
    _deploy(watched, association_id="application")
    table = workload.table.slice(0, 50)
    padded = [f"{v:05d}" for v in table.column("loan_id").to_pylist()]
    table = table.append_column("application", pa.array(padded))
    pcsv.write_csv(table, tmp_path / "padded.csv",  # unquoted, as an export writes them
                   write_options=pcsv.WriteOptions(quoting_style="none"))
    assert b"\n00001," in (tmp_path / "padded.csv").read_bytes() or \
        b",00001\n" in (tmp_path / "padded.csv").read_bytes()
    run_job(JobSpec(model="logged", input=str(tmp_path / "padded.csv"),
                    output=str(tmp_path / "o.csv"), job_id="padded"))
    assert _logged(home)["association_id"] == padded
