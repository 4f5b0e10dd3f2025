"""Service health from the ``health`` records: traffic, latency, errors, a status.

Per source (``batch`` jobs, ``realtime`` requests) and in all: rows, rows/s over
the window, requests, p50 / p95 / p99 latency from the merged histogram (the
upper edge of the bucket the percentile falls in: a bound, not an estimate),
user-error, server-error and failed-row rates. Status (the monitoring
contract): yellow at >= 1% server errors or p95 over the SLO (default 1000 ms),
red at >= 5% server errors or p95 over twice the SLO; grey with no traffic. The
SLO holds for requests (``realtime``); a batch chunk's time is no request's
latency. The deployment's status is its worst source's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.monitoring.records import LATENCY_EDGES

SLO_MS = 1000.0


def health_document(table: pa.Table, *, deployment: str, since: datetime, until: datetime,
                    slo_ms: float = SLO_MS, failed_jobs: Sequence[str] = ()
                    ) -> dict[str, Any]:
    """The health of ``deployment``'s records in [since, until) (``table``: health rows;
    a challenger's rows, its scoring of the champion's rows, are not traffic)."""
    if table.num_rows:
        table = table.filter(pc.equal(table.column("role"), "champion"))
    seconds = max((until - since).total_seconds(), 1e-9)
    sources = sorted(set(table.column("source").to_pylist())) if table.num_rows else []
    by_source = {s: _figures(table.filter(pc.equal(table.column("source"), s)), seconds,
                             slo_ms if s == "realtime" else None) for s in sources}
    overall = _figures(table, seconds, None)
    overall.pop("status")
    worst = max((f["status"] for f in by_source.values()), key=lambda st: _ORDER[st["colour"]],
                default={"colour": "grey", "rule": "no traffic in the window", "value": 0,
                         "threshold": None})
    if failed_jobs:  # the contract: a failed batch job is red
        worst = {"colour": "red", "rule": "failed batch jobs", "value": len(failed_jobs),
                 "threshold": 1}
    return {"document_version": 1, "kind": "health", "deployment": deployment,
            "window": {"since": _iso(since), "until": _iso(until)}, "slo_ms": slo_ms,
            "status": worst, "overall": overall, "sources": by_source,
            "failed_jobs": list(failed_jobs),
            "consumers": _consumers(table, seconds, slo_ms)}


def _consumers(table: pa.Table, seconds: float, slo_ms: float) -> dict[str, Any]:
    """The requests' figures per API consumer (segments of real-time traffic; requests
    without a token are ``anonymous``)."""
    if not table.num_rows:
        return {}
    requests = table.filter(pc.equal(table.column("source"), "realtime"))
    if not requests.num_rows:
        return {}
    names = pc.fill_null(requests.column("consumer"), "anonymous")
    return {name: _figures(requests.filter(pc.equal(names, name)), seconds, slo_ms)
            for name in sorted(set(names.to_pylist()))}


_ORDER = {"grey": 0, "green": 1, "yellow": 2, "red": 3}


def _figures(rows: pa.Table, seconds: float, slo_ms: float | None) -> dict[str, Any]:
    """The figures of some health rows; ``slo_ms``: hold their latency to it (requests;
    a batch chunk's time is no request's latency)."""
    total = _sum(rows, "rows_in")
    requests = _sum(rows, "requests")
    jobs = len(set(rows.column("job_id").to_pylist())) if rows.num_rows else 0
    latency = _histogram(rows)
    observations = int(latency.sum())
    # a batch chunk is one observation; a request is one: rates are per observation
    server = _sum(rows, "server_errors")
    failed = _sum(rows, "rows_failed")
    figures: dict[str, Any] = {
        "rows": total, "rows_per_second": total / seconds, "requests": requests,
        "jobs_or_flushes": jobs, "observations": observations,
        "latency_ms": {f"p{q}": _percentile(latency, q / 100) for q in (50, 95, 99)},
        "user_error_rate": _rate(_sum(rows, "user_errors"), observations),
        "server_error_rate": _rate(server, observations),
        "failed_row_rate": _rate(failed, total),
        "exec_seconds": float(pc.sum(rows.column("exec_seconds")).as_py() or 0.0)
        if rows.num_rows else 0.0,
    }
    figures["status"] = _status(figures, slo_ms)
    return figures


def _status(f: dict[str, Any], slo_ms: float | None) -> dict[str, Any]:
    if not f["observations"]:
        return {"colour": "grey", "rule": "no traffic in the window", "value": 0,
                "threshold": None}
    p95 = f["latency_ms"]["p95"] if slo_ms is not None else None
    slo = slo_ms if slo_ms is not None else 0.0
    errors = f["server_error_rate"] or 0.0
    if errors >= 0.05:
        return {"colour": "red", "rule": "server errors", "value": errors, "threshold": 0.05}
    if p95 is not None and p95 > 2 * slo:
        return {"colour": "red", "rule": "p95 latency over twice the SLO", "value": p95,
                "threshold": 2 * slo}
    if errors >= 0.01:
        return {"colour": "yellow", "rule": "server errors", "value": errors,
                "threshold": 0.01}
    if p95 is not None and p95 > slo:
        return {"colour": "yellow", "rule": "p95 latency over the SLO", "value": p95,
                "threshold": slo}
    if slo_ms is None:
        return {"colour": "green", "rule": "server errors under 1%", "value": errors,
                "threshold": 0.01}
    return {"colour": "green", "rule": "within the SLO", "value": p95, "threshold": slo}


def _histogram(rows: pa.Table) -> np.ndarray:
    width = len(LATENCY_EDGES) + 1
    if not rows.num_rows:
        return np.zeros(width, dtype=np.int64)
    flat = pc.list_flatten(rows.column("latency_counts").combine_chunks())
    values = flat.to_numpy(zero_copy_only=False).astype(np.int64)
    return np.sum(values.reshape(-1, width), axis=0)  # type: ignore[no-any-return]


def _percentile(counts: np.ndarray, q: float) -> float | None:
    """The upper edge (ms) of the bucket holding the ``q`` quantile (None: no data; the
    last bucket has no upper edge: its lower one, 60 s, is given)."""
    total = int(counts.sum())
    if not total:
        return None
    index = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    edges: Sequence[float] = LATENCY_EDGES
    return float(edges[min(index, len(edges) - 1)] * 1000)


def _sum(rows: pa.Table, name: str) -> int:
    return int(pc.sum(rows.column(name)).as_py() or 0) if rows.num_rows else 0


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def health_table_text(doc: dict[str, Any]) -> str:
    """The document as lines for a terminal."""
    status = doc["status"]
    lines = [f"deployment {doc['deployment']}: health {status['colour'].upper()} "
             f"({status['rule']})",
             f"window {doc['window']['since']} .. {doc['window']['until']}; SLO "
             f"{doc['slo_ms']:.0f} ms", ""]
    header = f"{'source':9s} {'rows':>12s} {'rows/s':>10s} {'requests':>9s} {'p50 ms':>7s} " \
             f"{'p95 ms':>7s} {'p99 ms':>7s} {'user err':>8s} {'srv err':>8s} {'failed':>7s}"
    lines.append(header)
    lines += [_line(name, f) for name, f in [*doc["sources"].items(), ("all", doc["overall"])]]
    if doc.get("failed_jobs"):
        lines.append(f"failed jobs: {', '.join(doc['failed_jobs'])} (batchpred job list; "
                     "resume with --resume --job-id ID)")
    consumers = doc.get("consumers") or {}
    if consumers:
        lines += ["", "requests per consumer:", header.replace("source ", "consumer", 1)]
        lines += [_line(name, f) for name, f in consumers.items()]
    return "\n".join(lines)


def _line(name: str, f: dict[str, Any]) -> str:
    lat = f["latency_ms"]
    return (f"{name:9s} {f['rows']:12,d} {f['rows_per_second']:10,.1f} {f['requests']:9,d} "
            f"{_ms(lat['p50']):>7s} {_ms(lat['p95']):>7s} {_ms(lat['p99']):>7s} "
            f"{_pct(f['user_error_rate']):>8s} {_pct(f['server_error_rate']):>8s} "
            f"{_pct(f['failed_row_rate']):>7s}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
