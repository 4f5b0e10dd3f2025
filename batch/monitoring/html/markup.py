"""Text of the report: escaping, figures, badges, sections and tables.

Every text taken from a document goes through :func:`e`; the helpers that return
markup (:func:`num`, :func:`badge`, :func:`table` cells) return it escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, TypeGuard

SEVERITY = ("red", "yellow", "green", "grey")  # worst first
HEX = {"grey": "#6b6b6b", "green": "#1a7f37", "yellow": "#b58900", "red": "#c62828"}
DASH = "–"  # what a missing figure shows
LABEL_CHARS = 14  # labels longer than this are cut (the tooltip has them whole)


def e(value: object) -> str:
    return escape(str(value), quote=True)


def num(value: Any, digits: int = 4) -> str:
    return DASH if not finite(value) else f"{value:.{digits}g}"


def pct(value: Any) -> str:
    return DASH if not finite(value) else f"{100 * value:.3g} %"


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else DASH


def finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def colour(value: Any) -> str:
    return value if value in HEX else "grey"


def badge(value: Any) -> str:
    c = colour(value)
    return f'<span class="badge {c}">{c}</span>'


def none(text: str) -> str:
    """A paragraph saying there is nothing to show (``text`` is escaped)."""
    return f'<p class="none">{e(text)}</p>\n'


def section(key: str, heading: str, body: Iterable[str]) -> str:
    return f'<section id="{key}"><h2>{e(heading)}</h2>\n{"".join(body)}</section>\n'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int]) -> str:
    """A table of cells already escaped; the columns in ``numeric`` right-aligned."""
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(r))
        + "</tr>\n" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>\n{body}</tbody></table>\n"


def window_text(window: Mapping[str, Any]) -> str:
    text = f"{window.get('since') or 'the start'} to {window.get('until') or 'now'}"
    if window.get("job_id"):
        text += f", job {window['job_id']}"
    return text + (f", by {window['by']}" if window.get("by") else "")


def seconds(value: Any) -> float | None:
    """An ISO time as POSIX seconds (UTC unless it has a zone); None: not a time."""
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()


def when(iso: str) -> str:
    """``2026-01-02T03:00:00Z`` as ``2026-01-02 03:00``."""
    return iso[:16].replace("T", " ") if len(iso) >= 16 and iso[10:11] == "T" else iso
