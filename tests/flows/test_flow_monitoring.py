"""The monitor-drift flow: artifacts, and alerts once per change of colour, to a real
local webhook server (and a failed delivery tried again by the next run)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from prefect.client.orchestration import get_client

from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.models import open_package
from batch.models.builder import training_table
from batch.monitoring.baseline import build_baseline, write_baseline
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
