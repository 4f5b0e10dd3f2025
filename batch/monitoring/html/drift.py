"""The drift document's sections: the status line, drift against importance, the
features table, the histograms (baseline against current), data quality and the
records left out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from batch.monitoring.html.markup import (
    HEX,
    SEVERITY,
    badge,
    colour,
    count,
    e,
    finite,
    none,
    num,
    pct,
    section,
    short,
    table,
)
from batch.monitoring.html.svg import (
    CURRENT_HEX,
    REFERENCE_HEX,
    Scale,
    c,
    dashed_legend,
    legend,
    line,
    svg,
    text,
    ticks,
    y_axis,
)

PSI_AXIS_CAP = 1.0  # the scatter's PSI axis ends here at most; larger values sit on top


def reference_name(doc: Mapping[str, Any]) -> str:
    return "window before" if doc.get("against") == "previous" else "baseline"


def status_line(status: Mapping[str, Any]) -> str:
    said = (f"{status.get('rule', '')}: {num(status.get('value'))} "
            f"(threshold {num(status.get('threshold'))})")
    names = status.get("features") or ()
    if names:
        said += ": " + ", ".join(str(n) for n in names)
    return f"<p>Drift status {badge(status.get('colour'))} {e(said)}</p>\n"


def status_counts(doc: Mapping[str, Any]) -> str:
    features, predictions = doc.get("features") or (), doc.get("predictions") or ()
    rows = [(badge(c), str(sum(colour(f.get("status")) == c for f in features)),
             str(sum(colour(p.get("status")) == c for p in predictions))) for c in SEVERITY]
    return table(("Status", "Features", "Predictions"), rows, frozenset({1, 2}))


# -- drift against importance ------------------------------------------------------------------

def drift_importance(doc: Mapping[str, Any]) -> str:
    features = doc.get("features") or ()
    if not features:
        return section("drift-importance", "Drift and importance", [none("No features.")])
    return section("drift-importance", "Drift and importance", (
        "<p>Each feature's PSI against its importance; the dashed lines are the drift "
        "and high-importance thresholds.</p>\n", _scatter(features, doc.get("thresholds") or {})))


def _scatter(features: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Any]) -> str:
    width, height = 660.0, 380.0
    drift, high = thresholds.get("drift_psi", 0.15), thresholds.get("high_importance", 0.5)
    values = [f["psi"] for f in features if finite(f.get("psi"))]
    top = max(0.3, drift * 1.2, min(max(values, default=0.0) * 1.1, PSI_AXIS_CAP))
    x, y = Scale(0.0, 1.0, 60, width - 24), Scale(0.0, top, height - 48, 34)
    out = y_axis(y, left=x.start, right=x.end, label="PSI")
    out.append(line((x.start, y.start), (x.end, y.start), "axis"))
    for tick in ticks(0.0, 1.0):
        out.append(text(x(tick), y.start + 15, f"{tick:.3g}", ' text-anchor="middle"'))
    out.append(text((x.start + x.end) / 2, height - 8, "importance (normalised)",
                    ' text-anchor="middle"'))
    out.append(line((x.start, y(drift)), (x.end, y(drift)), "threshold"))
    out.append(line((x(high), y.start), (x(high), y.end), "threshold"))
    out += legend(x.start, 16, [(HEX[c], c) for c in reversed(SEVERITY)])
    out += dashed_legend(x.start + 300, 16, f"drift PSI {drift:g}, high importance {high:g}")
    for feature in features:
        out += _point(feature, x, y)
    return svg(width, height, "Scatter plot of each feature's PSI against its importance",
               out)


def _point(feature: Mapping[str, Any], x: Scale, y: Scale) -> list[str]:
    importance, value = feature.get("importance"), feature.get("psi")
    hexcode = HEX[colour(feature.get("status"))]
    px = x(min(max(importance, 0.0), 1.0) if finite(importance) else 0.0)
    known, py, note = False, y(0.0), "no PSI"
    if finite(value):
        known, py = True, y(min(value, y.high))
        note = f"PSI {value:.4g}" + (", off the scale" if value > y.high else "")
    tip = (f"{feature.get('name')}: importance {num(importance, 3)}, {note}, "
           f"{colour(feature.get('status'))}{', drifted' if feature.get('drifted') else ''}")
    fill = hexcode if known else "none"
    out = [f'<circle cx="{c(px)}" cy="{c(py)}" r="5" fill="{fill}" stroke="{hexcode}">'
           f"<title>{e(tip)}</title></circle>"]
    if feature.get("drifted"):
        anchor = ' text-anchor="end"' if px > x.end - 90 else ""
        shift = -7 if anchor else 7
        out.append(text(px + shift, py - 6, short(str(feature.get("name")), 18), anchor))
    return out


# -- the features table ------------------------------------------------------------------------

def features_table(doc: Mapping[str, Any]) -> str:
    head = ("Feature", "Kind", "Importance", "PSI", "JS", "Tail (std)", "KS",
            "Mean diff (std)", "Missing (before)", "Out of range / new", "Status", "Reason")
    features = sorted(doc.get("features") or (), key=_severity)
    predictions = sorted(doc.get("predictions") or (), key=_severity)
    body = [table(head, (_feature_row(f) for f in features), frozenset(range(2, 10)))
            if features else none("No features.")]
    if predictions:
        body.append("<h3>Prediction columns</h3>\n")
        body.append(table(("Column", *head[1:]), (_feature_row(p) for p in predictions),
                          frozenset(range(2, 10))))
    return section("features", "Features", body)


def _severity(entry: Mapping[str, Any]) -> tuple[int, float, str]:
    value = entry.get("psi")
    order = -value if finite(value) else math.inf
    return SEVERITY.index(colour(entry.get("status"))), order, str(entry.get("name"))


def _feature_row(f: Mapping[str, Any]) -> list[str]:
    tail = f.get("tail") or {}
    share = f.get("out_of_range_share") if f.get("kind") == "numeric" else f.get(
        "new_level_share")
    name = e(f.get("name")) + (" ★" if f.get("starred") else "") + (
        " (high)" if f.get("high_importance") else "")
    return [name, e(f.get("kind", "")), num(f.get("importance"), 3), num(f.get("psi")),
            num(f.get("js")), num(tail.get("wasserstein_std")), num(tail.get("ks")),
            num(f.get("mean_difference_std"), 3), _missing(f), pct(share),
            badge(f.get("status")), e(f.get("reason", ""))]


def _missing(f: Mapping[str, Any]) -> str:
    before = f.get("reference_missing_share")
    return pct(f.get("missing_share")) + (f" ({pct(before)})" if finite(before) else "")


# -- histograms --------------------------------------------------------------------------------

def histograms(doc: Mapping[str, Any]) -> str:
    reference = reference_name(doc)
    columns = [*(doc.get("features") or ()), *(doc.get("predictions") or ())]
    figures = [_histogram(c, reference) for c in columns]
    return section("histograms", "Distributions", (
        f"<p>Share of rows per bucket, {e(reference)} against the window.</p>\n",
        '<div class="grid">', *figures, "</div>\n"))


def _histogram(column: Mapping[str, Any], reference: str) -> str:
    hist = column.get("histogram") or {}
    labels = [str(label) for label in hist.get("labels") or ()]
    counts = {reference: hist.get("reference"), "current": hist.get("current")}
    caption = f"<figure><figcaption>{e(column.get('name'))}</figcaption>"
    absent = [k for k, v in counts.items() if v is None]
    if absent or not labels:
        what = " or ".join(f"{k} counts" for k in absent) or "buckets"
        return f'{caption}<p class="none">No {e(what)}: nothing to plot.</p></figure>'
    ref = shares(hist["reference"], len(labels))
    cur = shares(hist["current"], len(labels))
    return caption + _bars(labels, (ref, cur), reference, str(column.get("name"))) + "</figure>"


def shares(counts: Sequence[int], size: int) -> list[tuple[float, int]]:
    """(proportion, count) per bucket, padded or cut to ``size``."""
    values = [int(c) for c in counts][:size] + [0] * max(0, size - len(counts))
    total = sum(values)
    return [(c / total if total else 0.0, c) for c in values]


def _bars(labels: Sequence[str], pairs: tuple[Sequence[tuple[float, int]], ...],
          reference: str, name: str) -> str:
    ref, cur = pairs
    step, left, top = 22.0, 52.0, 30.0
    plot_bottom = top + 130
    width, height = max(300.0, left + step * len(labels) + 12), plot_bottom + 70
    high = max([p for p, _ in (*ref, *cur)] + [0.01]) * 1.1
    x, y = Scale(0, len(labels), left, left + step * len(labels)), Scale(
        0.0, high, plot_bottom, top)
    out = y_axis(y, left=left, right=x.end, label="share of rows", percent=True)
    out.append(line((left, plot_bottom), (x.end, plot_bottom), "axis"))
    out += legend(left, 14, [(REFERENCE_HEX, reference), (CURRENT_HEX, "current")])
    for i, label in enumerate(labels):
        out.append(_bucket(label, (ref[i], cur[i]), reference,
                           x=Scale(i, i + 1, x(i), x(i + 1)), y=y))
    return svg(width, height, f"Histogram of {name}: {reference} and current share per bucket",
               out)


def _bucket(label: str, pair: tuple[tuple[float, int], tuple[float, int]], reference: str, *,
            x: Scale, y: Scale) -> str:
    (p, n), (q, m) = pair
    tip = f"{label}: {reference} {100 * p:.3g} % ({n:,}), current {100 * q:.3g} % ({m:,})"
    bar = (x.end - x.start - 4) / 2
    rects = "".join(
        f'<rect x="{c(x.start + 2 + k * bar)}" y="{c(y(share))}" width="{c(bar)}" '
        f'height="{c(y.start - y(share))}" fill="{colour}"/>'
        for k, (share, colour) in enumerate(((p, REFERENCE_HEX), (q, CURRENT_HEX))))
    cx, ly = (x.start + x.end) / 2, y.start + 10
    cut = short(label)
    full = f"<title>{e(label)}</title>" if cut != label else ""
    name = (f'<text x="{c(cx)}" y="{c(ly)}" text-anchor="end" '
            f'transform="rotate(-45 {c(cx)} {c(ly)})">{full}{e(cut)}</text>')
    return f"<g><title>{e(tip)}</title>{rects}</g>{name}"


# -- data quality ------------------------------------------------------------------------------

def data_quality(doc: Mapping[str, Any]) -> str:
    findings = doc.get("data_quality") or ()
    if not findings:
        return section("data-quality", "Data quality", [none("No data-quality findings.")])
    rows = [(e(f.get("feature")), e(f.get("finding")), pct(f.get("value")),
             pct(f.get("threshold"))) for f in findings]
    return section("data-quality", "Data quality", [
        table(("Feature", "Finding", "Value", "Threshold"), rows, frozenset({2, 3}))])


# -- notes -------------------------------------------------------------------------------------

def excluded(doc: Mapping[str, Any]) -> list[str]:
    """The notes on records left out of the drift stage (counted on another baseline)."""
    body = ["<h3>Excluded records</h3>\n"]
    found = doc.get("excluded") or ()
    if found:
        rows = [(e(x.get("job_id")), e(str(x.get("fingerprint") or "")[:12]),
                 count(x.get("rows")), e(x.get("reason"))) for x in found]
        body.append(table(("Job", "Baseline", "Rows", "Reason"), rows, frozenset({2})))
    else:
        body.append(none("None."))
    return body
