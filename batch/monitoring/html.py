"""The drift document as one HTML page: statuses, plots, data quality (``batchpred report``).

:func:`render_report` turns the document of
:func:`batch.monitoring.drift.drift_document` into a self-contained page: inline
CSS in one ``<style>``, the plots as inline SVG (a ``<title>`` tooltip on each
mark, axis labels, a legend), no script, no link, no external resource, so it
opens offline. Standard library only; every text taken from the document is
escaped; coordinates keep one decimal (about four significant digits), and long
``over_time`` series are drawn in at most :data:`MAX_COLUMNS` columns, so a month
of hourly buckets stays a few hundred KB. The same document gives the same page,
byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any, TypeGuard

SEVERITY = ("red", "yellow", "green", "grey")  # the features table's order
HEX = {"grey": "#6b6b6b", "green": "#1a7f37", "yellow": "#b58900", "red": "#c62828"}
REFERENCE_HEX, CURRENT_HEX = "#0072b2", "#d55e00"  # Okabe-Ito blue and vermillion
DASH = "–"  # what a missing figure shows
PSI_AXIS_CAP = 1.0  # the scatter's PSI axis ends here at most; larger values sit on top
MAX_COLUMNS = 120  # over time: buckets beyond this are drawn in groups
LABEL_CHARS = 14  # bucket labels longer than this are cut (the tooltip has them whole)
STEPS = {"hour": 3600.0, "day": 86400.0}

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


def render_report(doc: dict[str, Any]) -> str:
    """One self-contained HTML page of a drift document."""
    title = f"Drift report: {doc.get('deployment')}, {_window_text(doc.get('window') or {})}"
    sections = (_summary(doc), _drift_importance(doc), _features(doc), _histograms(doc),
                _over_time(doc), _data_quality(doc), _notes(doc))
    return "".join((
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n",
        f"<h1>{_e(title)}</h1>\n", *sections, "</body></html>\n"))


# -- text --------------------------------------------------------------------------------------

def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    return DASH if not _finite(value) else f"{value:.{digits}g}"


def _pct(value: Any) -> str:
    return DASH if not _finite(value) else f"{100 * value:.3g} %"


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def _c(value: float, decimals: int = 1) -> str:
    """An SVG coordinate (one decimal) or opacity, without trailing zeros."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def _colour(value: Any) -> str:
    return value if value in HEX else "grey"


def _badge(colour: Any) -> str:
    c = _colour(colour)
    return f'<span class="badge {c}">{c}</span>'


def _section(key: str, heading: str, body: Iterable[str]) -> str:
    return f'<section id="{key}"><h2>{_e(heading)}</h2>\n{"".join(body)}</section>\n'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int]
           ) -> str:
    """A table of cells already escaped; the columns in ``numeric`` right-aligned."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(r))
        + "</tr>\n" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>\n{body}</tbody></table>\n"


def _window_text(window: Mapping[str, Any]) -> str:
    text = f"{window.get('since') or 'the start'} to {window.get('until') or 'now'}"
    if window.get("job_id"):
        text += f", job {window['job_id']}"
    return text + (f", by {window['by']}" if window.get("by") else "")


def _reference_name(doc: Mapping[str, Any]) -> str:
    return "window before" if doc.get("against") == "previous" else "baseline"


# -- svg ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Scale:
    """``low``..``high`` onto pixels ``start``..``end`` (linear)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        share = (value - self.low) / span if span else 0.0
        return self.start + share * (self.end - self.start)


def _svg(width: float, height: float, label: str, body: Iterable[str]) -> str:
    return (f'<svg class="plot" role="img" aria-label="{_e(label)}" width="{_c(width)}" '
            f'height="{_c(height)}" viewBox="0 0 {_c(width)} {_c(height)}">'
            f'{"".join(body)}</svg>\n')


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{_c(x)}" y="{_c(y)}"{extra}>{_e(text)}</text>'


def _line(a: tuple[float, float], b: tuple[float, float], css: str) -> str:
    return (f'<line class="{css}" x1="{_c(a[0])}" y1="{_c(a[1])}" x2="{_c(b[0])}" '
            f'y2="{_c(b[1])}"/>')


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values between ``low`` and ``high``, about ``count`` of them."""
    span = high - low
    if not span > 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _y_axis(y: _Scale, *, left: float, right: float, label: str, percent: bool = False
            ) -> list[str]:
    """Grid lines, tick labels and the axis label of a value axis at ``left``."""
    out = [_line((left, y.start), (left, y.end), "axis")]
    for tick in _ticks(y.low, y.high):
        text = f"{100 * tick:.3g} %" if percent else f"{tick:.3g}"
        out.append(_line((left, y(tick)), (right, y(tick)), "gridline"))
        out.append(_text(left - 4, y(tick) + 4, text, ' text-anchor="end"'))
    middle = (y.start + y.end) / 2
    out.append(_text(12, middle, label,
                     f' text-anchor="middle" transform="rotate(-90 12 {_c(middle)})"'))
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    """Colour swatches and names in a row from (x, y)."""
    out = []
    for colour, name in items:
        out.append(f'<rect x="{_c(x)}" y="{_c(y - 9)}" width="10" height="10" rx="2" '
                   f'fill="{colour}"/>')
        out.append(_text(x + 14, y, name))
        x += 24 + 6.5 * len(name)
    return out


def _dashed_legend(x: float, y: float, name: str) -> list[str]:
    return [_line((x, y - 4), (x + 16, y - 4), "threshold"), _text(x + 20, y, name)]


# -- 1. summary --------------------------------------------------------------------------------

def _summary(doc: Mapping[str, Any]) -> str:
    baseline = doc.get("baseline") or {}
    facts = [("Deployment", doc.get("deployment")),
             ("Window", _window_text(doc.get("window") or {})),
             ("Against", doc.get("against")), ("Rows", _count(doc.get("rows"))),
             ("Jobs", len(doc.get("jobs") or ())),
             ("Baseline", f"{str(baseline.get('fingerprint') or '')[:12]} "
                          f"({_count(baseline.get('rows'))} training rows)")]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return _section("summary", "Summary", (
        f'<dl class="facts">{dl}</dl>\n', _status_line(doc.get("status") or {}),
        f"<p>Prediction status {_badge(doc.get('prediction_status'))}</p>\n",
        _status_counts(doc)))


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else DASH


def _status_line(status: Mapping[str, Any]) -> str:
    text = (f"{status.get('rule', '')}: {_num(status.get('value'))} "
            f"(threshold {_num(status.get('threshold'))})")
    names = status.get("features") or ()
    if names:
        text += ": " + ", ".join(str(n) for n in names)
    return f"<p>Drift status {_badge(status.get('colour'))} {_e(text)}</p>\n"


def _status_counts(doc: Mapping[str, Any]) -> str:
    features, predictions = doc.get("features") or (), doc.get("predictions") or ()
    rows = [(_badge(c), str(sum(_colour(f.get("status")) == c for f in features)),
             str(sum(_colour(p.get("status")) == c for p in predictions))) for c in SEVERITY]
    return _table(("Status", "Features", "Predictions"), rows, frozenset({1, 2}))


# -- 2. drift against importance ---------------------------------------------------------------

def _drift_importance(doc: Mapping[str, Any]) -> str:
    features = doc.get("features") or ()
    if not features:
        return _section("drift-importance", "Drift and importance",
                        ['<p class="none">No features.</p>\n'])
    return _section("drift-importance", "Drift and importance", (
        "<p>Each feature's PSI against its importance; the dashed lines are the drift "
        "and high-importance thresholds.</p>\n", _scatter(features, doc.get("thresholds") or {})))


def _scatter(features: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Any]) -> str:
    width, height = 660.0, 380.0
    drift, high = thresholds.get("drift_psi", 0.15), thresholds.get("high_importance", 0.5)
    values = [f["psi"] for f in features if _finite(f.get("psi"))]
    top = max(0.3, drift * 1.2, min(max(values, default=0.0) * 1.1, PSI_AXIS_CAP))
    x, y = _Scale(0.0, 1.0, 60, width - 24), _Scale(0.0, top, height - 48, 34)
    out = _y_axis(y, left=x.start, right=x.end, label="PSI")
    out.append(_line((x.start, y.start), (x.end, y.start), "axis"))
    for tick in _ticks(0.0, 1.0):
        out.append(_text(x(tick), y.start + 15, f"{tick:.3g}", ' text-anchor="middle"'))
    out.append(_text((x.start + x.end) / 2, height - 8, "importance (normalised)",
                     ' text-anchor="middle"'))
    out.append(_line((x.start, y(drift)), (x.end, y(drift)), "threshold"))
    out.append(_line((x(high), y.start), (x(high), y.end), "threshold"))
    out += _legend(x.start, 16, [(HEX[c], c) for c in reversed(SEVERITY)])
    out += _dashed_legend(x.start + 300, 16, f"drift PSI {drift:g}, high importance {high:g}")
    for feature in features:
        out += _point(feature, x, y)
    return _svg(width, height, "Scatter plot of each feature's PSI against its importance",
                out)


def _point(feature: Mapping[str, Any], x: _Scale, y: _Scale) -> list[str]:
    importance, value = feature.get("importance"), feature.get("psi")
    colour = HEX[_colour(feature.get("status"))]
    px = x(min(max(importance, 0.0), 1.0) if _finite(importance) else 0.0)
    known, py, note = False, y(0.0), "no PSI"
    if _finite(value):
        known, py = True, y(min(value, y.high))
        note = f"PSI {value:.4g}" + (", off the scale" if value > y.high else "")
    tip = (f"{feature.get('name')}: importance {_num(importance, 3)}, {note}, "
           f"{_colour(feature.get('status'))}{', drifted' if feature.get('drifted') else ''}")
    fill = colour if known else "none"
    out = [f'<circle cx="{_c(px)}" cy="{_c(py)}" r="5" fill="{fill}" stroke="{colour}">'
           f"<title>{_e(tip)}</title></circle>"]
    if feature.get("drifted"):
        anchor = ' text-anchor="end"' if px > x.end - 90 else ""
        shift = -7 if anchor else 7
        out.append(_text(px + shift, py - 6, _short(str(feature.get("name")), 18), anchor))
    return out


# -- 3. the features table ---------------------------------------------------------------------

def _features(doc: Mapping[str, Any]) -> str:
    head = ("Feature", "Kind", "Importance", "PSI", "JS", "Tail (std)", "KS",
            "Mean diff (std)", "Missing (before)", "Out of range / new", "Status", "Reason")
    features = sorted(doc.get("features") or (), key=_severity)
    predictions = sorted(doc.get("predictions") or (), key=_severity)
    body = [_table(head, (_feature_row(f) for f in features), frozenset(range(2, 10)))
            if features else '<p class="none">No features.</p>\n']
    if predictions:
        body.append("<h3>Prediction columns</h3>\n")
        body.append(_table(("Column", *head[1:]), (_feature_row(p) for p in predictions),
                           frozenset(range(2, 10))))
    return _section("features", "Features", body)


def _severity(entry: Mapping[str, Any]) -> tuple[int, float, str]:
    value = entry.get("psi")
    order = -value if _finite(value) else math.inf
    return SEVERITY.index(_colour(entry.get("status"))), order, str(entry.get("name"))


def _feature_row(f: Mapping[str, Any]) -> list[str]:
    tail = f.get("tail") or {}
    share = f.get("out_of_range_share") if f.get("kind") == "numeric" else f.get(
        "new_level_share")
    name = _e(f.get("name")) + (" ★" if f.get("starred") else "") + (
        " (high)" if f.get("high_importance") else "")
    return [name, _e(f.get("kind", "")), _num(f.get("importance"), 3), _num(f.get("psi")),
            _num(f.get("js")), _num(tail.get("wasserstein_std")), _num(tail.get("ks")),
            _num(f.get("mean_difference_std"), 3), _missing(f), _pct(share),
            _badge(f.get("status")), _e(f.get("reason", ""))]


def _missing(f: Mapping[str, Any]) -> str:
    before = f.get("reference_missing_share")
    return _pct(f.get("missing_share")) + (f" ({_pct(before)})" if _finite(before) else "")


# -- 4. histograms -----------------------------------------------------------------------------

def _histograms(doc: Mapping[str, Any]) -> str:
    reference = _reference_name(doc)
    columns = [*(doc.get("features") or ()), *(doc.get("predictions") or ())]
    figures = [_histogram(c, reference) for c in columns]
    return _section("histograms", "Distributions", (
        f"<p>Share of rows per bucket, {_e(reference)} against the window.</p>\n",
        '<div class="grid">', *figures, "</div>\n"))


def _histogram(column: Mapping[str, Any], reference: str) -> str:
    hist = column.get("histogram") or {}
    labels = [str(label) for label in hist.get("labels") or ()]
    counts = {reference: hist.get("reference"), "current": hist.get("current")}
    caption = f"<figure><figcaption>{_e(column.get('name'))}</figcaption>"
    absent = [k for k, v in counts.items() if v is None]
    if absent or not labels:
        what = " or ".join(f"{k} counts" for k in absent) or "buckets"
        return f'{caption}<p class="none">No {_e(what)}: nothing to plot.</p></figure>'
    ref = _shares(hist["reference"], len(labels))
    cur = _shares(hist["current"], len(labels))
    return caption + _bars(labels, (ref, cur), reference, str(column.get("name"))) + "</figure>"


def _shares(counts: Sequence[int], size: int) -> list[tuple[float, int]]:
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
    x, y = _Scale(0, len(labels), left, left + step * len(labels)), _Scale(
        0.0, high, plot_bottom, top)
    out = _y_axis(y, left=left, right=x.end, label="share of rows", percent=True)
    out.append(_line((left, plot_bottom), (x.end, plot_bottom), "axis"))
    out += _legend(left, 14, [(REFERENCE_HEX, reference), (CURRENT_HEX, "current")])
    for i, label in enumerate(labels):
        out.append(_bucket(label, (ref[i], cur[i]), reference,
                           x=_Scale(i, i + 1, x(i), x(i + 1)), y=y))
    return _svg(width, height, f"Histogram of {name}: {reference} and current share per bucket",
                out)


def _bucket(label: str, pair: tuple[tuple[float, int], tuple[float, int]], reference: str, *,
            x: _Scale, y: _Scale) -> str:
    (p, n), (q, m) = pair
    tip = f"{label}: {reference} {100 * p:.3g} % ({n:,}), current {100 * q:.3g} % ({m:,})"
    bar = (x.end - x.start - 4) / 2
    rects = "".join(
        f'<rect x="{_c(x.start + 2 + k * bar)}" y="{_c(y(share))}" width="{_c(bar)}" '
        f'height="{_c(y.start - y(share))}" fill="{colour}"/>'
        for k, (share, colour) in enumerate(((p, REFERENCE_HEX), (q, CURRENT_HEX))))
    cx, ly = (x.start + x.end) / 2, y.start + 10
    short = _short(label)
    full = f"<title>{_e(label)}</title>" if short != label else ""
    text = (f'<text x="{_c(cx)}" y="{_c(ly)}" text-anchor="end" '
            f'transform="rotate(-45 {_c(cx)} {_c(ly)})">{full}{_e(short)}</text>')
    return f"<g><title>{_e(tip)}</title>{rects}</g>{text}"


# -- 5. predictions over time ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Period:
    """Some consecutive ``over_time`` buckets of one prediction column, drawn as one."""

    start: float  # seconds
    end: float
    label: str
    rows: int
    mean: float | None  # weighted by the non-missing rows
    psi: float | None  # the largest of the buckets'
    counts: tuple[int, ...]


def _over_time(doc: Mapping[str, Any]) -> str:
    entries = list(doc.get("over_time") or ())
    heading = "Predictions over time"
    if not entries:
        return _section("predictions-over-time", heading, [
            '<p class="none">There is no per-period breakdown in this document (run the '
            "stage with --by hour or --by day).</p>\n"])
    step = _step(entries, (doc.get("window") or {}).get("by"))
    starts = _starts(entries, step)
    body = [f"<p>{len(entries):,} periods of {_e(_step_name(step))}"
            + (f", drawn in groups of {_group_size(entries)}" if _group_size(entries) > 1
               else "") + "; periods without records are left out. Each period's PSI is "
            "against the baseline.</p>\n"]
    for column in doc.get("predictions") or ():
        periods = _periods(entries, starts, step, str(column.get("name")))
        body.append(f"<h3>{_e(column.get('name'))}</h3>\n")
        if not periods:
            body.append('<p class="none">No rows of this column in any period.</p>\n')
            continue
        body.append(_lines(periods, column, doc.get("thresholds") or {}))
        body.append(_heatmap(periods, column))
    return _section("predictions-over-time", heading, body)


def _step(entries: Sequence[Mapping[str, Any]], by: Any) -> float:
    if by in STEPS:
        return STEPS[by]
    times = sorted({t for t in (_seconds(e.get("start")) for e in entries) if t is not None})
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return min(gaps, default=3600.0)


def _step_name(step: float) -> str:
    return {3600.0: "an hour", 86400.0: "a day"}.get(step, f"{step:g} s")


def _seconds(value: Any) -> float | None:
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()


def _starts(entries: Sequence[Mapping[str, Any]], step: float) -> list[float]:
    """Each bucket's start in seconds (its position when the start is not a time)."""
    seconds = [_seconds(e.get("start")) for e in entries]
    if any(s is None for s in seconds):
        return [i * step for i in range(len(entries))]
    return [s for s in seconds if s is not None]


def _group_size(entries: Sequence[Any]) -> int:
    return max(1, math.ceil(len(entries) / MAX_COLUMNS))


def _periods(entries: Sequence[Mapping[str, Any]], starts: Sequence[float], step: float,
             name: str) -> list[_Period]:
    size = _group_size(entries)
    found = []
    for i in range(0, len(entries), size):
        group = [(s, e) for s, e in zip(starts[i:i + size], entries[i:i + size], strict=True)
                 if name in (e.get("predictions") or {})]
        if group:
            found.append(_period(group, step, name))
    return found


def _period(group: Sequence[tuple[float, Mapping[str, Any]]], step: float, name: str
            ) -> _Period:
    parts = [e["predictions"][name] for _, e in group]
    width = max(len(p.get("counts") or ()) for p in parts)
    counts = [0] * width
    for part in parts:
        for k, c in enumerate(part.get("counts") or ()):
            counts[k] += int(c)
    weights = [(p["mean"], sum((p.get("counts") or [0])[:-1])) for p in parts
               if _finite(p.get("mean"))]
    total = sum(w for _, w in weights)
    mean = sum(m * w for m, w in weights) / total if total else (
        weights[0][0] if weights else None)
    values = [p["psi"] for p in parts if _finite(p.get("psi"))]
    first, last = str(group[0][1].get("start")), str(group[-1][1].get("start"))
    label = _when(first) + (f" to {_when(last)}" if len(group) > 1 else "")
    return _Period(group[0][0], group[-1][0] + step, label,
                   sum(int(e.get("rows") or 0) for _, e in group), mean,
                   max(values, default=None), tuple(counts))


def _when(iso: str) -> str:
    """``2026-01-02T03:00:00Z`` as ``2026-01-02 03:00``."""
    return iso[:16].replace("T", " ") if len(iso) >= 16 and iso[10:11] == "T" else iso


def _time_axis(periods: Sequence[_Period], x: _Scale, bottom: float) -> list[str]:
    out = [_line((x.start, bottom), (x.end, bottom), "axis")]
    picks = sorted({round(i * (len(periods) - 1) / 4) for i in range(5)})
    for i in picks:
        mid = x((periods[i].start + periods[i].end) / 2)
        out.append(_line((mid, bottom), (mid, bottom + 4), "axis"))
        out.append(_text(mid, bottom + 16, periods[i].label.split(" to ")[0],
                         ' text-anchor="middle"'))
    out.append(_text((x.start + x.end) / 2, bottom + 32, "period start", ' text-anchor="middle"'))
    return out


def _lines(periods: Sequence[_Period], column: Mapping[str, Any],
           thresholds: Mapping[str, Any]) -> str:
    width, left, right = 760.0, 64.0, 736.0
    x = _Scale(periods[0].start, periods[-1].end, left, right)
    name = str(column.get("name"))
    out = _panel(periods, x, _MeanPanel(34.0, 134.0, column.get("reference_mean")))
    drift = thresholds.get("drift_psi", 0.15)
    out += _panel(periods, x, _PsiPanel(184.0, 284.0, drift))
    out += _time_axis(periods, x, 284.0)
    for p in periods:
        tip = (f"{p.label}: {p.rows:,} rows, mean {_num(p.mean)}, PSI {_num(p.psi)}"
               + (" (the largest)" if " to " in p.label else ""))
        out.append(f'<rect x="{_c(x(p.start))}" y="34" width="{_c(x(p.end) - x(p.start))}" '
                   f'height="250" fill="transparent"><title>{_e(tip)}</title></rect>')
    return _svg(width, 326.0, f"Line charts of the mean and the PSI of {name} per period", out)


@dataclass(frozen=True, slots=True)
class _MeanPanel:
    top: float
    bottom: float
    reference: Any

    def values(self, p: _Period) -> float | None:
        return p.mean

    def domain(self, values: Sequence[float]) -> tuple[float, float]:
        known = [*values, *([self.reference] if _finite(self.reference) else [])]
        low, high = min(known), max(known)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        return low - pad, high + pad

    def marks(self, x: _Scale, y: _Scale) -> list[str]:
        if not _finite(self.reference):
            return _legend(x.start, self.top - 8, [(REFERENCE_HEX, "mean prediction")])
        line = _line((x.start, y(self.reference)), (x.end, y(self.reference)), "threshold")
        return [line, *_legend(x.start, self.top - 8, [(REFERENCE_HEX, "mean prediction")]),
                *_dashed_legend(x.start + 150, self.top - 8,
                                f"reference mean {self.reference:.4g}")]


@dataclass(frozen=True, slots=True)
class _PsiPanel:
    top: float
    bottom: float
    drift: float

    def values(self, p: _Period) -> float | None:
        return p.psi

    def domain(self, values: Sequence[float]) -> tuple[float, float]:
        return 0.0, max(0.3, self.drift * 1.2, max(values) * 1.1)

    def marks(self, x: _Scale, y: _Scale) -> list[str]:
        return [_line((x.start, y(self.drift)), (x.end, y(self.drift)), "threshold"),
                *_legend(x.start, self.top - 8, [(CURRENT_HEX, "PSI")]),
                *_dashed_legend(x.start + 70, self.top - 8, f"drift PSI {self.drift:g}")]


def _panel(periods: Sequence[_Period], x: _Scale, panel: _MeanPanel | _PsiPanel
           ) -> list[str]:
    """One line chart over the periods (a message when it has no values)."""
    values = [panel.values(p) for p in periods]
    known = [v for v in values if v is not None]
    is_mean = isinstance(panel, _MeanPanel)
    if not known:
        what = "no mean (not a numeric column)" if is_mean else "no PSI"
        return [_text(x.start, (panel.top + panel.bottom) / 2, what, ' class="none"')]
    low, high = panel.domain(known)
    y = _Scale(low, high, panel.bottom, panel.top)
    out = _y_axis(y, left=x.start, right=x.end, label="mean" if is_mean else "PSI")
    out += panel.marks(x, y)
    colour = REFERENCE_HEX if is_mean else CURRENT_HEX
    out.append(f'<path d="{_path(periods, values, x, y)}" fill="none" stroke="{colour}" '
               'stroke-width="1.5"/>')
    return out


def _path(periods: Sequence[_Period], values: Sequence[float | None], x: _Scale, y: _Scale
          ) -> str:
    """An SVG path through the values at each period's middle, broken at missing values
    and at gaps (a period that does not start where the one before ended); a lone point
    is a short dash."""
    segments: list[list[tuple[float, float]]] = []
    previous: _Period | None = None
    for p, v in zip(periods, values, strict=True):
        if v is None:
            previous = None
            continue
        if previous is None or p.start > previous.end + 1e-6:
            segments.append([])
        segments[-1].append((x((p.start + p.end) / 2), y(v)))
        previous = p
    return "".join(
        "M" + "L".join(f"{_c(a)} {_c(b)}" for a, b in points) if len(points) > 1 else
        f"M{_c(points[0][0] - 1.5)} {_c(points[0][1])}h3" for points in segments)


def _heatmap(periods: Sequence[_Period], column: Mapping[str, Any]) -> str:
    name = str(column.get("name"))
    width = max(len(p.counts) for p in periods)
    labels = [str(v) for v in (column.get("histogram") or {}).get("labels") or ()]
    labels = labels if len(labels) == width else [f"bucket {k + 1}" for k in range(width)]
    shares = [_shares(p.counts, width) for p in periods]
    peak = max([s for row in shares for s, _ in row] + [0.01])
    left, top, row = 104.0, 34.0, 13.0
    bottom = top + row * width
    x = _Scale(periods[0].start, periods[-1].end, left, 736.0)
    out = [_text(left - 6, top + row * k + 10, _short(label), ' text-anchor="end"')
           for k, label in enumerate(labels)]
    rows = _Scale(0, width, top, bottom)
    out.append(f'<g fill="{REFERENCE_HEX}">')
    out += [_heat_column(p, values, labels=labels, rows=rows, x=x, peak=peak)
            for p, values in zip(periods, shares, strict=True)]
    out.append("</g>")
    out += _time_axis(periods, x, bottom)
    out += _heat_legend(left, 18, peak)
    out.append(_text(12, (top + bottom) / 2, "bucket",
                     f' text-anchor="middle" transform="rotate(-90 12 {_c((top + bottom) / 2)})"'))
    return _svg(760.0, bottom + 40, f"Heat map of the share of rows of {name} per bucket and "
                "period", out)


def _heat_column(p: _Period, values: Sequence[tuple[float, int]], *, labels: Sequence[str],
                 rows: _Scale, x: _Scale, peak: float) -> str:
    """One period's cells, their opacity the share of rows over the largest share."""
    tip = f"{p.label}, {p.rows:,} rows: " + ", ".join(
        f"{label} {100 * s:.3g} %" for label, (s, _) in zip(labels, values, strict=True))
    cells = "".join(
        f'<rect x="{_c(x(p.start))}" y="{_c(rows(k))}" width="{_c(x(p.end) - x(p.start))}" '
        f'height="{_c(rows(k + 1) - rows(k))}" fill-opacity="{_c(min(1.0, s / peak), 2)}"/>'
        for k, (s, _) in enumerate(values) if s > 0)
    return f"<g><title>{_e(tip)}</title>{cells}</g>"


def _heat_legend(x: float, y: float, peak: float) -> list[str]:
    out = [_text(x, y, "share of rows: 0 %")]
    for k in range(5):
        out.append(f'<rect x="{_c(x + 112 + 14 * k)}" y="{_c(y - 9)}" width="14" height="10" '
                   f'fill="{REFERENCE_HEX}" fill-opacity="{_c((k + 1) / 5, 2)}"/>')
    out.append(_text(x + 186, y, f"{100 * peak:.3g} %"))
    return out


# -- 6. data quality ---------------------------------------------------------------------------

def _data_quality(doc: Mapping[str, Any]) -> str:
    findings = doc.get("data_quality") or ()
    if not findings:
        return _section("data-quality", "Data quality",
                        ['<p class="none">No data-quality findings.</p>\n'])
    rows = [(_e(f.get("feature")), _e(f.get("finding")), _pct(f.get("value")),
             _pct(f.get("threshold"))) for f in findings]
    return _section("data-quality", "Data quality", [
        _table(("Feature", "Finding", "Value", "Threshold"), rows, frozenset({2, 3}))])


# -- 7. notes ----------------------------------------------------------------------------------

def _notes(doc: Mapping[str, Any]) -> str:
    excluded, warnings = doc.get("excluded") or (), doc.get("warnings") or ()
    body = ["<h3>Excluded records</h3>\n"]
    if excluded:
        rows = [(_e(x.get("job_id")), _e(str(x.get("fingerprint") or "")[:12]),
                 _count(x.get("rows")), _e(x.get("reason"))) for x in excluded]
        body.append(_table(("Job", "Baseline", "Rows", "Reason"), rows, frozenset({2})))
    else:
        body.append('<p class="none">None.</p>\n')
    body.append("<h3>Warnings</h3>\n")
    body.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>\n"
                if warnings else '<p class="none">None.</p>\n')
    return _section("notes", "Notes", body)
