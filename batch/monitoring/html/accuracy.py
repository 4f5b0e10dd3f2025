"""The accuracy document's sections: the figures per model, each shown metric over time
(realised, and for a binary model the estimate before actuals beside it), and the mean
prediction against the observed outcome (per period, and as a calibration-style plot)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from batch.monitoring.html.markup import (
    badge,
    count,
    e,
    finite,
    none,
    num,
    section,
    table,
    when,
    window_text,
)
from batch.monitoring.html.svg import (
    CURRENT_HEX,
    REFERENCE_HEX,
    TOOLTIPS,
    Scale,
    Series,
    Span,
    c,
    line,
    starts_of,
    step_of,
    svg,
    text,
    ticks,
    time_chart,
    y_axis,
)
from batch.monitoring.metrics import METRICS
from batch.monitoring.table import SHOWN

ESTIMATED = ("accuracy", "auc", "f1", "ppv", "tpr")  # what the estimate before actuals has
# what the mean prediction and the observed outcome are, per target type
MEANS = {"binary": ("mean predicted probability", "observed positive rate"),
         "regression": ("mean prediction", "mean actual"),
         "multiclass": ("mean probability of the predicted class", "share predicted right")}


def _label(metric: str) -> str:
    found = METRICS.get(metric)
    return found.label if found is not None else metric


def _metrics(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The metrics shown for the document's target, its primary metric first."""
    shown = SHOWN.get(str((doc.get("target") or {}).get("type")), ())
    primary = doc.get("primary_metric")
    return (primary, *(m for m in shown if m != primary)) if primary in shown else shown


def _binary(doc: Mapping[str, Any]) -> bool:
    return (doc.get("target") or {}).get("type") == "binary"


def accuracy_section(doc: Mapping[str, Any]) -> str:
    """Status, figures per model (and the holdout's), and each metric over time."""
    status = doc.get("status") or {}
    actuals = doc.get("actuals") or {}
    facts = (f"<p>Window {e(window_text(doc.get('window') or {}))}: "
             f"{count(doc.get('predictions'))} predictions, {count(doc.get('matched'))} with "
             f"an actual ({count(actuals.get('ids'))} ids have one). Primary metric "
             f"{e(_label(str(doc.get('primary_metric'))))}.</p>\n")
    body = [f"<p>Accuracy status {badge(status.get('colour'))} {e(status.get('rule', ''))}"
            "</p>\n", facts, _models(doc), "<h3>Over time</h3>\n"]
    body += _over_time(doc)
    return section("accuracy", "Accuracy", body)


def _models(doc: Mapping[str, Any]) -> str:
    metrics, binary = _metrics(doc), _binary(doc)
    head = ("Model", "Predictions", "Matched", *(_label(m) for m in metrics),
            *(("Est. accuracy", "Est. AUC") if binary else ()))
    rows = []
    for model, figures in (doc.get("models") or {}).items():
        name = e(str(model)[:12]) + (" (champion)" if model == doc.get("champion") else "")
        rows.append(_figure_row(name, figures, metrics, binary=binary))
    holdout = doc.get("holdout") or {}
    if holdout:
        rows.append(_figure_row("holdout", {"metrics": holdout}, metrics, binary=binary))
    if not rows:
        return none("No model has predictions in the window.")
    return table(head, rows, frozenset(range(1, len(head))))


def _figure_row(name: str, figures: Mapping[str, Any], metrics: Sequence[str], *,
                binary: bool) -> list[str]:
    realised, guess = figures.get("metrics") or {}, figures.get("estimated") or {}
    return [name, count(figures.get("predictions")), count(figures.get("matched")),
            *(num(realised.get(m)) for m in metrics),
            *((num(guess.get("accuracy")), num(guess.get("auc"))) if binary else ())]


def _spans(doc: Mapping[str, Any]) -> list[Span]:
    entries = list(doc.get("over_time") or ())
    step = step_of(entries, (doc.get("window") or {}).get("by"))
    return [Span(s, s + step, when(str(entry.get("start"))))
            for s, entry in zip(starts_of(entries, step), entries, strict=True)]


def _over_time(doc: Mapping[str, Any]) -> list[str]:
    entries = list(doc.get("over_time") or ())
    if not entries:
        return [none("There is no per-period breakdown in this document (run the stage "
                     "with --by hour or --by day).")]
    spans, holdout = _spans(doc), doc.get("holdout") or {}
    charts = []
    for metric in _metrics(doc):
        realised = [(b.get("metrics") or {}).get(metric) for b in entries]
        series = [Series(f"{_label(metric)} (realised)", REFERENCE_HEX, realised)]
        if _binary(doc) and metric in ESTIMATED:
            series.append(Series(f"{_label(metric)} (estimated)", CURRENT_HEX,
                                 [(b.get("estimated") or {}).get(metric) for b in entries],
                                 dashed=True))
        if not any(finite(v) for s in series for v in s.values):
            charts.append(f"<figure><figcaption>{e(_label(metric))}</figcaption>"
                          f"{none('No value in any period.')}</figure>")
            continue
        reference = ("holdout", holdout[metric]) if finite(holdout.get(metric)) else None
        charts.append(f"<figure><figcaption>{e(_label(metric))}</figcaption>" + time_chart(
            spans, series, label=f"Line chart of {_label(metric)} per period",
            axis=_label(metric), reference=reference) + "</figure>")
    return [f"<p>{len(entries):,} periods, by the time of the prediction; the estimate "
            "(dashed) counts every prediction, the realised figure the ones with an "
            "actual.</p>\n", '<div class="grid">', *charts, "</div>\n"]


# -- predicted against actual ------------------------------------------------------------------

def predicted_vs_actual(doc: Mapping[str, Any]) -> str:
    """The mean prediction against the observed outcome, per model and per period."""
    kind = str((doc.get("target") or {}).get("type"))
    predicted, observed = MEANS.get(kind, ("mean prediction", "mean actual"))
    models = doc.get("models") or {}
    rows = [[e(str(model)[:12]) + (" (champion)" if model == doc.get("champion") else ""),
             count(pva.get("rows")), num(pva.get("predicted")), num(pva.get("actual"))]
            for model, figures in models.items()
            for pva in [figures.get("predicted_vs_actual") or {}]]
    body = [f"<p>Over the predictions with an actual: the {e(predicted)} against the "
            f"{e(observed)}.</p>\n",
            table(("Model", "Rows with an actual", predicted.capitalize(),
                   observed.capitalize()), rows, frozenset({1, 2, 3})) if rows else
            none("No model has predictions in the window.")]
    entries = list(doc.get("over_time") or ())
    pairs = [(b.get("predicted_vs_actual") or {}) for b in entries]
    if not any(finite(p.get("predicted")) for p in pairs):
        body.append(none("No period has predictions with an actual (or the stage ran "
                         "without --by)."))
        return section("predicted-vs-actual", "Predicted against actual", body)
    spans, pairs = _grouped(_spans(doc), pairs)
    percent = kind != "regression"
    body.append('<div class="grid">')
    body.append(time_chart(spans, [
        Series(predicted, REFERENCE_HEX, [p.get("predicted") for p in pairs]),
        Series(observed, CURRENT_HEX, [p.get("actual") for p in pairs])],
        label=f"Line chart of the {predicted} and the {observed} per period",
        axis="share" if percent else "value", percent=percent))
    body.append(_calibration(spans, pairs, (predicted, observed)))
    body.append("</div>\n")
    return section("predicted-vs-actual", "Predicted against actual", body)


def _grouped(spans: Sequence[Span], pairs: Sequence[Mapping[str, Any]]
             ) -> tuple[list[Span], list[Mapping[str, Any]]]:
    """At most :data:`TOOLTIPS` groups of consecutive periods; a group's means are its
    periods' weighted by their rows (exact: a mean of means so weighted is the mean)."""
    size = max(1, math.ceil(len(spans) / TOOLTIPS))
    if size == 1:
        return list(spans), list(pairs)
    out_spans: list[Span] = []
    out_pairs: list[Mapping[str, Any]] = []
    for i in range(0, len(spans), size):
        group = [p for p in pairs[i:i + size] if finite(p.get("predicted"))
                 and finite(p.get("actual")) and finite(p.get("rows")) and p["rows"] > 0]
        rows = sum(p["rows"] for p in group)
        last = spans[min(i + size, len(spans)) - 1]
        out_spans.append(Span(spans[i].start, last.end, f"{spans[i].label} to {last.label}"))
        out_pairs.append({"rows": rows} | ({
            "predicted": sum(p["predicted"] * p["rows"] for p in group) / rows,
            "actual": sum(p["actual"] * p["rows"] for p in group) / rows} if rows else {}))
    return out_spans, out_pairs


def _calibration(spans: Sequence[Span], pairs: Sequence[Mapping[str, Any]],
                 names: tuple[str, str]) -> str:
    """Each period's mean prediction (x) against its observed outcome (y); on the dashed
    diagonal the two agree."""
    size, left, top = 300.0, 56.0, 16.0
    points = [(s, p) for s, p in zip(spans, pairs, strict=True)
              if finite(p.get("predicted")) and finite(p.get("actual"))]
    values = [v for _, p in points for v in (p["predicted"], p["actual"])]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.1
    x = Scale(low - pad, high + pad, left, left + size - 24)
    y = Scale(low - pad, high + pad, top + size - 60, top)
    out = y_axis(y, left=x.start, right=x.end, label=names[1])
    out.append(line((x.start, y.start), (x.end, y.start), "axis"))
    out.append(line((x.start, y(x.low)), (x.end, y(x.high)), "threshold"))
    out.append(text((x.start + x.end) / 2, y.start + 32, names[0], ' text-anchor="middle"'))
    for tick in ticks(x.low, x.high, 4):
        out.append(text(x(tick), y.start + 15, f"{tick:.3g}", ' text-anchor="middle"'))
    for span, p in points:
        tip = (f"{span.label}: {names[0]} {num(p['predicted'])}, {names[1]} "
               f"{num(p['actual'])} ({count(p.get('rows'))} rows)")
        out.append(f'<circle cx="{c(x(p["predicted"]))}" cy="{c(y(p["actual"]))}" r="4" '
                   f'fill="{REFERENCE_HEX}" fill-opacity="0.7"><title>{e(tip)}</title>'
                   "</circle>")
    return svg(size + 40, size, f"Scatter plot of the {names[1]} against the {names[0]} per "
               "period", out)
