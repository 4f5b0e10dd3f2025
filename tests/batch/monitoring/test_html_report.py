"""The HTML report: one self-contained, escaped, deterministic page of a drift document."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from batch.deployments import DriftThresholds
from batch.monitoring.baseline import (
    PROBABILITY_EDGES,
    Baseline,
    CategoricalProfile,
    NumericProfile,
    _categorical,
    numeric_profile,
)
from batch.monitoring.drift import Merged, Window, drift_document
from batch.monitoring.html import render_report
from batch.monitoring.stats import _count

NASTY = "<b>x&y</b>"
PREDICTION = "y_yes_PREDICTION"
SECTIONS = ("summary", "drift-importance", "features", "histograms", "predictions-over-time",
            "data-quality", "notes")
VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "wbr"})
WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), by="hour")


class _Page(HTMLParser):
    """Tags with their attributes and enclosing section, the svgs and what they hold,
    and the text; fails on a closing tag that does not match the open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str], str | None]] = []
        self.svgs: list[tuple[str | None, dict[str, str], Counter[str]]] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.section: str | None = None
        self.style = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found, self.section))
        if tag == "section":
            self.section = found.get("id")
        if "svg" in self.open:
            self.svgs[-1][2][tag] += 1
        elif tag == "svg":
            self.svgs.append((self.section, found, Counter()))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
        self.open.pop()
        if tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "style":
            self.style += data
        self.text.append(data)

    def in_section(self, key: str, tag: str) -> list[dict[str, str]]:
        return [a for t, a, s in self.tags if t == tag and s == key]

    def svgs_in(self, key: str) -> list[tuple[dict[str, str], Counter[str]]]:
        return [(a, c) for s, a, c in self.svgs if s == key]


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert not parser.open, parser.open
    return parser


def _baseline(names: list[str], rng: np.random.Generator) -> Baseline:
    features: list[NumericProfile | CategoricalProfile] = [
        numeric_profile(name, rng.normal(0, 1, 4000)) for name in names]
    features.append(_categorical("purpose", np.array(
        rng.choice(["car", "home", "education", "travel"], 4000, p=[.4, .3, .2, .1]),
        dtype=object)))
    probs = numeric_profile(PREDICTION, rng.beta(2, 5, 4000), PROBABILITY_EDGES)
    importance = {name: round(1.0 - i / max(1, len(names)), 3) for i, name in enumerate(names)}
    importance["purpose"] = 0.2
    return Baseline(rows=4000, features=tuple(features), predictions=(probs,),
                    prediction_source="training", importance=importance,
                    importance_source="given", fingerprint="f" * 64)


def _merged(baseline: Baseline, rng: np.random.Generator, rows: int = 3000) -> Merged:
    columns = {}
    for i, profile in enumerate(baseline.features):
        if isinstance(profile, CategoricalProfile):
            values = rng.choice(["car", "home", "boat", "travel"], rows, p=[.2, .3, .3, .2])
            columns[profile.name] = _count(profile, np.array(values, dtype=object))
        else:  # the first ones shift most; some missing values
            x = rng.normal(0.8 / (1 + i), 1 + 0.1 * (i % 3), rows)
            x[rng.random(rows) < 0.02 * (i % 4)] = np.nan
            columns[profile.name] = _count(profile, x)
    for profile in baseline.predictions:
        columns[profile.name] = _count(profile, rng.beta(2.5, 4, rows))
    return Merged("f" * 64, columns, ("job-2", "job-<1>"))


def _over_time(baseline: Baseline, hours: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    names = [p.name for p in baseline.features]
    width = len(baseline.predictions[0].counts)
    entries = []
    for h in range(hours):
        counts = rng.integers(0, 60, width).tolist()
        entries.append({
            "start": (start + timedelta(hours=h)).isoformat().replace("+00:00", "Z"),
            "rows": sum(counts),
            "psi": {name: round(float(rng.random()) * 0.3, 6) for name in names},
            "predictions": {PREDICTION: {"psi": float(rng.random()) * 0.2, "counts": counts,
                                         "mean": 0.3 + 0.05 * float(rng.random())}}})
    return entries


def _document(names: list[str], hours: int = 3, seed: int = 7, *,
              current: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    baseline = _baseline(names, rng)
    merged = _merged(baseline, rng) if current else None
    return drift_document(
        baseline, merged, deployment_id="credit <risk>", window=WINDOW,
        thresholds=DriftThresholds(), over_time=_over_time(baseline, hours, rng) if current
        else [],
        excluded=[{"job_id": "job-<old>", "fingerprint": "a" * 64, "rows": 120,
                   "reason": "counted on baseline aaaa & co"}],
        warnings=["chunk 3 of job-2 has no <stats>"])


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return _document(["income", NASTY, "tenure", "debt_ratio"])


@pytest.fixture(scope="module")
def page(doc: dict[str, Any]) -> str:
    return render_report(doc)


def test_the_page_is_self_contained(page: str) -> None:
    parsed = _parse(page)
    tags = Counter(t for t, _, _ in parsed.tags)
    assert tags["style"] == 1 and tags["html"] == tags["head"] == tags["body"] == 1
    assert not tags["link"] and not tags["iframe"] and not tags["img"]
    assert all("src" not in a for t, a, _ in parsed.tags if t == "script")
    assert not [a for _, a, _ in parsed.tags if "src" in a or "href" in a]
    assert "http://" not in page and "https://" not in page and "url(" not in parsed.style
    assert "@import" not in parsed.style and "@font-face" not in parsed.style


def test_the_title_names_the_deployment_and_the_window(page: str) -> None:
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "credit &lt;risk&gt;" in title
    assert "2026-03-01T00:00:00Z" in title and "2026-03-02T00:00:00Z" in title


def test_every_section_is_there_in_order(page: str) -> None:
    parsed = _parse(page)
    ids = [a.get("id") for t, a, _ in parsed.tags if t == "section"]
    assert ids == list(SECTIONS)
    for key in SECTIONS:
        assert parsed.in_section(key, "h2"), key


def test_every_svg_is_an_accessible_plot(page: str) -> None:
    parsed = _parse(page)
    assert parsed.svgs
    for _, attrs, _ in parsed.svgs:
        assert attrs.get("role") == "img" and attrs.get("aria-label")
        assert attrs.get("class") == "plot"


def test_the_scatter_has_a_circle_per_feature(doc: dict[str, Any], page: str) -> None:
    parsed = _parse(page)
    (scatter, marks), = parsed.svgs_in("drift-importance")
    assert marks["circle"] == len(doc["features"]) == 5
    assert marks["title"] >= len(doc["features"]) and marks["line"] >= 2  # thresholds
    assert any(f["drifted"] for f in doc["features"])  # labelled in the plot


def test_a_histogram_per_feature_and_prediction(doc: dict[str, Any], page: str) -> None:
    parsed = _parse(page)
    plots = parsed.svgs_in("histograms")
    assert len(plots) == len(doc["features"]) + len(doc["predictions"])
    for (_, marks), column in zip(plots, [*doc["features"], *doc["predictions"]], strict=True):
        assert marks["rect"] >= 2 * len(column["histogram"]["labels"])  # two bars per bucket


def test_over_time_has_plots_per_prediction_column(doc: dict[str, Any], page: str) -> None:
    parsed = _parse(page)
    plots = parsed.svgs_in("predictions-over-time")
    for column in doc["predictions"]:
        assert [a for a, _ in plots if column["name"] in a["aria-label"]], column["name"]
    assert len(plots) == 2 * len(doc["predictions"])  # lines, then the heat map


def test_the_features_table_lists_every_feature_worst_first(doc: dict[str, Any],
                                                          page: str) -> None:
    parsed = _parse(page)
    assert len(parsed.in_section("features", "tr")) == 1 + len(doc["features"]) + 1 + len(
        doc["predictions"])  # a header row per table
    features = page.split('id="features"', 1)[1].split("</table>", 1)[0]
    order = sorted(doc["features"], key=lambda f: (
        ("red", "yellow", "green", "grey").index(f["status"]), -(f["psi"] or 0)))
    positions = [features.index(f"<td>{_escaped(f['name'])}") for f in order]
    assert positions == sorted(positions)


def _escaped(name: str) -> str:
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_text_from_the_document_is_escaped(page: str) -> None:
    assert NASTY not in page and "<risk>" not in page and "job-<1>" not in page
    assert "&lt;b&gt;x&amp;y&lt;/b&gt;" in page
    assert NASTY in "".join(_parse(page).text)  # shows as written


def test_data_quality_and_notes(doc: dict[str, Any], page: str) -> None:
    parsed = _parse(page)
    assert doc["data_quality"]  # the new "boat" level at least
    assert len(parsed.in_section("data-quality", "tr")) == 1 + len(doc["data_quality"])
    notes = page.split('id="notes"', 1)[1]
    assert "job-&lt;old&gt;" in notes and "aaaaaaaaaaaa<" in notes and "a" * 13 not in notes
    assert "no &lt;stats&gt;" in notes


def test_an_empty_window_renders_grey() -> None:
    doc = _document(["income", NASTY], current=False)
    assert doc["status"]["colour"] == "grey"
    page = render_report(doc)
    parsed = _parse(page)
    summary = page.split('id="summary"', 1)[1].split("</section>", 1)[0]
    assert 'Drift status <span class="badge grey">grey</span>' in summary
    assert [a.get("id") for t, a, _ in parsed.tags if t == "section"] == list(SECTIONS)
    (_, marks), = parsed.svgs_in("drift-importance")
    assert marks["circle"] == len(doc["features"])  # drawn hollow at zero
    assert not parsed.svgs_in("histograms") and "No current counts" in page
    assert "no per-period breakdown" in page and "No data-quality findings" in page


def test_a_month_of_hours_on_25_features_is_small_and_deterministic() -> None:
    doc = _document([f"feature_{i:02d}" for i in range(24)], hours=720, seed=11)
    assert len(doc["features"]) == 25 and len(doc["over_time"]) == 720
    page = render_report(doc)
    assert len(page.encode()) < 2_000_000
    assert render_report(doc) == page
    parsed = _parse(page)
    assert len(parsed.svgs_in("histograms")) == 26
    (_, marks), = parsed.svgs_in("drift-importance")
    assert marks["circle"] == 25


def test_a_sparse_hand_made_document_still_renders() -> None:
    """Figures left out or None, an unknown colour, a categorical prediction without a
    mean, a period without the column, starts that are not times: no exception."""
    doc = {
        "deployment": "d", "window": {"since": None, "until": None, "by": None},
        "against": "previous", "rows": 10, "jobs": ["j"], "status": {"colour": "purple"},
        "prediction_status": "grey", "thresholds": {},
        "features": [{"name": "a", "kind": "numeric", "importance": None, "psi": None,
                      "status": "grey", "histogram": {"labels": [], "reference": None,
                                                      "current": None}},
                     {"name": "b", "kind": "categorical", "psi": 9.0, "status": "red",
                      "drifted": True, "importance": 1.0, "tail": None,
                      "histogram": {"labels": ["u", "v"], "reference": [0, 0],
                                    "current": [3, 1, 7]}}],
        "predictions": [{"name": "p", "kind": "categorical", "psi": 0.01, "status": "green",
                         "histogram": {"labels": ["A", "B", "missing"],
                                       "reference": [5, 5, 0], "current": [6, 4, 0]}}],
        "data_quality": [{"feature": "b", "finding": "f", "value": None, "threshold": 0.1}],
        "over_time": [{"start": "period one", "rows": 4,
                       "predictions": {"p": {"psi": None, "counts": [1, 3], "mean": None}}},
                      {"start": "period two", "rows": 2, "psi": {}, "predictions": {}}],
        "excluded": [], "warnings": []}
    page = render_report(doc)
    parsed = _parse(page)
    assert [a.get("id") for t, a, _ in parsed.tags if t == "section"] == list(SECTIONS)
    assert 'badge grey">grey</span>' in page  # the unknown colour shows grey
    assert "window before" in page and "no mean" in page and "off the scale" in page
    assert len(parsed.svgs_in("predictions-over-time")) == 2
