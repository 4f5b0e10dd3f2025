"""``batchpred drift``, ``report``, ``monitoring compact`` and ``deploy settings``, run in
this process (what they print and write; ``test_cli_score`` runs ``score`` as a process)."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import batchpred_cli
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from batchpred_cli import Batchpred

from batch.cli.sample_data import credit_table


@pytest.fixture(scope="module")
def watched_package(credit, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The credit package with a baseline from its training rows (made once)."""
    pkg = tmp_path_factory.mktemp("watched") / "pkg"
    shutil.copytree(credit.package, pkg)
    res = batchpred_cli.invoke("baseline", str(pkg), "--training-data",
                               str(credit.package.parent / "train.csv"),
                               home=tmp_path_factory.mktemp("baseline-home"))
    assert res.returncode == 0, res.stderr
    return pkg


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and write."""
    return Batchpred(home, in_process=True)


@pytest.fixture
def deployed(watched_package: Path, credit, batchpred, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Deployment ``credit`` of a package with a baseline, and one job scored with it."""
    pkg = tmp_path / "pkg"
    shutil.copytree(watched_package, pkg)
    assert batchpred("deploy", "create", "credit", "--model", str(pkg)).returncode == 0
    res = batchpred("score", "--model", "credit", "--input", str(credit.csv), "--output",
                    str(tmp_path / "out.csv"), "--job-id", "first", "--quiet")
    assert res.returncode == 0, res.stderr
    return pkg


def test_drift_prints_a_table_and_a_stable_json_document(deployed, batchpred) -> None:  # type: ignore[no-untyped-def]
    table = batchpred("drift", "credit")
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[0]
    assert first.startswith("deployment credit: drift ") and "2,500 rows from 1 job(s)" in \
        table.stdout
    assert "credit_score" in table.stdout and "prediction drift:" in table.stdout
    doc = json.loads(batchpred("drift", "credit", "--format", "json").stdout)
    assert doc["document_version"] == 1 and doc["rows"] == 2500 and doc["jobs"] == ["first"]
    assert {f["name"] for f in doc["features"]} >= {"credit_score", "income", "purpose"}
    again = json.loads(batchpred("drift", "credit", "--format", "json", "--job", "first",
                                 "--since", "2020-01-01").stdout)
    assert again["features"] == doc["features"]  # the same records: the same figures


def test_drift_of_shifted_rows_turns_red_and_the_report_shows_it(
        deployed, credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = credit_table(3000, seed=9).drop_columns(["is_default"])
    shifted = table.set_column(table.schema.get_field_index("credit_score"), "credit_score",
                               pc.subtract(table.column("credit_score"), 120))
    pcsv.write_csv(shifted, tmp_path / "shifted.csv")
    res = batchpred("score", "--model", "credit", "--input", str(tmp_path / "shifted.csv"),
                    "--output", str(tmp_path / "o2.csv"), "--job-id", "shifted", "--quiet")
    assert res.returncode == 0, res.stderr
    doc = json.loads(batchpred("drift", "credit", "--job", "shifted", "--format",
                               "json").stdout)
    score = next(f for f in doc["features"] if f["name"] == "credit_score")
    assert score["drifted"] and score["status"] == "red" and score["mean_difference_std"] < -1
    assert doc["status"]["colour"] == "red"  # the most important feature drifted
    report = tmp_path / "report.html"
    res = batchpred("report", "credit", "--output", str(report))
    assert res.returncode == 0, res.stderr
    # no actuals yet: accuracy is grey; no challengers: left out with a note
    assert res.stdout.strip() == (f"wrote {report} (drift status red, accuracy grey, health "
                                  "green; left out: challengers)")
    page = report.read_text(encoding="utf-8")
    ids = _section_ids(page)
    assert {"summary", "drift-importance", "features", "histograms", "predictions-over-time",
            "data-quality", "accuracy", "predicted-vs-actual", "health", "history",
            "notes"} <= ids
    assert "challengers" not in ids and "Stages left out" in page
    assert "batchpred deploy add-challenger credit --model PKG" in page
    assert "<script" not in page and "http" not in page
    assert report.stat().st_size < 2_000_000


def test_the_report_takes_the_parts_asked_for(
        deployed, credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "history.html"
    res = batchpred("report", "credit", "--output", str(report), "--with", "history")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"wrote {report} (drift status ")
    assert "accuracy" not in res.stdout and "left out" not in res.stdout
    ids = _section_ids(report.read_text(encoding="utf-8"))
    assert "history" in ids and not ids & {"accuracy", "health", "challengers"}
    assert batchpred("deploy", "settings", "credit", "--no-accuracy").returncode == 0
    res = batchpred("report", "credit", "--output", str(report), "--with",
                    "accuracy,challengers")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("left out: accuracy, challengers)")
    assert "accuracy is off" in report.read_text(encoding="utf-8")
    bad = batchpred("report", "credit", "--output", str(report), "--with", "drift,colour")
    assert bad.returncode == 2 and "'drift' is no part of the report" in bad.stderr
    rival = tmp_path / "rival"  # the champion's package under another digest
    shutil.copytree(deployed, rival)
    (rival / "NOTES.txt").write_text("the challenger of the report test\n")
    assert batchpred("deploy", "add-challenger", "credit", "--model", str(rival)
                     ).returncode == 0
    res = batchpred("score", "--model", "credit", "--input", str(credit.csv), "--output",
                    str(tmp_path / "again.csv"), "--job-id", "again", "--quiet")
    assert res.returncode == 0, res.stderr
    res = batchpred("report", "credit", "--output", str(report), "--with", "challengers")
    assert res.returncode == 0, res.stderr
    # no actuals: nothing to judge, and the line says so
    assert res.stdout.strip().endswith(", challengers grey)"), res.stdout


def _section_ids(page: str) -> set[str]:
    found: set[str] = set()

    class Sections(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "section":
                found.update(v for k, v in attrs if k == "id" and v)

    Sections().feed(page)
    return found


def test_records_of_another_baseline_are_left_out_and_named(
        deployed, credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    shutil.copytree(deployed, other)
    half = credit_table(1500, seed=11)
    pcsv.write_csv(half, tmp_path / "half.csv")
    assert batchpred("baseline", str(other), "--training-data",
                     str(tmp_path / "half.csv")).returncode == 0
    assert batchpred("deploy", "create", "credit", "--model", str(other),
                     "--replace").returncode == 0
    doc = json.loads(batchpred("drift", "credit", "--format", "json").stdout)
    assert doc["rows"] == 0 and doc["status"]["colour"] == "grey"
    (left_out,) = doc["excluded"]
    assert left_out["job_id"] == "first" and left_out["rows"] == 2500
    assert "rescore" in left_out["reason"]


def test_bad_requests_are_one_line(deployed, home: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from flows.cli import cli

    for args, expected in [
        (("drift", "credit", "--since", "yesterday"), "error: --since 'yesterday' is not a "
         "time"),
        (("drift", "credit", "--since", "1h", "--until", "2h"), "error: --since "),
        (("drift", "nobody"), "error: no baseline for 'nobody'"),
        (("deploy", "settings", "credit", "--drift-threshold", "psi_red=high"),
         "error: deployment settings: field 'drift.psi_red'"),
        (("deploy", "settings", "credit", "--drift-threshold", "colour=red"),
         "error: deployment settings: field 'drift.colour'"),
        (("deploy", "settings", "credit", "--monitoring-store-option", "password=x"),
         "error: monitoring store option 'password'"),
    ]:  # in this process, on the deployment's home: these stop before any work
        res = CliRunner().invoke(cli, list(args), env={"BATCHPRED_HOME": str(home)})
        assert res.exit_code == 1, (args, res.stderr)
        assert res.stderr.startswith(expected) and res.stderr.count("\n") == 1, res.stderr


def test_a_deployment_without_a_baseline_names_the_command_that_adds_one(
        credit, batchpred) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "bare", "--model", str(credit.package)).returncode == 0
    res = batchpred("drift", "bare")
    assert res.returncode == 1
    assert res.stderr.startswith("error: deployment 'bare' has no baseline: add one with "
                                 "`batchpred baseline PACKAGE --training-data FILE`")


def test_deploy_settings_change_the_thresholds_and_the_store(
        deployed, credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = json.loads(batchpred("deploy", "settings", "credit").stdout)
    assert shown["drift"]["psi_red"] == 0.25 and shown["monitoring_store"] is None
    settings = tmp_path / "settings.yaml"
    settings.write_text("drift:\n  min_rows: 100000\n")
    res = batchpred("deploy", "settings", "credit", "--from-file", str(settings),
                    "--star", "income", "--monitoring-store", str(tmp_path / "store"))
    assert res.returncode == 0, res.stderr
    changed = json.loads(res.stdout)
    assert changed["drift"]["min_rows"] == 100000 and changed["drift"]["starred"] == ["income"]
    res = batchpred("score", "--model", "credit", "--input", str(credit.csv), "--output",
                    str(tmp_path / "o3.csv"), "--job-id", "second", "--quiet")
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "store").rglob("job-second.parquet"))  # the deployment's store
    doc = json.loads(batchpred("drift", "credit", "--format", "json").stdout)
    assert doc["jobs"] == ["second"] and doc["status"]["colour"] == "grey"  # under 100,000


def test_compact_merges_the_days_of_every_deployment(deployed, batchpred, home: Path) -> None:  # type: ignore[no-untyped-def]
    res = batchpred("monitoring", "compact", "--all-days")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f"in {home / 'monitoring'}")


def test_a_failed_job_turns_health_red_and_status_shows_every_deployment(
        deployed, credit, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = credit.table.to_pandas()
    bad["credit_score"] = bad["credit_score"].astype(object)
    bad.loc[500:, "credit_score"] = "not a score"  # past the pre-flight: the job fails
    bad.to_csv(tmp_path / "bad.csv", index=False)
    failed = batchpred("score", "--model", "credit", "--input", str(tmp_path / "bad.csv"),
                       "--output", str(tmp_path / "bad-out.csv"), "--job-id", "broken",
                       "--preflight-rows", "100", "--chunk-rows", "500", "--quiet")
    assert failed.returncode != 0
    health = json.loads(batchpred("health", "credit", "--format", "json").stdout)
    assert health["failed_jobs"] == ["broken"]
    assert health["status"]["colour"] == "red" and health["status"]["rule"] == \
        "failed batch jobs"
    assert "failed jobs: broken" in batchpred("health", "credit").stdout
    assert batchpred("deploy", "create", "bare", "--model", str(credit.package)
                     ).returncode == 0
    listed = batchpred("status", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["deployment"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"credit", "bare"}
    assert rows["credit"]["health"]["colour"] == "red"
    assert rows["credit"]["drift"]["colour"] in {"green", "yellow", "red"}
    assert rows["credit"]["association_id"] == "loan_id"
    assert rows["bare"]["drift"] == {"colour": "grey", "rule": rows["bare"]["drift"]["rule"]}
    assert "no baseline" in rows["bare"]["drift"]["rule"]
    assert rows["credit"]["challengers"] == 0 and rows["credit"]["comparison"]["colour"] == \
        "grey"
    assert "add-challenger credit" in rows["credit"]["comparison"]["rule"]
    table = batchpred("status")
    assert table.stdout.splitlines()[0].split() == ["deployment", "model", "challengers",
                                                    "drift", "accuracy", "comparison",
                                                    "health"]
    assert "credit health: failed batch jobs" in table.stdout
