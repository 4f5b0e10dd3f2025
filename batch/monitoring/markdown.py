"""The stages' documents as a markdown summary and a table of rows (the flow publishes
them as Prefect artifacts).

:func:`summary_of` takes a drift, accuracy, health or challengers document (by
its ``kind``) and gives its :class:`Summary`: the markdown, the name of the table
and its rows, JSON-able dicts of plain figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from batch.monitoring.table import SHOWN


@dataclass(frozen=True, slots=True)
class Summary:
    markdown: str
    table: str  # its name: features, accuracy-models, health-sources, challengers-table
    rows: list[dict[str, Any]]


def summary_of(doc: Mapping[str, Any]) -> Summary:
    """The summary of a stage's document.

    Raises:
        ValueError: ``doc`` is of no stage this module knows.
    """
    kind = doc.get("kind")
    if kind not in _SUMMARIES:
        raise ValueError(f"no summary of a {kind!r} document; the kinds are "
                         f"{', '.join(sorted(_SUMMARIES))}")
    return _SUMMARIES[kind](doc)


def _figure(value: Any, digits: int = 4) -> str:
    return "–" if not isinstance(value, int | float) or isinstance(value, bool) else (
        f"{value:.{digits}g}")


def drift_summary(doc: Mapping[str, Any]) -> Summary:
    status = doc["status"]
    window = doc["window"]
    lines = [f"# Drift of {doc['deployment']}: **{status['colour'].upper()}**", "",
             f"{status['rule']} ({status['value']}, threshold {status['threshold']})", "",
             f"Window {window['since']} .. {window['until']}: {doc['rows']:,} rows from "
             f"{len(doc['jobs'])} job(s), against the {doc['against']}.", "",
             f"Prediction drift: {doc['prediction_status']}.", ""]
    drifted = [f for f in doc["features"] if f["drifted"]]
    if drifted:
        lines += ["| feature | importance | PSI | status |", "|---|---|---|---|"]
        lines += [f"| {f['name']} | {f.get('importance', 0):.2f} | {f['psi']:.4f} | "
                  f"{f['status']} |" for f in drifted]
    for q in doc["data_quality"]:
        lines.append(f"- {q['feature']}: {q['finding']} ({q['value']:.1%})")
    rows = [{"feature": f["name"], "importance": f.get("importance"), "psi": f.get("psi"),
             "js": f.get("js"), "tail": (f.get("tail") or {}).get("wasserstein_std"),
             "status": f["status"]} for f in doc["features"]]
    return Summary("\n".join(lines), "features", rows)


def accuracy_summary(doc: Mapping[str, Any]) -> Summary:
    status, window = doc["status"], doc["window"]
    shown = SHOWN[doc["target"]["type"]]
    lines = [f"# Accuracy of {doc['deployment']}: **{status['colour'].upper()}**", "",
             status["rule"], "",
             f"Window {window['since']} .. {window['until']}: {doc['predictions']:,} "
             f"predictions, {doc['matched']:,} with an actual.", "",
             "| model | matched | " + " | ".join(shown) + " |",
             "|---|---|" + "---|" * len(shown)]
    rows = []
    for model, f in doc["models"].items():
        metrics = f.get("metrics") or {}
        name = model[:12] + (" (champion)" if model == doc["champion"] else "")
        lines.append(f"| {name} | {f['matched']:,} | "
                     + " | ".join(_figure(metrics.get(m)) for m in shown) + " |")
        rows.append({"model": model, "champion": model == doc["champion"],
                     "predictions": f["predictions"], "matched": f["matched"],
                     **{m: metrics.get(m) for m in shown},
                     **{f"estimated_{k}": v for k, v in (f.get("estimated") or {}).items()}})
    return Summary("\n".join(lines), "accuracy-models", rows)


def health_summary(doc: Mapping[str, Any]) -> Summary:
    status, window = doc["status"], doc["window"]
    said = status["rule"] + ("" if status.get("threshold") is None else
                             f" ({_figure(status['value'])}, threshold {status['threshold']})")
    lines = [f"# Health of {doc['deployment']}: **{status['colour'].upper()}**", "", said, "",
             f"Window {window['since']} .. {window['until']}; latency objective "
             f"{doc['slo_ms']:g} ms.", "",
             "| source | rows | requests | p95 ms | server errors | status |",
             "|---|---|---|---|---|---|"]
    rows = []
    named = [*doc["sources"].items(), *((f"consumer {k}", v) for k, v in
                                        (doc.get("consumers") or {}).items())]
    for name, f in named:
        p95 = f["latency_ms"]["p95"]
        lines.append(f"| {name} | {f['rows']:,} | {f['requests']:,} | {_figure(p95)} | "
                     f"{_figure(f['server_error_rate'])} | {f['status']['colour']} |")
        rows.append({"source": name, "rows": f["rows"], "requests": f["requests"],
                     "p50_ms": f["latency_ms"]["p50"], "p95_ms": p95,
                     "p99_ms": f["latency_ms"]["p99"],
                     "server_error_rate": f["server_error_rate"],
                     "user_error_rate": f["user_error_rate"], "status": f["status"]["colour"]})
    if doc.get("failed_jobs"):
        lines += ["", "Failed jobs: " + ", ".join(doc["failed_jobs"])]
    return Summary("\n".join(lines), "health-sources", rows)


def challengers_summary(doc: Mapping[str, Any]) -> Summary:
    metric, window, status = doc["primary_metric"], doc["window"], doc["status"]
    lines = [f"# Challengers of {doc['deployment']}: **{status['colour'].upper()}**", "",
             status["rule"], "",
             f"Window {window['since']} .. {window['until']}; champion "
             f"{doc['champion'][:12]} ({doc['champion_rows']:,} rows).", "",
             f"| challenger | rows | paired {metric} (95%) | recommendation |",
             "|---|---|---|---|"]
    rows = []
    for c in doc["challengers"]:
        paired, advice = c["paired"], c["recommendation"]
        interval = "–" if paired["low"] is None else (
            f"{paired['mean']:+.4f} [{paired['low']:+.4f}, {paired['high']:+.4f}]")
        lines.append(f"| {c['id']} | {c['rows']:,} | {interval} | {advice['action']}: "
                     f"{advice['why']} |")
        rows.append({"challenger": c["id"], "model": c["model_id"], "rows": c["rows"],
                     "agreement": c["agreement"], "matched": c["matched"],
                     "paired_mean": paired["mean"], "paired_low": paired["low"],
                     "paired_high": paired["high"], "latency_ratio": c["latency_ratio"],
                     "recommendation": advice["action"]})
    return Summary("\n".join(lines), "challengers-table", rows)


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], Summary]] = {
    "accuracy": accuracy_summary, "challengers": challengers_summary,
    "drift": drift_summary, "health": health_summary}
