"""The monitoring documents as one self-contained HTML page (``batchpred report``).

:func:`render_report` turns the drift document of
:func:`batch.monitoring.drift.drift_document`, and the :class:`Documents` beside it
(accuracy, challengers, health, the deployment's history), into one page: inline
CSS in one ``<style>``, the plots as inline SVG (a ``<title>`` tooltip on each mark,
axis labels, a legend), no script, no link, no external resource, so it opens
offline. Standard library only; every text taken from a document is escaped;
coordinates keep one decimal, and long ``over_time`` series of the drift document
are drawn in at most 120 columns, so a month of hourly buckets stays a few hundred
KB. The same documents give the same page, byte for byte.

Modules: :mod:`.page` (the page, the summary, the notes), :mod:`.drift` and
:mod:`.over_time` (the drift document), :mod:`.accuracy`, :mod:`.challengers`,
:mod:`.service` (health and history); :mod:`.markup` and :mod:`.svg` are the
text and plotting helpers they share.
"""

from __future__ import annotations

from batch.monitoring.html.page import Documents, render_report

__all__ = ["Documents", "render_report"]
