"""Challengers in a job: scored on the same chunks in the same pass, logged beside the
champion, exactly the predictions of scoring them alone; only the champion's reach the
output; a resumed job scores the challengers it started with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET
from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.models import open_package
from batch.monitoring.health import health_document
from batch.monitoring.store import MonitoringStore


@pytest.fixture(scope="module")
def challenger(watched: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion's package with another scale in its formula: the same target."""
    path = tmp_path_factory.mktemp("challenger") / "pkg"
    shutil.copytree(watched, path)
    (hooks,) = path.rglob("custom.py")
    hooks.write_text(hooks.read_text().replace('"scale": 45.0', '"scale": 70.0'))
    return path


def _alone(package: Path, workload, out: Path) -> list[float]:  # type: ignore[no-untyped-def]
    run_job(JobSpec(model=str(package), input=str(workload.csv), output=str(out),
                    monitoring=False, job_id=f"alone-{out.stem}"))
    return pcsv.read_csv(out).column(f"{TARGET}_yes_PREDICTION").to_pylist()


def test_challengers_score_the_same_rows_and_only_the_champion_is_written(
        watched, challenger, workload, home, tmp_path, batchpred_here) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("duel", open_package(watched))
    registry.add_challenger("duel", open_package(challenger))
    out = tmp_path / "out.csv"
    run_job(JobSpec(model="duel", input=str(workload.csv), output=str(out), chunk_rows=7_000,
                    job_id="duel-job"))
    champion_alone = _alone(watched, workload, tmp_path / "champion.csv")
    challenger_alone = _alone(challenger, workload, tmp_path / "challenger.csv")
    assert champion_alone != challenger_alone
    assert pcsv.read_csv(out).column(f"{TARGET}_yes_PREDICTION").to_pylist() == champion_alone
    logged = MonitoringStore(str(home / "monitoring")).read("duel", "predictions").table
    for role, digest, expected in (("champion", open_package(watched).digest, champion_alone),
                                   ("challenger", open_package(challenger).digest,
                                    challenger_alone)):
        rows = logged.filter(pc.equal(logged.column("role"), role)).sort_by("row")
        assert set(rows.column("model_id").to_pylist()) == {digest}
        assert rows.column("row").to_pylist() == list(range(len(expected)))
        assert rows.column("prediction").to_pylist() == expected
    health = MonitoringStore(str(home / "monitoring")).read("duel", "health").table
    assert set(health.column("role").to_pylist()) == {"champion", "challenger"}
    since, until = health.column("ts_start")[0].as_py(), health.column("ts_end")[0].as_py()
    doc = health_document(health, deployment="duel", since=since.replace(year=2000),
                          until=until.replace(year=2100))
    assert doc["overall"]["rows"] == workload.table.num_rows  # a challenger is not traffic
    shown = batchpred_here("challengers", "duel")
    assert shown.returncode == 0, shown.stderr
    assert "c1" in shown.stdout and "c1: wait: fewer than 2 hours" in shown.stdout
    assert shown.stdout.splitlines()[0] == (  # no actuals yet: nothing to judge
        "deployment duel: challengers GREY (no challenger has an hour with 30+ matched "
        "actuals in the window)")


def test_a_resumed_job_scores_the_challengers_it_started_with(
        watched, challenger, workload, home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("duel", open_package(watched))
    registry.add_challenger("duel", open_package(challenger))
    spec = JobSpec(model="duel", input=str(workload.csv), output=str(tmp_path / "o.csv"),
                   chunk_rows=5_000, workers=0, job_id="half")
    run_job(spec, until_chunk=4)
    registry.remove_challenger("duel", "c1")  # meanwhile: the job keeps its challenger
    run_job(spec.model_copy(update={"resume": True}))
    logged = MonitoringStore(str(home / "monitoring")).read("duel", "predictions").table
    rows = logged.filter(pc.equal(logged.column("role"), "challenger"))
    assert sorted(rows.column("row").to_pylist()) == list(range(workload.table.num_rows))
