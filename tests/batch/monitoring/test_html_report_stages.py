"""The report beside drift: accuracy (with the new predicted-against-actual figure,
checked against numpy), the challengers, service health and the history, from real
stage documents of records written straight to a store; and a stage left out is a
note, never an error."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from batch.deployments import DeploymentRegistry
from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
from batch.monitoring.challengers import (
    ChallengersRequest,
    challengers_status,
    run_challengers,
)
from batch.monitoring.health import health_document
from batch.monitoring.html import Documents, render_report
from batch.monitoring.markdown import summary_of
from batch.monitoring.plan import empty_reason, stage_plan
from batch.monitoring.records import (
    ACTUALS_SCHEMA,
    ChunkFacts,
    Producer,
    health_table,
    predictions_table,
)
from batch.monitoring.store import MonitoringStore
from batch.scoring.prediction_log import LOG_SCHEMA

HOURS = 5
ROWS = 200  # per hour
START = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
ALL = ("summary", "drift-importance", "features", "histograms", "predictions-over-time",
       "data-quality", "accuracy", "predicted-vs-actual", "challengers", "health", "history",
       "notes")


def _log(ids: list[str], p: np.ndarray) -> pa.RecordBatch:
    labels = np.where(p > 0.5, "yes", "no")
    probs = np.column_stack([1 - p, p]).reshape(-1)
    return pa.RecordBatch.from_arrays([
        pa.array(ids), pa.array(np.arange(len(ids)), pa.int64()), pa.array(p),
        pa.array(labels.tolist()),
        pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * len(ids) + 1, 2, dtype=np.int32)),
                                 pa.array(probs))], schema=LOG_SCHEMA)


def _actuals(ids: list[str], labels: list[str]) -> pa.Table:
    n, received = len(ids), datetime(2026, 12, 1, tzinfo=UTC)
    return pa.table({
        "schema_version": [1] * n, "deployment_id": ["rpt"] * n, "model_id": [""] * n,
        "role": [""] * n, "source": ["actuals"] * n, "job_id": ["up"] * n,
        "chunk_index": [0] * n, "ts_start": [received] * n, "ts_end": [received] * n,
        "hour": [received] * n, "consumer": [None] * n, "remote_address": [None] * n,
        "association_id": ids, "seq": list(range(n)), "actual_value": [None] * n,
        "actual_label": labels, "timestamp": [None] * n, "was_acted_on": [None] * n},
        schema=ACTUALS_SCHEMA)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, logistic_package) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Deployment ``rpt`` (a settings change in its history), HOURS one-chunk jobs of the
    champion and a challenger, actuals for all but every fifth row, and a request of a
    real-time consumer; returns the stages' documents and the rows behind them."""
    root = tmp_path_factory.mktemp("report")
    registry = DeploymentRegistry(root / "home")
    deployment = registry.create("rpt", logistic_package.package)
    registry.update_settings("rpt", deployment.settings.model_copy(update={"slo_p95_ms": 250}))
    store = MonitoringStore(str(root / "store"))
    rng = np.random.default_rng(3)
    truth: dict[str, str] = {}
    hours: list[tuple[np.ndarray, np.ndarray]] = []
    for h in range(HOURS):
        y = rng.random(ROWS) < 0.3 + 0.05 * h
        noise = rng.normal(size=ROWS)
        a = 1 / (1 + np.exp(-(1.0 * (2 * y - 1) + 1.2 * noise - 0.5)))
        b = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + 1.2 * noise - 0.5)))
        ids = [f"h{h}-{i}" for i in range(ROWS)]
        at, job = START + timedelta(hours=h), f"job{h}"
        fact = ChunkFacts(0, ROWS, 0, 1.0, at, None, score_seconds=1.0)
        champion = Producer("rpt", deployment.package_digest, job)
        challenger = Producer("rpt", "c" * 64, job, role="challenger")
        store.publish("rpt", job, {
            "predictions": pa.concat_tables([predictions_table(champion, [fact], [_log(ids, a)]),
                                             predictions_table(challenger, [fact],
                                                               [_log(ids, b)])]),
            "health": pa.concat_tables([health_table(champion, [fact]),
                                        health_table(challenger, [fact])])})
        kept = np.arange(ROWS) % 5 != 0  # every fifth row has no actual yet
        truth.update({i: ("yes" if t else "no") for i, t, k in zip(ids, y, kept, strict=True)
                      if k})
        hours.append((a[kept], y[kept]))
    requests = Producer("rpt", deployment.package_digest, "flush-1", source="realtime",
                        consumer="<crm>")
    store.publish("rpt", "flush-1", {"health": health_table(requests, [ChunkFacts(
        0, 40, 0, 0.4, START + timedelta(hours=1), None, requests=40,
        latency=tuple([0] * 5 + [40] + [0] * 10), user_errors=1)])})
    store.publish("rpt", "up", {"actuals": _actuals(list(truth), list(truth.values()))})
    since, until = START - timedelta(hours=1), START + timedelta(hours=HOURS + 1)
    uri = str(root / "store")
    docs = {
        "drift": _drift(since, until),  # the package has no baseline
        "accuracy": run_accuracy(AccuracyRequest("rpt", since=since, until=until, by="hour",
                                                 store=uri), registry),
        "challengers": run_challengers(ChallengersRequest("rpt", since=since, until=until,
                                                          store=uri), registry),
        "health": health_document(store.read("rpt", "health", since=since, until=until).table,
                                  deployment="rpt", since=since, until=until, slo_ms=250),
        "history": [e.model_dump(mode="json") for e in registry.history("rpt")],
    }
    return {"docs": docs, "hours": hours, "digest": deployment.package_digest,
            "deployment": registry.get("rpt")}


def _drift(since: datetime, until: datetime) -> dict[str, Any]:
    window = {"since": since.isoformat(), "until": until.isoformat(), "by": "hour"}
    return {"kind": "drift", "deployment": "rpt", "window": window, "against": "baseline",
            "rows": 0, "jobs": [], "status": {"colour": "grey", "rule": "no rows",
                                              "value": 0, "threshold": 500},
            "prediction_status": "grey", "features": [], "predictions": [], "over_time": [],
            "data_quality": [], "excluded": [], "warnings": []}


class _Page(HTMLParser):
    """Sections in order, what each holds (tags, svgs and their marks), and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.tags: dict[str, Counter[str]] = {}
        self.svgs: dict[str, list[tuple[str, Counter[str]]]] = {}
        self.text: list[str] = []
        self._svg: Counter[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(found["id"])
        where = self.sections[-1] if self.sections else ""
        self.tags.setdefault(where, Counter())[tag] += 1
        if tag == "svg":
            assert found.get("role") == "img" and found.get("aria-label")
            self._svg = Counter()
            self.svgs.setdefault(where, []).append((found["aria-label"], self._svg))
        elif self._svg is not None:
            self._svg[tag] += 1
            if tag == "path" and "stroke-dasharray" in found:
                self._svg["dashed"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def _documents(docs: dict[str, Any], **changes: Any) -> Documents:
    parts = {k: docs[k] for k in ("accuracy", "challengers", "health", "history")}
    return Documents(**{**parts, **changes})


def test_the_accuracy_document_has_the_mean_prediction_beside_the_outcome(world) -> None:  # type: ignore[no-untyped-def]
    doc = world["docs"]["accuracy"]
    buckets = doc["over_time"]
    assert len(buckets) == HOURS
    for bucket, (p, y) in zip(buckets, world["hours"], strict=True):
        figure = bucket["predicted_vs_actual"]
        assert figure["rows"] == len(p) == bucket["matched"]
        assert figure["predicted"] == pytest.approx(float(np.mean(p)), rel=1e-12)
        assert figure["actual"] == pytest.approx(float(np.mean(y)), rel=1e-12)
    p = np.concatenate([p for p, _ in world["hours"]])
    y = np.concatenate([y for _, y in world["hours"]])
    overall = doc["models"][world["digest"]]["predicted_vs_actual"]
    assert overall["rows"] == len(p)
    assert overall["predicted"] == pytest.approx(float(np.mean(p)), rel=1e-12)
    assert overall["actual"] == pytest.approx(float(np.mean(y)), rel=1e-12)


def test_a_report_of_every_stage_is_self_contained_small_and_stable(world) -> None:  # type: ignore[no-untyped-def]
    docs = world["docs"]
    page = render_report(docs["drift"], _documents(docs))
    assert page == render_report(docs["drift"], _documents(docs))
    assert "<script" not in page.lower() and "http" not in page
    assert "src=" not in page and "href=" not in page and "url(" not in page
    assert len(page.encode()) < 250_000
    parsed = _parse(page)
    assert parsed.sections == list(ALL)
    accuracy = parsed.svgs["accuracy"]
    assert len(accuracy) == 6  # AUC first, then the other binary metrics
    assert "AUC" in accuracy[0][0]
    estimated = [label for label, marks in accuracy if marks["dashed"]]
    assert {"Line chart of AUC per period", "Line chart of Accuracy per period",
            "Line chart of F1 per period"} <= set(estimated)
    (over_time, over_marks), (calibration, marks) = parsed.svgs["predicted-vs-actual"]
    assert "observed positive rate" in over_time and over_marks["path"] >= 2
    assert marks["circle"] == HOURS
    ((dots, dot_marks),) = parsed.svgs["challengers"]
    assert "paired difference" in dots and dot_marks["circle"] == 1
    assert parsed.tags["health"]["table"] == 2  # per source, per consumer
    assert parsed.tags["history"]["tr"] == 1 + 2  # created, settings changed
    text = "".join(parsed.text)
    assert "<crm>" in text and "slo_p95_ms: 1000" in text


def test_the_summary_shows_every_stage(world) -> None:  # type: ignore[no-untyped-def]
    docs = world["docs"]
    page = render_report(docs["drift"], _documents(docs))
    summary = page.split('id="summary"', 1)[1].split("</section>", 1)[0]
    for stage in ("Drift", "Prediction drift", "Accuracy", "Challengers", "Service health",
                  "History"):
        assert f"<td>{stage}</td>" in summary, stage
    colour = docs["accuracy"]["status"]["colour"]
    assert f'<td>Accuracy</td><td><span class="badge {colour}">' in summary
    health = docs["health"]["status"]["colour"]
    assert f'<td>Service health</td><td><span class="badge {health}">' in summary
    comparison = docs["challengers"]["status"]
    assert f'<td>Challengers</td><td><span class="badge {comparison["colour"]}">' in summary
    assert comparison["colour"] == "grey"  # its challenger is none of the deployment's
    assert comparison["rule"] in summary
    section = page.split('id="challengers"', 1)[1].split("</section>", 1)[0]
    assert "Challengers status" in section and comparison["rule"] in section


def test_a_stage_left_out_is_a_note(world) -> None:  # type: ignore[no-untyped-def]
    docs = world["docs"]
    why = "no challengers (batchpred deploy add-challenger rpt --model PKG)"
    page = render_report(docs["drift"], _documents(docs, challengers=None,
                                                   left_out={"challengers": why}))
    parsed = _parse(page)
    assert "challengers" not in parsed.sections and parsed.sections[-1] == "notes"
    summary = page.split('id="summary"', 1)[1].split("</section>", 1)[0]
    assert "<td>Challengers</td><td>left out</td>" in summary
    notes = page.split('id="notes"', 1)[1]
    assert "Stages left out" in notes and "add-challenger rpt" in notes


def test_a_drift_only_report_has_the_drift_sections() -> None:
    doc = {"deployment": "d", "window": {}, "status": {"colour": "grey"}, "features": [],
           "predictions": [], "over_time": [], "data_quality": []}
    parsed = _parse(render_report(doc))
    assert parsed.sections == ["summary", "drift-importance", "features", "histograms",
                               "predictions-over-time", "data-quality", "notes"]


def test_which_stages_can_run(world) -> None:  # type: ignore[no-untyped-def]
    deployment = world["deployment"]
    planned = stage_plan(deployment)
    assert planned.run == ("drift", "accuracy", "health", "history")
    assert "add-challenger rpt" in planned.left_out["challengers"]
    off = deployment.model_copy(update={"settings": deployment.settings.model_copy(
        update={"association_id": None})})
    assert "association id" in stage_plan(off, ("accuracy",)).left_out["accuracy"]
    with pytest.raises(ValueError, match="no stage 'bogus'"):
        stage_plan(deployment, ("bogus",))
    docs = world["docs"]
    assert empty_reason(docs["accuracy"]) is None
    assert empty_reason({**docs["accuracy"], "predictions": 0}) is not None
    assert empty_reason({**docs["challengers"], "challengers": []}) is not None


def test_every_stage_has_a_markdown_summary(world) -> None:  # type: ignore[no-untyped-def]
    docs = world["docs"]
    found = {kind: summary_of(docs[kind]) for kind in ("drift", "accuracy", "challengers",
                                                       "health")}
    assert found["accuracy"].markdown.startswith("# Accuracy of rpt: **")
    assert [r["model"] for r in found["accuracy"].rows] == [world["digest"]]
    assert {r["source"] for r in found["health"].rows} == {"batch", "realtime",
                                                          "consumer <crm>"}
    assert found["challengers"].rows[0]["model"] == "c" * 64
    comparison = docs["challengers"]
    heading, _, rule = found["challengers"].markdown.splitlines()[:3]
    assert heading == "# Challengers of rpt: **GREY**"  # its challenger is none of rpt's
    assert rule == comparison["status"]["rule"]
    # as if it were rpt's: better on every hour, so yellow, and the rule names it
    current = challengers_status(comparison["challengers"], comparison["primary_metric"])
    heading, _, rule = summary_of({**comparison, "status": current}).markdown.splitlines()[:3]
    assert heading == "# Challengers of rpt: **YELLOW**"
    assert rule.startswith("challenger '(removed)' is better on AUC")
    with pytest.raises(ValueError, match="no summary"):
        summary_of({"kind": "nope"})


def test_a_sparse_accuracy_document_still_renders(tmp_path: Path) -> None:
    """Figures left out or None, an unknown target, no over_time: no exception."""
    sparse = {"kind": "accuracy", "target": {"type": "binary"}, "status": {},
              "models": {"m": {"metrics": {"auc": None}}},
              "over_time": [{"start": "not a time", "metrics": {}, "predicted_vs_actual": {}}]}
    page = render_report({"deployment": "d"}, Documents(
        accuracy=sparse, challengers={"challengers": [{"id": "c1", "paired": {}}]},
        health={}, history=[]))
    parsed = _parse(page)
    assert {"accuracy", "predicted-vs-actual", "challengers", "health", "history"} <= set(
        parsed.sections)
    assert "No value in any period." in page and "no paired difference yet" in page


def test_a_month_of_hourly_accuracy_stays_small(world) -> None:  # type: ignore[no-untyped-def]
    """720 hourly buckets: the lines keep every bucket; tooltips and the predicted
    against actual plots take groups of buckets (their means weighted by rows)."""
    docs = world["docs"]
    base = docs["accuracy"]["over_time"]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    month = [{**base[i % len(base)], "start": (start + timedelta(hours=i)).isoformat()}
             for i in range(720)]
    page = render_report(docs["drift"], Documents(accuracy={**docs["accuracy"],
                                                            "over_time": month}))
    assert len(page.encode()) < 400_000
    parsed = _parse(page)
    (_, line), (_, scatter) = parsed.svgs["predicted-vs-actual"]
    assert scatter["circle"] == 120 and line["rect"] == 120
    assert all(marks["rect"] == 120 for _, marks in parsed.svgs["accuracy"])


@pytest.mark.parametrize("fixture", ["regressor_package", "multiclass_package"])
def test_predicted_against_actual_of_the_other_targets(fixture: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    """Regression: the mean prediction and the mean actual; multiclass: the mean
    probability of the predicted class and the share predicted right (numpy's)."""
    package = request.getfixturevalue(fixture).package
    registry = DeploymentRegistry(tmp_path / "home")
    digest = registry.create("rpt", package).package_digest
    classes = [str(c) for c in package.manifest.target.classes]
    rng = np.random.default_rng(5)
    n, ids = 300, [f"r{i}" for i in range(300)]
    if classes:
        probs = rng.dirichlet(np.ones(len(classes)), n)
        labels = [classes[k] for k in probs.argmax(axis=1)]
        actual = [classes[k] for k in rng.integers(0, len(classes), n)]
        log = pa.RecordBatch.from_arrays([
            pa.array(ids), pa.array(np.arange(n), pa.int64()), pa.array(probs.max(axis=1)),
            pa.array(labels), pa.array(probs.tolist(), pa.list_(pa.float64()))],
            schema=LOG_SCHEMA)
        expected = (probs.max(axis=1).mean(), np.mean(np.array(labels) == np.array(actual)))
        actuals = _actuals(ids, actual)
    else:
        value, y = rng.normal(3000, 500, n), rng.normal(3100, 600, n)
        log = pa.RecordBatch.from_arrays([
            pa.array(ids), pa.array(np.arange(n), pa.int64()), pa.array(value),
            pa.nulls(n, pa.string()), pa.nulls(n, pa.list_(pa.float64()))], schema=LOG_SCHEMA)
        expected = (value.mean(), y.mean())
        actuals = _actuals(ids, [None] * n).set_column(
            ACTUALS_SCHEMA.get_field_index("actual_value"), ACTUALS_SCHEMA.field("actual_value"),
            pa.array(y))
    store = MonitoringStore(str(tmp_path / "store"))
    store.publish("rpt", "job", {"predictions": predictions_table(
        Producer("rpt", digest, "job"), [ChunkFacts(0, n, 0, 1.0, START, None)], [log])})
    store.publish("rpt", "up", {"actuals": actuals})
    doc = run_accuracy(AccuracyRequest("rpt", since=START - timedelta(days=1),
                                       until=START + timedelta(days=1),
                                       store=str(tmp_path / "store")), registry)
    figure = doc["models"][digest]["predicted_vs_actual"]
    assert figure["rows"] == n
    assert figure["predicted"] == pytest.approx(expected[0], rel=1e-12)
    assert figure["actual"] == pytest.approx(expected[1], rel=1e-12)
