"""The drift document's predictions over time: per prediction column, its mean and PSI
per period (line charts) and the share of rows per bucket and period (a heat map).

Long ``over_time`` series are drawn in at most :data:`MAX_COLUMNS` columns (groups
of consecutive buckets), so a month of hourly buckets stays a few hundred KB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.monitoring.html.drift import shares
from batch.monitoring.html.markup import e, finite, none, num, section, short, when
from batch.monitoring.html.svg import (
    CURRENT_HEX,
    REFERENCE_HEX,
    Scale,
    Span,
    c,
    dashed_legend,
    legend,
    line,
    path,
    starts_of,
    step_name,
    step_of,
    svg,
    text,
    time_axis,
    y_axis,
)

MAX_COLUMNS = 120  # over time: buckets beyond this are drawn in groups


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


def predictions_over_time(doc: Mapping[str, Any]) -> str:
    """Each prediction column's mean and PSI per period, and its heat map."""
    entries = list(doc.get("over_time") or ())
    heading = "Predictions over time"
    if not entries:
        return section("predictions-over-time", heading, [none(
            "There is no per-period breakdown in this document (run the stage with --by "
            "hour or --by day).")])
    step = step_of(entries, (doc.get("window") or {}).get("by"))
    starts = starts_of(entries, step)
    body = [f"<p>{len(entries):,} periods of {e(step_name(step))}"
            + (f", drawn in groups of {_group_size(entries)}" if _group_size(entries) > 1
               else "") + "; periods without records are left out. Each period's PSI is "
            "against the baseline.</p>\n"]
    for column in doc.get("predictions") or ():
        periods = _periods(entries, starts, step, str(column.get("name")))
        body.append(f"<h3>{e(column.get('name'))}</h3>\n")
        if not periods:
            body.append(none("No rows of this column in any period."))
            continue
        body.append(_lines(periods, column, doc.get("thresholds") or {}))
        body.append(_heatmap(periods, column))
    return section("predictions-over-time", heading, body)


def _group_size(entries: Sequence[Any]) -> int:
    return max(1, math.ceil(len(entries) / MAX_COLUMNS))


def _periods(entries: Sequence[Mapping[str, Any]], starts: Sequence[float], step: float,
             name: str) -> list[_Period]:
    size = _group_size(entries)
    found = []
    for i in range(0, len(entries), size):
        group = [(s, entry) for s, entry in zip(starts[i:i + size], entries[i:i + size],
                                                strict=True)
                 if name in (entry.get("predictions") or {})]
        if group:
            found.append(_period(group, step, name))
    return found


def _period(group: Sequence[tuple[float, Mapping[str, Any]]], step: float, name: str
            ) -> _Period:
    parts = [entry["predictions"][name] for _, entry in group]
    width = max(len(p.get("counts") or ()) for p in parts)
    counts = [0] * width
    for part in parts:
        for k, n in enumerate(part.get("counts") or ()):
            counts[k] += int(n)
    weights = [(p["mean"], sum((p.get("counts") or [0])[:-1])) for p in parts
               if finite(p.get("mean"))]
    total = sum(w for _, w in weights)
    mean = sum(m * w for m, w in weights) / total if total else (
        weights[0][0] if weights else None)
    values = [p["psi"] for p in parts if finite(p.get("psi"))]
    first, last = str(group[0][1].get("start")), str(group[-1][1].get("start"))
    label = when(first) + (f" to {when(last)}" if len(group) > 1 else "")
    return _Period(group[0][0], group[-1][0] + step, label,
                   sum(int(entry.get("rows") or 0) for _, entry in group), mean,
                   max(values, default=None), tuple(counts))


def _spans(periods: Sequence[_Period]) -> list[Span]:
    return [Span(p.start, p.end, p.label) for p in periods]


def _lines(periods: Sequence[_Period], column: Mapping[str, Any],
           thresholds: Mapping[str, Any]) -> str:
    width, left, right = 760.0, 64.0, 736.0
    x = Scale(periods[0].start, periods[-1].end, left, right)
    name = str(column.get("name"))
    out = _panel(periods, x, _MeanPanel(34.0, 134.0, column.get("reference_mean")))
    drift = thresholds.get("drift_psi", 0.15)
    out += _panel(periods, x, _PsiPanel(184.0, 284.0, drift))
    out += time_axis(_spans(periods), x, 284.0)
    for p in periods:
        tip = (f"{p.label}: {p.rows:,} rows, mean {num(p.mean)}, PSI {num(p.psi)}"
               + (" (the largest)" if " to " in p.label else ""))
        out.append(f'<rect x="{c(x(p.start))}" y="34" width="{c(x(p.end) - x(p.start))}" '
                   f'height="250" fill="transparent"><title>{e(tip)}</title></rect>')
    return svg(width, 326.0, f"Line charts of the mean and the PSI of {name} per period", out)


@dataclass(frozen=True, slots=True)
class _MeanPanel:
    top: float
    bottom: float
    reference: Any

    def values(self, p: _Period) -> float | None:
        return p.mean

    def domain(self, values: Sequence[float]) -> tuple[float, float]:
        known = [*values, *([self.reference] if finite(self.reference) else [])]
        low, high = min(known), max(known)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        return low - pad, high + pad

    def marks(self, x: Scale, y: Scale) -> list[str]:
        if not finite(self.reference):
            return legend(x.start, self.top - 8, [(REFERENCE_HEX, "mean prediction")])
        mark = line((x.start, y(self.reference)), (x.end, y(self.reference)), "threshold")
        return [mark, *legend(x.start, self.top - 8, [(REFERENCE_HEX, "mean prediction")]),
                *dashed_legend(x.start + 150, self.top - 8,
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

    def marks(self, x: Scale, y: Scale) -> list[str]:
        return [line((x.start, y(self.drift)), (x.end, y(self.drift)), "threshold"),
                *legend(x.start, self.top - 8, [(CURRENT_HEX, "PSI")]),
                *dashed_legend(x.start + 70, self.top - 8, f"drift PSI {self.drift:g}")]


def _panel(periods: Sequence[_Period], x: Scale, panel: _MeanPanel | _PsiPanel
           ) -> list[str]:
    """One line chart over the periods (a message when it has no values)."""
    values = [panel.values(p) for p in periods]
    known = [v for v in values if v is not None]
    is_mean = isinstance(panel, _MeanPanel)
    if not known:
        what = "no mean (not a numeric column)" if is_mean else "no PSI"
        return [text(x.start, (panel.top + panel.bottom) / 2, what, ' class="none"')]
    low, high = panel.domain(known)
    y = Scale(low, high, panel.bottom, panel.top)
    out = y_axis(y, left=x.start, right=x.end, label="mean" if is_mean else "PSI")
    out += panel.marks(x, y)
    stroke = REFERENCE_HEX if is_mean else CURRENT_HEX
    d = path([(p.start, p.end, v) for p, v in zip(periods, values, strict=True)], x, y)
    out.append(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="1.5"/>')
    return out


def _heatmap(periods: Sequence[_Period], column: Mapping[str, Any]) -> str:
    name = str(column.get("name"))
    width = max(len(p.counts) for p in periods)
    labels = [str(v) for v in (column.get("histogram") or {}).get("labels") or ()]
    labels = labels if len(labels) == width else [f"bucket {k + 1}" for k in range(width)]
    cells = [shares(p.counts, width) for p in periods]
    peak = max([s for row in cells for s, _ in row] + [0.01])
    left, top, row = 104.0, 34.0, 13.0
    bottom = top + row * width
    x = Scale(periods[0].start, periods[-1].end, left, 736.0)
    out = [text(left - 6, top + row * k + 10, short(label), ' text-anchor="end"')
           for k, label in enumerate(labels)]
    rows = Scale(0, width, top, bottom)
    out.append(f'<g fill="{REFERENCE_HEX}">')
    out += [_heat_column(p, values, labels=labels, rows=rows, x=x, peak=peak)
            for p, values in zip(periods, cells, strict=True)]
    out.append("</g>")
    out += time_axis(_spans(periods), x, bottom)
    out += _heat_legend(left, 18, peak)
    out.append(text(12, (top + bottom) / 2, "bucket",
                    f' text-anchor="middle" transform="rotate(-90 12 {c((top + bottom) / 2)})"'))
    return svg(760.0, bottom + 40, f"Heat map of the share of rows of {name} per bucket and "
               "period", out)


def _heat_column(p: _Period, values: Sequence[tuple[float, int]], *, labels: Sequence[str],
                 rows: Scale, x: Scale, peak: float) -> str:
    """One period's cells, their opacity the share of rows over the largest share."""
    tip = f"{p.label}, {p.rows:,} rows: " + ", ".join(
        f"{label} {100 * s:.3g} %" for label, (s, _) in zip(labels, values, strict=True))
    cells = "".join(
        f'<rect x="{c(x(p.start))}" y="{c(rows(k))}" width="{c(x(p.end) - x(p.start))}" '
        f'height="{c(rows(k + 1) - rows(k))}" fill-opacity="{c(min(1.0, s / peak), 2)}"/>'
        for k, (s, _) in enumerate(values) if s > 0)
    return f"<g><title>{e(tip)}</title>{cells}</g>"


def _heat_legend(x: float, y: float, peak: float) -> list[str]:
    out = [text(x, y, "share of rows: 0 %")]
    for k in range(5):
        out.append(f'<rect x="{c(x + 112 + 14 * k)}" y="{c(y - 9)}" width="14" height="10" '
                   f'fill="{REFERENCE_HEX}" fill-opacity="{c((k + 1) / 5, 2)}"/>')
    out.append(text(x + 186, y, f"{100 * peak:.3g} %"))
    return out


