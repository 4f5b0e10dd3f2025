"""The challengers document's section: the comparison table and a dot plot of each
challenger's paired difference of the primary metric with its 95% interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batch.monitoring.html.markup import (
    HEX,
    badge,
    count,
    e,
    finite,
    none,
    num,
    pct,
    section,
    table,
    window_text,
)
from batch.monitoring.html.svg import REFERENCE_HEX, Scale, c, line, svg, text
from batch.monitoring.metrics import METRICS

ACTION_HEX = {"promote": HEX["green"], "keep": HEX["red"], "wait": HEX["grey"]}


def challengers_section(doc: Mapping[str, Any]) -> str:
    """The comparison's status, then each challenger against the champion on the same
    rows, and the recommendation."""
    metric = str(doc.get("primary_metric"))
    label = METRICS[metric].label if metric in METRICS else metric
    found = list(doc.get("challengers") or ())
    status = doc.get("status") or {}
    body = [f"<p>Challengers status {badge(status.get('colour'))} "
            f"{e(status.get('rule', ''))}</p>\n",
            f"<p>Window {e(window_text(doc.get('window') or {}))}; champion "
            f"{e(str(doc.get('champion') or '')[:12])} ({count(doc.get('champion_rows'))} "
            f"rows). The paired difference of {e(label)} is taken per hour; positive: the "
            "challenger is better.</p>\n"]
    if not found:
        body.append(none("No challenger predictions in the window."))
        return section("challengers", "Champion and challengers", body)
    head = ("Challenger", "Model", "Rows", "Agreement", "Mean difference", "Matched",
            f"Champion {label}", f"Challenger {label}", "Paired difference (95 %)", "Hours",
            "p95 latency ×", "Recommendation")
    body.append(table(head, [_row(ch, metric) for ch in found], frozenset(range(2, 11))))
    body.append(_dots(found, label))
    return section("challengers", "Champion and challengers", body)


def _row(ch: Mapping[str, Any], metric: str) -> list[str]:
    paired = ch.get("paired") or {}
    interval = (f"{num(paired.get('mean'))} [{num(paired.get('low'))}, "
                f"{num(paired.get('high'))}]" if finite(paired.get("low")) else
                num(paired.get("mean")))
    advice = ch.get("recommendation") or {}
    return [e(ch.get("id")), e(str(ch.get("model_id") or "")[:12]), count(ch.get("rows")),
            pct(ch.get("agreement")), num((ch.get("difference") or {}).get("mean")),
            count(ch.get("matched")), num((ch.get("champion_metrics") or {}).get(metric)),
            num((ch.get("challenger_metrics") or {}).get(metric)), interval,
            count(paired.get("buckets")), num(ch.get("latency_ratio"), 3),
            f"<strong>{e(advice.get('action', ''))}</strong>: {e(advice.get('why', ''))}"]


def _dots(found: Sequence[Mapping[str, Any]], label: str) -> str:
    """A row per challenger: its mean paired difference (a dot) and interval (a bar)."""
    width, left, right, top, row = 640.0, 120.0, 616.0, 30.0, 28.0
    reach = max([abs(v) for ch in found for v in _interval(ch) if finite(v)] + [1e-3]) * 1.15
    x = Scale(-reach, reach, left, right)
    bottom = top + row * len(found)
    out = [line((x(0.0), top - 6), (x(0.0), bottom), "threshold"),
           line((left, bottom), (right, bottom), "axis"),
           text(x(0.0), 14, f"{label}: challenger - champion (positive: better)",
                ' text-anchor="middle"')]
    for value in (-reach / 1.15, 0.0, reach / 1.15):
        out.append(text(x(value), bottom + 15, f"{value:.3g}", ' text-anchor="middle"'))
    for i, ch in enumerate(found):
        out += _dot(ch, x, top + row * i + row / 2)
    return svg(width, bottom + 26, f"Dot plot of each challenger's paired difference of "
               f"{label} with its 95% interval", out)


def _interval(ch: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    paired = ch.get("paired") or {}
    return paired.get("low"), paired.get("mean"), paired.get("high")


def _dot(ch: Mapping[str, Any], x: Scale, y: float) -> list[str]:
    low, mean, high = _interval(ch)
    action = str((ch.get("recommendation") or {}).get("action", "wait"))
    fill = ACTION_HEX.get(action, REFERENCE_HEX)
    out = [text(x.start - 8, y + 4, str(ch.get("id")), ' text-anchor="end"')]
    if not finite(mean):
        return [*out, text(x.start + 4, y + 4, "no paired difference yet", ' class="none"')]
    tip = f"{ch.get('id')}: {num(mean)}"
    if finite(low) and finite(high):
        tip += f" [{num(low)}, {num(high)}]"
        out.append(f'<path d="M{c(x(low))} {c(y)}H{c(x(high))}M{c(x(low))} {c(y - 5)}v10'
                   f'M{c(x(high))} {c(y - 5)}v10" stroke="{fill}" stroke-width="2"/>')
    out.append(f'<circle cx="{c(x(mean))}" cy="{c(y)}" r="5" fill="{fill}">'
               f"<title>{e(tip + f', {action}')}</title></circle>")
    return out
