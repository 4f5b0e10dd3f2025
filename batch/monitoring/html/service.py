"""The service health document's section (figures per source and consumer, the status)
and the deployment's history (a table of its events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batch.monitoring.html.markup import (
    DASH,
    badge,
    count,
    e,
    none,
    num,
    pct,
    section,
    table,
    window_text,
)

HISTORY_ROWS = 100  # the newest events shown; the report says how many there are
HEALTH_HEAD = ("Rows", "Rows/s", "Requests", "Jobs or flushes", "p50 ms", "p95 ms", "p99 ms",
               "User errors", "Server errors", "Failed rows")


def health_section(doc: Mapping[str, Any]) -> str:
    """The status, then the figures of each source and in all, and of each consumer."""
    status = doc.get("status") or {}
    body = [f"<p>Health status {badge(status.get('colour'))} {e(status.get('rule', ''))}"
            f"</p>\n<p>Window {e(window_text(doc.get('window') or {}))}; latency objective "
            f"(p95 of requests) {num(doc.get('slo_ms'))} ms.</p>\n"]
    sources = [*(doc.get("sources") or {}).items(), ("all", doc.get("overall") or {})]
    body.append(table(("Source", *HEALTH_HEAD, "Status"),
                      [_row(name, f) for name, f in sources], frozenset(range(1, 11))))
    consumers = doc.get("consumers") or {}
    if consumers:
        body.append("<h3>Requests per consumer</h3>\n")
        body.append(table(("Consumer", *HEALTH_HEAD, "Status"),
                          [_row(name, f) for name, f in consumers.items()],
                          frozenset(range(1, 11))))
    failed = doc.get("failed_jobs") or ()
    if failed:
        body.append("<h3>Failed jobs</h3>\n<ul>" + "".join(
            f"<li>{e(job)}</li>" for job in failed) + "</ul>\n<p>They published no records "
            "(batchpred job list; resume with --resume --job-id ID).</p>\n")
    return section("health", "Service health", body)


def _row(name: str, f: Mapping[str, Any]) -> list[str]:
    latency = f.get("latency_ms") or {}
    status = f.get("status")
    return [e(name), count(f.get("rows")), num(f.get("rows_per_second")),
            count(f.get("requests")), count(f.get("jobs_or_flushes")),
            *(num(latency.get(q)) for q in ("p50", "p95", "p99")),
            pct(f.get("user_error_rate")), pct(f.get("server_error_rate")),
            pct(f.get("failed_row_rate")),
            badge(status.get("colour")) + f" {e(status.get('rule', ''))}" if status else DASH]


def history_section(events: Sequence[Mapping[str, Any]]) -> str:
    """The deployment's events, newest first (at most :data:`HISTORY_ROWS`)."""
    if not events:
        return section("history", "Deployment history", [none("No events.")])
    shown = list(reversed(events))[:HISTORY_ROWS]
    intro = (f"<p>{len(events):,} events, newest first"
             + (f"; the newest {HISTORY_ROWS} shown" if len(events) > HISTORY_ROWS else "")
             + ".</p>\n")
    rows = [[e(str(ev.get("time") or "")[:19].replace("T", " ")), e(ev.get("event", "")),
             e(ev.get("actor", "")), _champion(ev), e(_detail(ev)), e(ev.get("reason") or "")]
            for ev in shown]
    return section("history", "Deployment history", [intro, table(
        ("Time (UTC)", "Event", "Actor", "Champion", "Detail", "Reason"), rows, frozenset())])


def _champion(ev: Mapping[str, Any]) -> str:
    before = str((ev.get("before") or {}).get("champion") or "")[:12]
    after = str((ev.get("after") or {}).get("champion") or "")[:12]
    if before == after:
        return e(after or DASH)
    return f"{e(before or DASH)} → {e(after or DASH)}"


def _detail(ev: Mapping[str, Any]) -> str:
    parts = []
    if ev.get("challenger"):
        parts.append(f"challenger {ev['challenger']}")
    if ev.get("kept_as"):
        parts.append(f"old champion kept as {ev['kept_as']}")
    for key, change in (ev.get("changes") or {}).items():
        parts.append(f"{key}: {(change or {}).get('old')} → {(change or {}).get('new')}")
    if ev.get("forced_features"):
        parts.append("forced features " + ", ".join(str(f) for f in ev["forced_features"]))
    return "; ".join(parts)
