"""The monitor-drift flow: artifacts, and alerts once per change of a stage's colour
(drift, accuracy, challengers, health), to a real local webhook server (and a failed
delivery tried again by the next run)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from prefect.client.orchestration import get_client
from sklearn.metrics import roc_auc_score

from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.models import open_package
from batch.models.builder import training_table
from batch.monitoring.baseline import build_baseline, write_baseline
from batch.monitoring.records import (
    ACTUALS_SCHEMA,
    ChunkFacts,
    Producer,
    health_table,
    predictions_table,
)
from batch.monitoring.stage import NoBaselineError, open_store, settings_of
from batch.scoring.prediction_log import LOG_SCHEMA
from flows.monitoring import monitor_drift


class Hook:
    """A webhook receiver on loopback; answers ``fail`` requests with HTTP 500 first."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail:
                    hook.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/drift?token=s3cret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def watched(credit, home: Path, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """Deployment ``watched`` (a baseline from the training rows) that scored shifted rows."""
    pkg = tmp_path / "pkg"
    shutil.copytree(credit.sklearn, pkg)
    package = open_package(pkg)
    write_baseline(package, build_baseline(package, training_table(
        str(credit.sklearn.parent / "train.csv"))))
    DeploymentRegistry().create("watched", open_package(pkg))
    table = credit.table
    shifted = table.set_column(table.schema.get_field_index("credit_score"), "credit_score",
                               pc.subtract(table.column("credit_score"), 150))
    pcsv.write_csv(shifted, tmp_path / "shifted.csv")
    run_job(JobSpec(model="watched", input=str(tmp_path / "shifted.csv"),
                    output=str(tmp_path / "out.csv"), job_id="shifted", workers=0))
    return "watched"


def _settings(**changes: Any) -> None:
    registry = DeploymentRegistry()
    current = registry.get("watched").settings
    drift = changes.pop("drift", None)
    update = {**changes, **({"drift": current.drift.model_copy(update=drift)} if drift else {})}
    registry.update_settings("watched", current.model_copy(update=update))


def test_an_alert_fires_once_per_change_of_colour(watched, hook: Hook) -> None:  # type: ignore[no-untyped-def]
    _settings(alert_webhook=hook.url)
    first = monitor_drift("watched", window="1d")
    assert first["status"]["colour"] == "red" and first["alert"] is not None
    assert len(hook.received) == 1
    body = hook.received[0]
    assert body["kind"] == "batchpred.alert" and body["colour"] == "red"
    assert body["previous"] is None and "credit_score" in body["features"]
    monitor_drift("watched", window="1d")  # still red: no second alert
    assert len(hook.received) == 1
    _settings(drift={"min_rows": 1_000_000})  # too few rows now: grey, a change
    third = monitor_drift("watched", window="1d")
    assert third["status"]["colour"] == "grey" and len(hook.received) == 2
    assert hook.received[1]["previous"] == "red" and hook.received[1]["colour"] == "grey"


def test_an_undelivered_alert_is_sent_by_the_next_run(watched, hook: Hook,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRIFT_HOOK_URL", hook.url)  # the token stays out of the settings
    _settings(alert_webhook="env:DRIFT_HOOK_URL")
    hook.fail = 3  # every attempt of the first run fails
    first = monitor_drift("watched", window="1d")
    assert first["alert"] is not None and hook.received == []
    second = monitor_drift("watched", window="1d")
    assert second["alert"] is not None and len(hook.received) == 1
    assert monitor_drift("watched", window="1d")["alert"] is None
    stored = (DeploymentRegistry().home / "deployments" / "watched.json").read_text()
    assert "s3cret" not in stored


def test_the_summary_is_published_as_artifacts(watched) -> None:  # type: ignore[no-untyped-def]
    monitor_drift("watched", window="1d")
    with get_client(sync_client=True) as client:
        summary = client.read_latest_artifacts()
    keys = {a.key for a in summary}
    assert {"watched-drift", "watched-features"} <= keys
    markdown = next(a for a in summary if a.key == "watched-drift")
    assert "Drift of watched: **RED**" in str(markdown.data)


def _contrary_actuals(deployment: str) -> None:
    """Actuals that contradict every logged prediction (the likelier a default, the
    surer it was repaid): the AUC falls far under the holdout's."""
    store = open_store(settings_of(deployment))
    logged = store.read(deployment, "predictions").table
    ids = logged.column("association_id").to_pylist()
    p = logged.column("prediction").to_numpy()
    _publish_actuals(deployment, "contrary", ids,
                     np.where(p > np.median(p), "no", "yes").tolist())


def _publish_actuals(deployment: str, job: str, ids: list[str], labels: list[str]) -> None:
    """An upload of actuals (``labels``) for ``ids``, received now."""
    n, now = len(ids), datetime.now(UTC)
    open_store(settings_of(deployment)).publish(deployment, job, {"actuals": pa.table({
        "schema_version": [1] * n, "deployment_id": [deployment] * n, "model_id": [""] * n,
        "role": [""] * n, "source": ["actuals"] * n, "job_id": [job] * n,
        "chunk_index": [0] * n, "ts_start": [now] * n, "ts_end": [now] * n,
        "hour": [now] * n, "consumer": [None] * n, "remote_address": [None] * n,
        "association_id": ids, "seq": list(range(n)), "actual_value": [None] * n,
        "actual_label": labels, "timestamp": [None] * n, "was_acted_on": [None] * n},
        schema=ACTUALS_SCHEMA)})


def _failing_requests(deployment: str) -> None:
    """A flush of 100 requests of the HTTP shim, 20 of them server errors: red."""
    store = open_store(settings_of(deployment))
    champion = DeploymentRegistry().get(deployment).package_digest
    latency = (0, 0, 100, *([0] * 13))  # all between 2 and 5 ms
    store.publish(deployment, "flush-bad", {"health": health_table(
        Producer(deployment, champion, "flush-bad", source="realtime"),
        [ChunkFacts(0, 100, 20, 0.5, datetime.now(UTC), None, requests=100,
                    latency=latency, user_errors=0, server_errors=20)])})


def _challenger(deployment: str, tmp_path: Path) -> str:
    """Challenger c1 of ``deployment``: its champion's package under another digest."""
    registry = DeploymentRegistry()
    rival = tmp_path / "rival"
    shutil.copytree(registry.package(deployment).path, rival)
    (rival / "NOTES.txt").write_text("the challenger of the flow tests\n")
    return registry.add_challenger(deployment, open_package(rival)).package_digest


def _log(ids: list[str], p: np.ndarray) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([
        pa.array(ids), pa.array(np.arange(len(ids)), pa.int64()), pa.array(p),
        pa.array(np.where(p > 0.5, "yes", "no").tolist()),
        pa.array(np.column_stack([1 - p, p]).tolist(), pa.list_(pa.float64()))],
        schema=LOG_SCHEMA)


def _hours_of_rivals(deployment: str, digest: str, *, hours: int = 3, rows: int = 200
                     ) -> float:
    """Jobs three days ago (in the comparison's window, out of drift's and health's)
    where the champion and challenger ``digest`` score the same rows at the same speed,
    and the actuals: the challenger ranks them better. Returns scikit-learn's mean
    difference of the hours' AUCs (challenger - champion)."""
    store = open_store(settings_of(deployment))
    champion = DeploymentRegistry().get(deployment).package_digest
    rng, start, diffs = np.random.default_rng(5), datetime.now(UTC) - timedelta(days=3), []
    for h in range(hours):
        y, noise = rng.random(rows) < 0.4, rng.normal(size=rows)
        a = 1 / (1 + np.exp(-(0.5 * (2 * y - 1) + noise)))
        b = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + noise)))
        ids, job = [f"rivals-{h}-{i}" for i in range(rows)], f"rivals-{h}"
        fact = ChunkFacts(0, rows, 0, 1.0, start + timedelta(hours=h), None, score_seconds=1.0)
        mine, theirs = Producer(deployment, champion, job), Producer(deployment, digest, job,
                                                                     role="challenger")
        store.publish(deployment, job, {
            "predictions": pa.concat_tables([predictions_table(mine, [fact], [_log(ids, a)]),
                                             predictions_table(theirs, [fact], [_log(ids, b)])]),
            "health": pa.concat_tables([health_table(mine, [fact]),
                                        health_table(theirs, [fact])])})
        _publish_actuals(deployment, f"rivals-up-{h}", ids, np.where(y, "yes", "no").tolist())
        diffs.append(roc_auc_score(y, b) - roc_auc_score(y, a))
    return float(np.mean(diffs))


def _slow_challenger(deployment: str, digest: str) -> None:
    """Chunks of the challenger at nine times the champion's scoring time."""
    at = datetime.now(UTC) - timedelta(days=3)
    open_store(settings_of(deployment)).publish(deployment, "rivals-slow", {
        "health": health_table(Producer(deployment, digest, "rivals-slow", role="challenger"),
                               [ChunkFacts(1, 200, 0, 9.0, at, None, score_seconds=9.0)] * 3)})


def test_accuracy_challengers_and_health_alert_once_per_change_of_colour_each(
        watched, hook: Hook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _settings(alert_webhook=hook.url)
    digest = _challenger("watched", tmp_path)
    first = monitor_drift("watched", window="1d")
    assert [a["stage"] for a in hook.received] == ["drift"]  # green and grey raise none
    assert first["stages"]["accuracy"]["status"]["colour"] == "grey"  # no actuals yet
    assert first["stages"]["health"]["status"]["colour"] == "green"
    assert first["stages"]["challengers"]["status"]["colour"] == "grey"  # none scored yet
    _contrary_actuals("watched")
    _failing_requests("watched")
    better = _hours_of_rivals("watched", digest)
    hook.fail = 3  # the accuracy alert, the first of this run, is not delivered
    second = monitor_drift("watched", window="1d")
    assert second["alert"] is None  # drift: still red
    assert second["stages"]["accuracy"]["status"]["colour"] == "red"
    assert second["stages"]["accuracy"]["alert"]["colour"] == "red"
    assert second["stages"]["health"]["status"]["colour"] == "red"
    assert second["stages"]["challengers"]["status"]["colour"] == "yellow"
    assert second["stages"]["challengers"]["challengers"][0]["recommendation"][
        "action"] == "promote"
    assert [a["stage"] for a in hook.received] == ["drift", "challengers", "health"]
    comparison, health = hook.received[1:]
    assert comparison["colour"] == "yellow" and comparison["previous"] is None
    assert "'c1' is better on AUC" in comparison["rule"] and comparison["threshold"] == 0
    assert comparison["value"] == pytest.approx(better, abs=0.01)
    # a first green raised nothing and was not kept: the first alert has no previous
    assert health["previous"] is None and health["rule"] == "server errors"
    assert health["value"] == pytest.approx(0.2) and health["threshold"] == 0.05
    third = monitor_drift("watched", window="1d")  # the accuracy alert, again; only it
    assert [a["stage"] for a in hook.received] == ["drift", "challengers", "health",
                                                   "accuracy"]
    accuracy = hook.received[3]
    assert accuracy["kind"] == "batchpred.alert" and accuracy["colour"] == "red"
    assert accuracy["previous"] is None and "AUC" in accuracy["rule"]
    assert third["stages"]["health"]["alert"] is None
    assert third["stages"]["challengers"]["alert"] is None  # still yellow
    _slow_challenger("watched", digest)  # better, but too slow now: the champion holds
    fourth = monitor_drift("watched", window="1d")  # only the comparison changed
    assert len(hook.received) == 5
    assert hook.received[4]["stage"] == "challengers"
    assert (hook.received[4]["previous"], hook.received[4]["colour"]) == ("yellow", "green")
    assert [stage for stage, found in fourth["stages"].items() if found["alert"]] == [
        "challengers"]
    store = open_store(settings_of("watched"))
    assert {stage: (store.state("watched", stage) or {}).get("colour")
            for stage in ("drift", "accuracy", "challengers", "health")} == {
        "drift": "red", "accuracy": "red", "challengers": "green", "health": "red"}


def test_every_stage_is_published_as_artifacts(watched) -> None:  # type: ignore[no-untyped-def]
    _contrary_actuals("watched")
    monitor_drift("watched", window="1d")
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_latest_artifacts()}
    assert {"watched-accuracy", "watched-accuracy-models", "watched-health",
            "watched-health-sources"} <= keys


def test_a_stage_that_fails_does_not_stop_the_others(credit, home: Path, hook: Hook) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("bare", open_package(credit.sklearn))  # no baseline: drift cannot run
    current = registry.get("bare").settings
    registry.update_settings("bare", current.model_copy(update={"alert_webhook": hook.url}))
    _failing_requests("bare")
    with pytest.raises(NoBaselineError, match="has no baseline"):
        monitor_drift("bare", window="1d")
    assert [a["stage"] for a in hook.received] == ["health"]


def test_the_command_prints_a_line_per_stage(watched, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from flows.cli import cli

    res = CliRunner().invoke(cli, ["monitor-drift", "watched", "--accuracy-window", "7d"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("drift of watched: red (") and lines[0].endswith(
        "; alert raised")
    assert lines[1].startswith("accuracy of watched: grey (")
    assert lines[2].startswith("health of watched: green (")
    assert lines[3].startswith("challengers left out: no challengers")
    digest = _challenger("watched", tmp_path)
    res = CliRunner().invoke(cli, ["monitor-drift", "watched", "--accuracy-window", "7d"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[2] == (  # none scored yet: grey, and no alert
        "challengers of watched: grey (no predictions of the current challengers in the "
        "window)")
    _hours_of_rivals("watched", digest)
    res = CliRunner().invoke(cli, ["monitor-drift", "watched", "--accuracy-window", "7d"])
    assert res.exit_code == 0, res.output
    line = res.stdout.splitlines()[2]
    assert line.startswith("challengers of watched: yellow (challenger 'c1' is better on AUC")
    assert line.endswith("; c1 promote; alert raised"), line
