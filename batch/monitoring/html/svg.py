"""Inline SVG for the report: scales, axes, legends, paths and a line chart over time.

Coordinates keep one decimal (about four significant digits); every plot is an
``<svg class="plot" role="img" aria-label=...>``, its marks with ``<title>``
tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.monitoring.html.markup import e, finite, num, seconds

REFERENCE_HEX, CURRENT_HEX = "#0072b2", "#d55e00"  # Okabe-Ito blue and vermillion
DASHED = ' stroke-dasharray="5 3"'
STEPS = {"hour": 3600.0, "day": 86400.0}
LABEL_GAP = 112.0  # pixels: a time label ("2026-01-02 03:00") is about 105 wide
TOOLTIPS = 120  # a line chart's tooltips at most: beyond, a tooltip covers some periods


@dataclass(frozen=True, slots=True)
class Scale:
    """``low``..``high`` onto pixels ``start``..``end`` (linear)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        share = (value - self.low) / span if span else 0.0
        return self.start + share * (self.end - self.start)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time (POSIX seconds) drawn as one column, and its label."""

    start: float
    end: float
    label: str


def c(value: float, decimals: int = 1) -> str:
    """An SVG coordinate (one decimal) or opacity, without trailing zeros."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def svg(width: float, height: float, label: str, body: Iterable[str]) -> str:
    return (f'<svg class="plot" role="img" aria-label="{e(label)}" width="{c(width)}" '
            f'height="{c(height)}" viewBox="0 0 {c(width)} {c(height)}">'
            f'{"".join(body)}</svg>\n')


def text(x: float, y: float, content: str, extra: str = "") -> str:
    return f'<text x="{c(x)}" y="{c(y)}"{extra}>{e(content)}</text>'


def line(a: tuple[float, float], b: tuple[float, float], css: str) -> str:
    return (f'<line class="{css}" x1="{c(a[0])}" y1="{c(a[1])}" x2="{c(b[0])}" '
            f'y2="{c(b[1])}"/>')


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values between ``low`` and ``high``, about ``count`` of them."""
    span = high - low
    if not span > 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def y_axis(y: Scale, *, left: float, right: float, label: str, percent: bool = False
           ) -> list[str]:
    """Grid lines, tick labels and the axis label of a value axis at ``left``."""
    out = [line((left, y.start), (left, y.end), "axis")]
    for tick in ticks(y.low, y.high):
        label_text = f"{100 * tick:.3g} %" if percent else f"{tick:.3g}"
        out.append(line((left, y(tick)), (right, y(tick)), "gridline"))
        out.append(text(left - 4, y(tick) + 4, label_text, ' text-anchor="end"'))
    middle = (y.start + y.end) / 2
    out.append(text(12, middle, label,
                    f' text-anchor="middle" transform="rotate(-90 12 {c(middle)})"'))
    return out


def legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    """Colour swatches and names in a row from (x, y)."""
    out = []
    for colour, name in items:
        out.append(f'<rect x="{c(x)}" y="{c(y - 9)}" width="10" height="10" rx="2" '
                   f'fill="{colour}"/>')
        out.append(text(x + 14, y, name))
        x += 24 + 6.5 * len(name)
    return out


def dashed_legend(x: float, y: float, name: str) -> list[str]:
    return [line((x, y - 4), (x + 16, y - 4), "threshold"), text(x + 20, y, name)]


def path(points: Sequence[tuple[float, float, float | None]], x: Scale, y: Scale) -> str:
    """An SVG path through the values of (start, end, value) spans at each span's middle,
    broken at missing values and at gaps (a span that does not start where the one before
    ended); a lone point is a short dash."""
    segments: list[list[tuple[float, float]]] = []
    previous_end: float | None = None
    for start, end, value in points:
        if value is None:
            previous_end = None
            continue
        if previous_end is None or start > previous_end + 1e-6:
            segments.append([])
        segments[-1].append((x((start + end) / 2), y(value)))
        previous_end = end
    return "".join(
        "M" + "L".join(f"{c(a)} {c(b)}" for a, b in marks) if len(marks) > 1 else
        f"M{c(marks[0][0] - 1.5)} {c(marks[0][1])}h3" for marks in segments)


def step_of(entries: Sequence[Mapping[str, Any]], by: Any) -> float:
    """The length in seconds of the ``over_time`` buckets ``entries`` (by ``hour`` or
    ``day``; otherwise the smallest gap between their starts)."""
    if by in STEPS:
        return STEPS[by]
    times = sorted({t for t in (seconds(entry.get("start")) for entry in entries)
                    if t is not None})
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return min(gaps, default=3600.0)


def step_name(step: float) -> str:
    return {3600.0: "an hour", 86400.0: "a day"}.get(step, f"{step:g} s")


def starts_of(entries: Sequence[Mapping[str, Any]], step: float) -> list[float]:
    """Each bucket's start in seconds (its position when a start is not a time)."""
    found = [seconds(entry.get("start")) for entry in entries]
    if any(s is None for s in found):
        return [i * step for i in range(len(entries))]
    return [s for s in found if s is not None]


def time_axis(spans: Sequence[Span], x: Scale, bottom: float) -> list[str]:
    """The time axis under a chart: five labelled ticks at most, none nearer than
    :data:`LABEL_GAP` pixels to the one before (the labels would overlap)."""
    out = [line((x.start, bottom), (x.end, bottom), "axis")]
    picks = sorted({round(i * (len(spans) - 1) / 4) for i in range(5)})
    last = -math.inf
    for i in picks:
        mid = x((spans[i].start + spans[i].end) / 2)
        if mid - last < LABEL_GAP:
            continue
        last = mid
        out.append(line((mid, bottom), (mid, bottom + 4), "axis"))
        out.append(text(mid, bottom + 16, spans[i].label.split(" to ")[0],
                        ' text-anchor="middle"'))
    out.append(text((x.start + x.end) / 2, bottom + 32, "period start", ' text-anchor="middle"'))
    return out


# -- a line chart over time --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: a value per span (None: none), solid or dashed."""

    name: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


def time_chart(spans: Sequence[Span], series: Sequence[Series], *, label: str, axis: str,
               reference: tuple[str, float] | None = None, percent: bool = False) -> str:
    """Lines of ``series`` over ``spans`` (at least one finite value among them), with an
    optional dashed ``reference`` line (its name, its value) across the chart."""
    width, left, right, top, bottom = 560.0, 60.0, 544.0, 40.0, 180.0
    known = [v for s in series for v in s.values if finite(v)]
    if reference is not None:
        known.append(reference[1])
    low, high = min(known), max(known)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.1
    x, y = Scale(spans[0].start, spans[-1].end, left, right), Scale(low - pad, high + pad,
                                                                      bottom, top)
    out = y_axis(y, left=left, right=right, label=axis, percent=percent)
    out += _series_legend(left, 16, series)
    if reference is not None:
        out.append(line((left, y(reference[1])), (right, y(reference[1])), "threshold"))
        out += dashed_legend(left, 32, f"{reference[0]} {reference[1]:.4g}")
    for s in series:
        values = [v if finite(v) else None for v in s.values]
        d = path([(p.start, p.end, v) for p, v in zip(spans, values, strict=True)], x, y)
        out.append(f'<path d="{d}" fill="none" stroke="{s.colour}" stroke-width="1.5"'
                   f'{DASHED if s.dashed else ""}/>')
    out += time_axis(spans, x, bottom)
    size = max(1, math.ceil(len(spans) / TOOLTIPS))
    for i in range(0, len(spans), size):
        first, last = spans[i], spans[min(i + size, len(spans)) - 1]
        out.append(f'<rect x="{c(x(first.start))}" y="{c(top)}" '
                   f'width="{c(x(last.end) - x(first.start))}" height="{c(bottom - top)}" '
                   f'fill="transparent"><title>{e(_tip(spans, series, i, size))}</title>'
                   "</rect>")
    return svg(width, bottom + 40, label, out)


def _tip(spans: Sequence[Span], series: Sequence[Series], i: int, size: int) -> str:
    """The tooltip of spans ``i`` to ``i + size``: each value, or each series' range."""
    if size == 1:
        return f"{spans[i].label}: " + ", ".join(f"{s.name} {num(s.values[i])}"
                                                 for s in series)
    last = spans[min(i + size, len(spans)) - 1]
    ranges = []
    for s in series:
        known = [v for v in s.values[i:i + size] if finite(v)]
        ranges.append(f"{s.name} {num(min(known))} to {num(max(known))}" if known else
                      f"{s.name} {num(None)}")
    return f"{spans[i].label} to {last.label}: " + ", ".join(ranges)


def _series_legend(x: float, y: float, series: Sequence[Series]) -> list[str]:
    out = []
    for s in series:
        out.append(f'<path d="M{c(x)} {c(y - 4)}h16" stroke="{s.colour}" stroke-width="2"'
                   f'{DASHED if s.dashed else ""}/>')
        out.append(text(x + 20, y, s.name))
        x += 30 + 6.5 * len(s.name)
    return out
