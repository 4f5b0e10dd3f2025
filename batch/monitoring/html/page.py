"""The report page: the summary of every stage's status, the sections of each document
given, and the notes (records left out, warnings, stages left out and why)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch.monitoring.html.accuracy import accuracy_section, predicted_vs_actual
from batch.monitoring.html.challengers import challengers_section
from batch.monitoring.html.drift import (
    data_quality,
    drift_importance,
    excluded,
    features_table,
    histograms,
    status_counts,
    status_line,
)
from batch.monitoring.html.markup import (
    DASH,
    badge,
    count,
    e,
    none,
    section,
    table,
    window_text,
)
from batch.monitoring.html.over_time import predictions_over_time
from batch.monitoring.html.service import health_section, history_section

CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1b;margin:0 auto;max-width:1180px;
padding:0 16px 32px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #ccc;
padding-bottom:2px;margin-top:28px}h3{font-size:15px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 8px;border-bottom:1px solid
#e3e3e3;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:
tabular-nums}dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
dt{font-weight:600}dd{margin:0}.badge{display:inline-block;padding:0 7px;border-radius:9px;
color:#fff;font-weight:600;font-size:12px}.badge.grey{background:#6b6b6b}
.badge.green{background:#1a7f37}.badge.yellow{background:#b58900;color:#1b1b1b}
.badge.red{background:#c62828}.grid{display:flex;flex-wrap:wrap;gap:10px 18px}
figure{margin:4px 0}figcaption{font-weight:600}svg.plot{max-width:100%;height:auto;
font:11px system-ui,sans-serif}svg text{fill:#1b1b1b}.axis{stroke:#555}.gridline{stroke:#eee}
.threshold{stroke:#555;stroke-dasharray:5 4}.none{color:#555;font-style:italic}
"""
NAMES = {"accuracy": "Accuracy", "challengers": "Challengers", "health": "Service health",
         "history": "History"}


@dataclass(frozen=True, slots=True)
class Documents:
    """What a report shows beside the drift document: the other stages' documents (None:
    not asked for, or left out) and, for each stage left out, why."""

    accuracy: Mapping[str, Any] | None = None
    challengers: Mapping[str, Any] | None = None
    health: Mapping[str, Any] | None = None
    history: Sequence[Mapping[str, Any]] | None = None
    left_out: Mapping[str, str] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return bool(self.left_out) or any(
            d is not None for d in (self.accuracy, self.challengers, self.health, self.history))


def render_report(doc: Mapping[str, Any], documents: Documents | None = None) -> str:
    """One self-contained HTML page of a drift document and the ``documents`` beside it.

    Inline CSS in one ``<style>``, the plots as inline SVG, no script, no link, no
    external resource: it opens offline. Every text taken from a document is escaped;
    the same documents give the same page, byte for byte. A figure missing from a
    document shows as a dash; nothing in a document makes it raise.
    """
    more = documents or Documents()
    title = (f"Monitoring report: {doc.get('deployment')}, "
             f"{window_text(doc.get('window') or {})}")
    sections = [_summary(doc, more), drift_importance(doc), features_table(doc),
                histograms(doc), predictions_over_time(doc), data_quality(doc)]
    if more.accuracy is not None:
        sections += [accuracy_section(more.accuracy), predicted_vs_actual(more.accuracy)]
    if more.challengers is not None:
        sections.append(challengers_section(more.challengers))
    if more.health is not None:
        sections.append(health_section(more.health))
    if more.history is not None:
        sections.append(history_section(more.history))
    sections.append(_notes(doc, more))
    return "".join((
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n",
        f"<h1>{e(title)}</h1>\n", *sections, "</body></html>\n"))


def _summary(doc: Mapping[str, Any], more: Documents) -> str:
    baseline = doc.get("baseline") or {}
    facts = [("Deployment", doc.get("deployment")),
             ("Window", window_text(doc.get("window") or {})),
             ("Against", doc.get("against")), ("Rows", count(doc.get("rows"))),
             ("Jobs", len(doc.get("jobs") or ())),
             ("Baseline", f"{str(baseline.get('fingerprint') or '')[:12]} "
                          f"({count(baseline.get('rows'))} training rows)")]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    body = [f'<dl class="facts">{dl}</dl>\n', status_line(doc.get("status") or {}),
            f"<p>Prediction status {badge(doc.get('prediction_status'))}</p>\n"]
    if more.given:
        body.append(_stages(doc, more))
    body.append(status_counts(doc))
    return section("summary", "Summary", body)


def _stages(doc: Mapping[str, Any], more: Documents) -> str:
    """A row per stage: its colour, its rule and its window (or why it was left out)."""
    status = doc.get("status") or {}
    rows = [["Drift", badge(status.get("colour")), e(status.get("rule", "")),
             e(window_text(doc.get("window") or {}))],
            ["Prediction drift", badge(doc.get("prediction_status")),
             "prediction columns against the baseline", DASH]]
    for stage, found in (("accuracy", more.accuracy), ("challengers", more.challengers),
                         ("health", more.health)):
        if found is not None:
            st = found.get("status") or {}
            rows.append([NAMES[stage], badge(st.get("colour")), e(st.get("rule", "")),
                         e(window_text(found.get("window") or {}))])
    if more.history:
        last = more.history[-1]
        rows.append(["History", DASH, e(f"{len(more.history):,} events, the last "
                                        f"{last.get('event')} at {last.get('time')}"), DASH])
    rows += [[e(NAMES.get(stage, stage)), "left out", e(why), DASH]
             for stage, why in more.left_out.items()]
    return "<h3>Stages</h3>\n" + table(("Stage", "Status", "Rule", "Window"), rows,
                                        frozenset())


def _notes(doc: Mapping[str, Any], more: Documents) -> str:
    body = excluded(doc)
    warnings = [str(w) for w in doc.get("warnings") or ()]
    for stage, found in (("accuracy", more.accuracy), ("challengers", more.challengers),
                         ("health", more.health)):
        warnings += [f"{stage}: {w}" for w in (found or {}).get("warnings") or ()]
    body.append("<h3>Warnings</h3>\n")
    body.append("<ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>\n"
                if warnings else none("None."))
    if more.left_out:
        body.append("<h3>Stages left out</h3>\n<ul>" + "".join(
            f"<li>{e(NAMES.get(stage, stage))}: {e(why)}</li>"
            for stage, why in more.left_out.items()) + "</ul>\n")
    return section("notes", "Notes", body)
