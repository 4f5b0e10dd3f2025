"""Service health from health records: percentiles from the histogram, rates, statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch.monitoring.health import health_document
from batch.monitoring.records import ChunkFacts, Producer, health_table, latency_counts

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _requests(latencies: list[float], *, server_errors: int = 0, user_errors: int = 0):  # type: ignore[no-untyped-def]
    fact = ChunkFacts(0, 10 * len(latencies), 1, sum(latencies), NOW, None,
                      requests=len(latencies) + server_errors + user_errors,
                      latency=tuple(latency_counts(
                          latencies + [0.003] * (server_errors + user_errors)).tolist()),
                      user_errors=user_errors, server_errors=server_errors)
    return health_table(Producer("d", "m", "rt-1", source="realtime"), [fact])


def _batch(chunks: int, seconds: float):  # type: ignore[no-untyped-def]
    facts = [ChunkFacts(i, 1000, 0, seconds, NOW, None) for i in range(chunks)]
    return health_table(Producer("d", "m", "job-1"), facts)


def _doc(table, slo_ms: float = 1000.0):  # type: ignore[no-untyped-def]
    return health_document(table, deployment="d", since=NOW - timedelta(hours=1), until=NOW,
                           slo_ms=slo_ms)


def test_percentiles_come_from_the_histogram_and_rates_from_the_counts() -> None:
    doc = _doc(_requests([0.0015] * 90 + [0.03] * 9 + [0.7]))
    realtime = doc["sources"]["realtime"]
    assert realtime["latency_ms"] == {"p50": 2.0, "p95": 50.0, "p99": 50.0}
    assert realtime["requests"] == 100 and realtime["rows"] == 1000
    assert realtime["failed_row_rate"] == pytest.approx(1 / 1000)
    assert doc["status"]["colour"] == "green"


@pytest.mark.parametrize(("table", "slo", "colour", "rule"), [
    (lambda: _requests([1.5] * 100), 1000.0, "yellow", "p95 latency over the SLO"),
    (lambda: _requests([3.0] * 100), 1000.0, "red", "p95 latency over twice the SLO"),
    (lambda: _requests([0.01] * 97, server_errors=3), 1000.0, "yellow", "server errors"),
    (lambda: _requests([0.01] * 90, server_errors=10), 1000.0, "red", "server errors"),
    (lambda: _batch(5, 30.0), 1000.0, "green", "server errors under 1%"),
])
def test_the_status_follows_the_contract(table, slo, colour, rule) -> None:  # type: ignore[no-untyped-def]
    status = _doc(table(), slo)["status"]
    assert (status["colour"], status["rule"]) == (colour, rule)


def test_no_traffic_is_grey() -> None:
    doc = _doc(_batch(0, 1.0))
    assert doc["status"]["colour"] == "grey" and doc["overall"]["rows"] == 0
