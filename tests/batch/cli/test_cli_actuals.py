"""``batchpred actuals upload`` and ``actuals show``, against the real monitoring store.

Uploads run in this process through click's runner (the command line as users
type it), and once as the installed script killed with ``kill -9``; what they
stored is read back with :class:`MonitoringStore` and compared with the input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from batch.deployments import DeploymentRegistry
from batch.monitoring.actuals import ActualColumns
from batch.monitoring.records import ACTUALS_SCHEMA
from batch.monitoring.store import MonitoringStore
from batch.monitoring.upload import UploadRequest, run_upload
from flows.cli import cli


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The home of this test's commands, in this process's environment too."""
    monkeypatch.setenv("BATCHPRED_HOME", str(home))
    return home


def _deploy(home: Path, name: str, trained) -> None:  # type: ignore[no-untyped-def]
    DeploymentRegistry(home).create(name, trained.package)


def _actuals(*args: str) -> Result:
    return CliRunner().invoke(cli, ["actuals", *args])


def _stored(home: Path, deployment: str) -> pa.Table:
    found = MonitoringStore(str(home / "monitoring")).read(deployment, "actuals")
    assert not found.warnings, found.warnings
    return found.table.sort_by("seq")


def _state(home: Path, deployment: str, upload_id: str) -> Path:
    return home / "monitoring" / f"deployment={deployment}" / "state" / \
        f"actuals-{upload_id}.json"


def _binary_input(trained, path: Path) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frame = trained.data[["id", "default"]].copy()
    frame["id"] = [f"L{i:05d}" for i in frame["id"]]  # leading zeros must survive
    frame["closed"] = pd.date_range("2026-11-01", periods=len(frame), freq="min", tz="UTC")
    frame["acted"] = np.where(np.arange(len(frame)) % 3 == 0, "yes", "no")
    frame.assign(closed=frame["closed"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        path, index=False)
    return frame


def test_binary_actuals_are_stored_as_their_classes_with_times_and_flags(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    frame = _binary_input(logistic_package, tmp_path / "actuals.csv")
    result = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                      "--association-id-column", "id", "--actual-column", "default",
                      "--timestamp-column", "closed", "--was-acted-on-column", "acted",
                      "--chunk-rows", "1000", "--upload-id", "u1")
    assert result.exit_code == 0, result.output + result.stderr
    assert "stored 3,000 of 3,000 rows in 3 chunk(s)" in result.stdout
    table = _stored(env, "credit")
    assert table.schema == ACTUALS_SCHEMA
    assert table.column("association_id").to_pylist() == frame["id"].tolist()
    assert table.column("actual_label").to_pylist() == frame["default"].tolist()
    assert table.column("actual_value").null_count == 3000
    assert table.column("seq").to_pylist() == list(range(3000))
    assert table.column("timestamp").to_pylist() == [t.to_pydatetime() for t in frame["closed"]]
    assert table.column("was_acted_on").to_pylist() == (frame["acted"] == "yes").tolist()
    assert sorted(set(table.column("job_id").to_pylist())) == ["u1-c000000", "u1-c000001",
                                                               "u1-c000002"]
    assert table.column("chunk_index").to_pylist() == [i // 1000 for i in range(3000)]
    assert set(table.column("source").to_pylist()) == {"actuals"}
    assert set(table.column("model_id").to_pylist()) == set(table.column("role").to_pylist()) \
        == {""}
    assert len(set(table.column("ts_start").to_pylist())) == 1  # the upload's received time


def test_truth_values_of_a_binary_target_become_its_classes(
        env: Path, logistic_package, hgb_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "yesno", logistic_package)  # classes no / yes, positive yes
    _deploy(env, "zeroone", hgb_package)  # classes 0 / 1
    flags = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()),
                      "y": pa.array([True, False, None, True])})
    pq.write_table(flags, tmp_path / "flags.parquet")
    pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "y": ["true", "FALSE", "1.0", "0", " 1 "]}
                 ).to_csv(tmp_path / "spelt.csv", index=False)
    cases = [("yesno", "flags.parquet", ["yes", "no", "yes"]),
             ("zeroone", "flags.parquet", ["1", "0", "1"]),
             ("zeroone", "spelt.csv", ["1", "0", "1", "0", "1"])]
    for i, (deployment, name, labels) in enumerate(cases):
        result = _actuals("upload", deployment, "--input", str(tmp_path / name),
                          "--association-id-column", "id", "--actual-column", "y",
                          "--upload-id", f"t{i}")
        assert result.exit_code == 0, result.output + result.stderr
        table = _stored(env, deployment)
        mine = table.filter(pc.equal(table.column("job_id"), f"t{i}-c000000"))
        assert mine.column("actual_label").to_pylist() == labels, name
    assert _stored(env, "yesno").column("association_id").to_pylist() == ["1", "2", "4"]


def test_regression_actuals_are_stored_as_numbers(
        env: Path, regressor_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "amounts", regressor_package)
    frame = regressor_package.data[["id", "amount"]]
    frame.to_parquet(tmp_path / "amounts.parquet", index=False)
    result = _actuals("upload", "amounts", "--input", str(tmp_path / "amounts.parquet"),
                      "--association-id-column", "id", "--actual-column", "amount",
                      "--format", "json")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads(result.stdout)
    assert doc["rows"] == doc["stored"] == 3000 and doc["bad_rows"]["total"] == 0
    assert doc["status"] == "finished" and doc["duplicates"]["rows"] == 0
    table = _stored(env, "amounts")
    assert table.column("actual_value").to_pylist() == frame["amount"].tolist()
    assert table.column("association_id").to_pylist() == [str(i) for i in frame["id"]]
    assert table.column("actual_label").null_count == 3000


def test_each_kind_of_bad_actual_is_counted_with_examples(
        env: Path, logistic_package, regressor_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    rows = [("ok1", "yes", "2026-11-01", "yes"), ("", "no", "", ""),
            ("x" * 129, "no", "", ""), ("ok2", "", "", ""),
            *[(f"m{i}", "maybe", "", "") for i in range(7)],
            ("ok3", "no", "yesterday", ""), ("ok4", "no", "", "perhaps"),
            ("ok1", "no", "", ""), ("x" * 128, "Yes", "", "")]
    pd.DataFrame(rows, columns=["id", "y", "ts", "acted"]).to_csv(tmp_path / "bad.csv",
                                                                  index=False)
    result = _actuals("upload", "credit", "--input", str(tmp_path / "bad.csv"),
                      "--association-id-column", "id", "--actual-column", "y",
                      "--timestamp-column", "ts", "--was-acted-on-column", "acted",
                      "--chunk-rows", "4", "--format", "json")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads(result.stdout)
    reasons = doc["bad_rows"]["reasons"]
    assert {code: r["count"] for code, r in reasons.items()} == {
        "missing_id": 1, "long_id": 1, "missing_actual": 1, "not_a_class": 8,
        "bad_timestamp": 1, "bad_was_acted_on": 1}
    assert reasons["missing_id"]["examples"] == [{"row": 2, "value": None}]  # CSV: null
    assert reasons["missing_actual"]["examples"] == [{"row": 4, "value": None}]
    assert reasons["not_a_class"]["examples"] == [
        {"row": r, "value": "maybe"} for r in range(5, 10)]  # the first five of them
    assert reasons["bad_timestamp"]["examples"] == [{"row": 12, "value": "yesterday"}]
    assert reasons["bad_was_acted_on"]["examples"] == [{"row": 13, "value": "perhaps"}]
    assert reasons["long_id"]["examples"][0]["row"] == 3
    assert doc["duplicates"] == {"rows": 1, "ids": 1, "examples": [
        {"row": 14, "id": "ok1", "first_row": 1}]}
    assert doc["rows"] == 15 and doc["stored"] == 2  # "Yes" is no class: compared as text
    assert _stored(env, "credit").column("association_id").to_pylist() == ["ok1", "ok1"]

    _deploy(env, "amounts", regressor_package)
    pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "y": ["1.5", "abc", "inf", "nan", "1e3"]}
                 ).to_csv(tmp_path / "numbers.csv", index=False)
    table = _actuals("upload", "amounts", "--input", str(tmp_path / "numbers.csv"),
                     "--association-id-column", "id", "--actual-column", "y")
    assert table.exit_code == 0, table.output + table.stderr
    lines = table.stdout.splitlines()
    assert "stored 2 of 5 rows" in lines[0] and lines[1] == "bad rows, not stored: 3"
    assert lines[2:] == ["  no actual (empty, null or NaN): 1 (row 4: (missing))",
                         "  not a number: 1 (row 2: 'abc')",
                         "  not a finite number: 1 (row 3: 'inf')"]
    assert _stored(env, "amounts").column("actual_value").to_pylist() == [1.5, 1000.0]


def test_a_missing_column_fails_before_anything_is_written(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    _binary_input(logistic_package, tmp_path / "actuals.csv")
    result = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                      "--association-id-column", "loan_id", "--actual-column", "default")
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "no column 'loan_id'" in error, error
    assert "its columns: id, default, closed, acted" in error
    assert not (env / "monitoring").exists()


def test_a_uri_with_credentials_is_refused_in_one_line_that_masks_them(
        env: Path, logistic_package) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    result = _actuals("upload", "credit", "--input", "s3://AKIAXYZ:hunter2@bucket/a.csv",
                      "--association-id-column", "id", "--actual-column", "default")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: s3://***@bucket/") and "credentials" in lines[-1]
    assert "hunter2" not in result.stderr + result.stdout
    assert not (env / "monitoring").exists()


def test_an_upload_whose_every_row_is_bad_is_an_error_after_its_report(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    pd.DataFrame({"id": ["a", "b"], "y": ["maybe", "2"]}).to_csv(tmp_path / "x.csv",
                                                               index=False)
    result = _actuals("upload", "credit", "--input", str(tmp_path / "x.csv"),
                      "--association-id-column", "id", "--actual-column", "y")
    assert result.exit_code == 1
    assert "  not a class of the target: 2 (row 1: 'maybe', row 2: '2')" in result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: upload ") and "every one of its 2 rows is bad" in error
    assert error.endswith("nothing was stored"), error
    assert list((env / "monitoring").rglob("*.parquet")) == []


def _upload(path: Path, upload_id: str) -> UploadRequest:
    """The upload the command line makes of ``--input PATH --association-id-column id
    --actual-column default --chunk-rows 500 --upload-id ID``."""
    return UploadRequest("credit", str(path), ActualColumns("id", "default"), upload_id,
                         chunk_rows=500)


def test_a_resumed_upload_stores_each_row_once(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    frame = _binary_input(logistic_package, tmp_path / "actuals.csv")
    run_upload(_upload(tmp_path / "actuals.csv", "r1"), until_chunk=4)
    # as if killed after storing chunk 3 and before recording it
    state_file = _state(env, "credit", "r1")
    state = json.loads(state_file.read_text())
    assert state["status"] == "running" and state["chunks_stored"] == 4
    state_file.write_text(json.dumps({**state, "chunks_stored": 3, "rows_stored": 1500}))
    assert _stored(env, "credit").num_rows == 2000

    again = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                     "--association-id-column", "id", "--actual-column", "default",
                     "--upload-id", "r1")
    assert again.exit_code == 1 and "pass --resume to continue it" in again.stderr
    result = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                      "--association-id-column", "id", "--actual-column", "default",
                      "--upload-id", "r1", "--resume", "--format", "json")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads(result.stdout)
    assert doc["resumed_chunks"] == 3 and doc["chunks"] == 6 and doc["stored"] == 3000
    table = _stored(env, "credit")
    assert table.column("seq").to_pylist() == list(range(3000))
    assert table.column("association_id").to_pylist() == frame["id"].tolist()
    assert len(set(table.column("ts_start").to_pylist())) == 1


def test_a_resume_on_changed_input_is_refused(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    frame = _binary_input(logistic_package, tmp_path / "actuals.csv")
    run_upload(_upload(tmp_path / "actuals.csv", "c1"), until_chunk=2)
    frame.loc[10, "default"] = "unknown"  # a row chunk 0 stored is bad now
    frame.to_csv(tmp_path / "actuals.csv", index=False)
    result = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                      "--association-id-column", "id", "--actual-column", "default",
                      "--upload-id", "c1", "--resume")
    assert result.exit_code == 1
    assert "the input changed since the upload started" in result.stderr
    assert _stored(env, "credit").num_rows == 1000
    other = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                     "--association-id-column", "id", "--actual-column", "default",
                     "--upload-id", "c1", "--resume", "--chunk-rows", "100")
    assert other.exit_code == 1 and "started with another chunk rows" in other.stderr


def test_a_finished_upload_run_again_stores_nothing_twice(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    _binary_input(logistic_package, tmp_path / "actuals.csv")
    args = ["upload", "credit", "--input", str(tmp_path / "actuals.csv"),
            "--association-id-column", "id", "--actual-column", "default",
            "--upload-id", "f1"]
    assert _actuals(*args).exit_code == 0
    files = sorted((env / "monitoring").rglob("*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in files]
    again = _actuals(*args, "--resume")
    assert again.exit_code == 0, again.stderr
    assert "upload f1 already finished; nothing to do" in again.stdout
    refused = _actuals(*args)
    assert refused.exit_code == 1 and "exists (finished)" in refused.stderr
    other = _actuals("upload", "credit", "--input", str(tmp_path / "actuals.csv"),
                     "--association-id-column", "id", "--actual-column", "closed",
                     "--upload-id", "f1", "--resume")
    assert other.exit_code == 1 and "started with another columns" in other.stderr
    assert sorted((env / "monitoring").rglob("*.parquet")) == files
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert _stored(env, "credit").num_rows == 3000

    shown = _actuals("show", "credit", "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["stored"] == 3000 and [u["upload_id"] for u in doc["uploads"]] == ["f1"]
    assert doc["uploads"][0]["status"] == "finished" and doc["uploads"][0]["rows"] == 3000
    assert doc["last_received"] == doc["uploads"][0]["received_at"]


def _chunks_stored(state_file: Path) -> int:
    try:
        return int(json.loads(state_file.read_text())["chunks_stored"])
    except (FileNotFoundError, ValueError):  # not written yet
        return 0


def test_kill_minus_nine_then_resume_stores_each_row_once(
        env: Path, logistic_package, batchpred, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(env, "credit", logistic_package)
    big = pd.concat([logistic_package.data[["id", "default"]]] * 20, ignore_index=True)
    big["id"] = np.arange(len(big))
    big.to_csv(tmp_path / "big.csv", index=False)
    args = ["actuals", "upload", "credit", "--input", str(tmp_path / "big.csv"),
            "--association-id-column", "id", "--actual-column", "default",
            "--chunk-rows", "500", "--upload-id", "k1"]
    proc = batchpred.start(*args, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    state_file = _state(env, "credit", "k1")
    deadline = time.monotonic() + 60
    while proc.poll() is None and _chunks_stored(state_file) < 10:
        assert time.monotonic() < deadline, "the upload never got going"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads(state_file.read_text())
    assert state["status"] == "running" and 0 < state["chunks_stored"] < 120, state
    result = batchpred(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert "stored 60,000 of 60,000 rows in 120 chunk(s)" in result.stdout
    table = _stored(env, "credit")
    assert table.column("seq").to_pylist() == list(range(60_000))
    assert pc.count_distinct(table.column("association_id")).as_py() == 60_000
    assert len(set(table.column("ts_start").to_pylist())) == 1  # one file name per chunk
    assert not (env / "scratch" / "actuals-k1").exists()  # the killed attempt's ids too


def test_prune_removes_actuals_past_the_retention_and_keeps_the_rest(
        env: Path, logistic_package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    _deploy(env, "credit", logistic_package)
    store = MonitoringStore(str(env / "monitoring"))
    now = datetime.now(UTC)
    for name, received in (("old", now - timedelta(days=500)), ("recent", now)):
        n = 3
        who = {"schema_version": [1] * n, "deployment_id": ["credit"] * n,
               "model_id": [""] * n, "role": [""] * n, "source": ["actuals"] * n,
               "job_id": [name] * n, "chunk_index": [0] * n, "ts_start": [received] * n,
               "ts_end": [received] * n, "hour": [received] * n, "consumer": [None] * n,
               "remote_address": [None] * n}
        store.publish("credit", name, {"actuals": pa.table({
            **who, "association_id": [f"{name}{i}" for i in range(n)], "seq": list(range(n)),
            "actual_value": [None] * n, "actual_label": ["yes"] * n, "timestamp": [None] * n,
            "was_acted_on": [None] * n}, schema=ACTUALS_SCHEMA)})
    kept = _actuals("prune", "credit", "--older-than", "600")
    assert kept.exit_code == 0 and kept.output.startswith("removed 0 day(s)")
    result = _actuals("prune", "credit")  # the setting: 400 days
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed 1 day(s) of actuals received before")
    assert sorted(set(_stored(env, "credit").column("job_id").to_pylist())) == ["recent"]
