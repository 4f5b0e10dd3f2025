"""Several server processes on one port, and the 503 of a saturated process."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow.csv as pcsv
from server_harness import Credit, start_server, stop

from batch.monitoring.store import MonitoringStore


def _csv(credit: Credit, rows: int) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(credit.table.slice(0, rows), sink)
    return sink.getvalue()


def test_two_workers_answer_alike_and_both_flush_on_sigterm(credit: Credit, tmp_path: Path
                                                            ) -> None:
    home = tmp_path / "home"
    server = start_server(home, "--model", str(credit.package), "--workers", "2",
                          "--flush-seconds", "600", ready=lambda r: r.status_code == 200)
    body = _csv(credit, 5)
    try:
        def post(_: int) -> httpx.Response:
            with server.client() as client:  # a connection each: both workers get some
                return client.post("/predictions", content=body,
                                   headers={"Content-Type": "text/csv"})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
    finally:
        stop(server)
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1  # every worker scores the same
    health = MonitoringStore(str(home / "monitoring")).read("credit-risk", "health").table
    assert sum(health.column("requests").to_pylist()) == 40  # every worker flushed
    assert "2 workers" in server.log.read_text()


def test_a_saturated_process_answers_503_with_retry_after(credit: Credit, tmp_path: Path
                                                          ) -> None:
    server = start_server(tmp_path / "home", "--model", str(credit.package),
                          "--max-requests", "1", "--no-monitoring",
                          ready=lambda r: r.status_code == 200)
    body = _csv(credit, 300)
    try:
        def post(_: int) -> httpx.Response:
            with server.client() as client:
                return client.post("/predictions", content=body,
                                   headers={"Content-Type": "text/csv"})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(48)))
    finally:
        stop(server)
    busy = [a for a in answers if a.status_code == 503]
    assert busy, "16 clients at once never found the one place taken"
    assert {a.status_code for a in answers} == {200, 503}
    assert busy[0].headers["retry-after"] == "1"
    assert busy[0].json()["message"].startswith("the server is busy (1 requests in progress)")
