"""Schedules from the command line, reported to the server PREFECT_API_URL names (the
installed script creates them; listing, replacing and deleting run in this process, on
the harness's API)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from batchpred_cli import run as run_cli
from click.testing import CliRunner
from flow_support import Credit
from prefect import get_client

from batch.errors import ConfigError
from flows.cli import cli
from flows.jobfile import load_job_file
from flows.schedules import SCHEDULE_TAG, list_schedules


def _job_file(path: Path, credit: Credit, **fields: object) -> Path:
    path.write_text(yaml.safe_dump({"model": str(credit.sklearn), "input": str(credit.csv),
                                    "output": "nightly/scored.csv", "overwrite": True,
                                    **fields}))
    return path


def test_schedule_is_created_listed_and_deleted(credit: Credit, tmp_path: Path,
                                                prefect_api_url: str) -> None:
    job = _job_file(tmp_path / "nightly.yaml", credit)
    created = run_cli("schedule", "create", "nightly", "--job", str(job), "--cron", "0 2 * * *",
                      home=tmp_path / "home", PREFECT_API_URL=prefect_api_url)
    assert created.returncode == 0, created.stderr
    assert "schedule 'nightly' created" in created.stdout

    (schedule,) = [s for s in list_schedules() if s.name == "nightly"]
    assert schedule.when == "cron '0 2 * * *' (UTC)" and not schedule.paused
    # relative paths in a job file are relative to the file
    assert schedule.job["output"] == str(tmp_path / "nightly" / "scored.csv")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("batch-score/nightly")
    assert SCHEDULE_TAG in deployment.tags
    assert deployment.entrypoint == "flows.scoring.batch_score"

    runner = CliRunner()  # in this process, on the harness's API
    listed = runner.invoke(cli, ["schedule", "list"])
    assert listed.exit_code == 0, listed.output
    assert "nightly\tcron '0 2 * * *' (UTC)\tnext " in listed.stdout

    again = runner.invoke(cli, ["schedule", "create", "nightly", "--job", str(job),
                                "--interval", "60"])
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: schedule 'nightly' exists; pass --replace to change it"
    replaced = runner.invoke(cli, ["schedule", "create", "nightly", "--job", str(job),
                                   "--interval", "3600", "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert [s.when for s in list_schedules() if s.name == "nightly"] == ["every 3600 s"]

    deleted = runner.invoke(cli, ["schedule", "delete", "nightly"])
    assert deleted.exit_code == 0, deleted.output
    assert not [s for s in list_schedules() if s.name == "nightly"]


def test_bad_job_file_is_one_line_naming_the_field(credit: Credit, tmp_path: Path) -> None:
    job = _job_file(tmp_path / "bad.yaml", credit, workerz=2)
    result = run_cli("schedule", "create", "bad", "--job", str(job), "--cron", "0 2 * * *",
                     home=tmp_path / "home")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {job}: unknown field 'workerz' (known fields: ")
    assert len(result.stderr.strip().splitlines()) == 1

    with pytest.raises(ConfigError) as info:
        load_job_file(_job_file(tmp_path / "zero.yaml", credit, chunk_rows=0))
    assert str(info.value) == (f"{tmp_path / 'zero.yaml'}: field 'chunk_rows': Input should "
                               "be greater than or equal to 1 (got 0)")
    # the job spec's own checks name the value once, without pydantic's prefix
    with pytest.raises(ConfigError) as info:
        load_job_file(_job_file(tmp_path / "tiny.yaml", credit, chunk_size="10B"))
    assert str(info.value) == (f"{tmp_path / 'tiny.yaml'}: field 'chunk_size': '10B' is "
                               "below the 1KiB minimum")


def test_a_drift_schedule_is_created_listed_and_deleted(tmp_path: Path,
                                                        prefect_api_url: str) -> None:
    created = run_cli("schedule", "drift", "credit-drift", "--deployment", "credit-risk",
                      "--window", "6h", "--cron", "0 * * * *", home=tmp_path / "home",
                      PREFECT_API_URL=prefect_api_url)
    assert created.returncode == 0, created.stderr
    (schedule,) = [s for s in list_schedules() if s.name == "credit-drift"]
    assert schedule.flow == "monitor-drift" and schedule.job["deployment"] == "credit-risk"
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("monitor-drift/credit-drift")
    assert deployment.entrypoint == "flows.monitoring.monitor_drift"
    assert deployment.parameters["window"] == "6h" and SCHEDULE_TAG in deployment.tags
    assert deployment.parameters["accuracy_window"] == "30d"  # accuracy, challengers
    listed = CliRunner().invoke(cli, ["schedule", "list"])  # here, on the harness's API
    assert listed.exit_code == 0, listed.output
    assert "credit-drift\tcron '0 * * * *' (UTC)\tnext " in listed.stdout
    assert "drift of credit-risk over 6h" in listed.stdout
    bad = CliRunner().invoke(cli, ["schedule", "drift", "x", "--deployment", "d", "--window",
                                   "soon", "--cron", "0 * * * *"])
    assert bad.exit_code == 1 and "--window 'soon' is not a time" in bad.stderr
    deleted = CliRunner().invoke(cli, ["schedule", "delete", "credit-drift"])
    assert deleted.exit_code == 0, deleted.output
    assert [s for s in list_schedules() if s.name == "credit-drift"] == []
