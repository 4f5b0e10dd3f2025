"""The accuracy stage: the prediction log joined to the actuals, counted by the hour of
the prediction.

For a window of prediction times, the ``predictions`` records are joined by
association id to the latest actual of each id (the last received wins: by
received time, then upload, then row), whenever it arrived. The joined rows are
counted per model and time bucket into the mergeable accumulators of
:mod:`~batch.monitoring.accuracy`, and every prediction of a binary model also
into the estimate of :mod:`~batch.monitoring.estimate` (calibrated on the
holdout when the baseline was built), so each bucket shows the estimated
figures beside the realised ones once actuals are in. The status compares the
primary metric of the current champion's rows with the holdout's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry
from batch.errors import ConfigError
from batch.models.manifest import ModelManifest, Target, TargetType
from batch.monitoring.accuracy import Accumulator, MulticlassAccumulator, accumulate, outcomes
from batch.monitoring.baseline import Baseline, read_baseline
from batch.monitoring.by_id import IdBuckets
from batch.monitoring.estimate import Calibration, EstimateAccumulator
from batch.monitoring.exactsum import exact_sum, to_float
from batch.monitoring.metrics import PRIMARY_METRIC, accuracy_status
from batch.monitoring.stage import open_store, settings_of
from batch.monitoring.store import MonitoringStore, Records

DOCUMENT_VERSION = 1
# what the stage reads of each kind: a prediction log's other columns are most of it
LOGGED = ("model_id", "role", "hour", "association_id", "prediction", "label",
          "probabilities")
ACTUAL = ("association_id", "seq", "actual_value", "actual_label", "was_acted_on")


@dataclass(frozen=True, slots=True)
class AccuracyRequest:
    deployment: str
    since: datetime | None = None  # of the predictions; default: 30 days before until
    until: datetime | None = None
    by: str | None = None  # "hour" or "day"
    store: str | None = None
    store_options: Mapping[str, str] | None = None


def window_of(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """A window of prediction times: until now, the 30 days before, by default.

    Raises:
        ConfigError: ``since`` is not before ``until``.
    """
    until = until or datetime.now(UTC)
    since = since or (until - timedelta(days=30))
    if since >= until:
        raise ConfigError(f"--since {since.isoformat()} is not before --until "
                          f"{until.isoformat()}")
    return since, until


def latest_actuals(actuals: pa.Table) -> pa.Table:
    """One row per association id: the one received last (then the later upload, then
    the later row of it)."""
    if not actuals.num_rows:
        return actuals
    if pc.count_distinct(actuals.column("association_id")).as_py() == actuals.num_rows:
        return actuals  # each id once: nothing to choose (no sort of every row)
    ordered = actuals.sort_by([("ts_start", "ascending"), ("job_id", "ascending"),
                               ("seq", "ascending")])
    ordered = ordered.append_column("_i", pa.array(np.arange(ordered.num_rows)))
    last = ordered.group_by("association_id").aggregate([("_i", "max")])
    return ordered.take(last.column("_i_max")).drop_columns(["_i"])


def run_accuracy(request: AccuracyRequest, registry: DeploymentRegistry | None = None
                 ) -> dict[str, Any]:
    """The accuracy document of a deployment's predictions in the window.

    Raises:
        DeploymentError: no such deployment.
        ConfigError: a bad window.
        ConnectorError: the store cannot be read.
    """
    registry = registry or DeploymentRegistry()
    deployment = registry.get(request.deployment)
    package = registry.package(request.deployment)
    manifest = package.manifest
    store = open_store(settings_of(request.deployment, registry), request.store,
                       request.store_options, registry)
    since, until = window_of(request.since, request.until)
    baseline = read_baseline(package)
    calibration = _calibration(baseline)
    counted = _count(manifest, store, request.deployment, since=since, until=until,
                     by=request.by,
                     calibration=calibration)
    doc: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION, "kind": "accuracy",
        "deployment": request.deployment,
        "window": {"since": _iso(since), "until": _iso(until), "by": request.by},
        "target": _target(manifest.target),
        "champion": deployment.package_digest,
        "primary_metric": PRIMARY_METRIC[manifest.target.type],
        "predictions": counted.predictions, "matched": counted.matched,
        "actuals": {"rows": counted.actual_rows, "ids": counted.actual_ids},
        "holdout": dict(baseline.holdout) if baseline is not None else {},
        "warnings": counted.warnings,
    }
    target = manifest.target
    models = {model: tally.figures(target) for model, tally in sorted(counted.models.items())}
    doc["models"] = models
    current = models.get(deployment.package_digest)
    doc["status"] = _status(manifest, current, doc["holdout"])
    doc["over_time"] = [{"start": _iso(start), **tally.figures(target)}
                        for start, tally in sorted(counted.over_time.items())]
    if calibration is None and manifest.target.type is TargetType.BINARY:
        doc["warnings"].append("the baseline has no calibration: the estimate before "
                               "actuals takes the probabilities as calibrated (rebuild the "
                               "baseline with --holdout-data to calibrate it)")
    return doc


@dataclass
class _Tally:
    """What the figures of some predictions are counted from: the accuracy
    accumulator of those with an actual, the estimate of all of them (binary), and
    the exact sums of predicted against actual. Merges by addition."""

    predictions: int = 0
    matched: int = 0
    counted: Accumulator | None = None
    estimate: EstimateAccumulator | None = None
    pva: tuple[int, int, int] = (0, 0, 0)  # rows, exact sums of predicted and of actual

    @classmethod
    def of(cls, manifest: ModelManifest, joined: pa.Table, logged: pa.Table,
           calibration: Calibration | None) -> _Tally:
        target = manifest.target
        tally = cls(predictions=logged.num_rows, matched=joined.num_rows)
        if joined.num_rows:
            tally.counted = accumulate(
                target, actual=joined.column("actual").combine_chunks(),
                prediction=joined.column("prediction").to_numpy(),
                probabilities=joined.column("probabilities").combine_chunks())
            tally.pva = _predicted_vs_actual(target, joined)
        if target.type is TargetType.BINARY and logged.num_rows:
            tally.estimate = EstimateAccumulator.count(
                logged.column("prediction").to_numpy(),
                calibration=calibration or Calibration.identity(),
                threshold=float(target.threshold))
        return tally

    def merge(self, other: _Tally) -> _Tally:
        return _Tally(self.predictions + other.predictions, self.matched + other.matched,
                      _merged(self.counted, other.counted),
                      _merged(self.estimate, other.estimate),
                      (self.pva[0] + other.pva[0], self.pva[1] + other.pva[1],
                       self.pva[2] + other.pva[2]))

    def figures(self, target: Target) -> dict[str, Any]:
        figures: dict[str, Any] = {"predictions": self.predictions, "matched": self.matched}
        if self.counted is not None:
            figures["metrics"] = self.counted.metrics()
            figures["skipped"] = self.counted.skipped
            if isinstance(self.counted, MulticlassAccumulator):
                figures["class_f1"] = self.counted.class_f1()
        else:
            figures["metrics"], figures["skipped"] = {}, 0
        rows, predicted, actual = self.pva
        figures["predicted_vs_actual"] = {
            "rows": rows, "predicted": to_float(predicted) / rows if rows else None,
            "actual": to_float(actual) / rows if rows else None}
        if self.estimate is not None:
            figures["estimated"] = self.estimate.metrics()
        return figures


def _merged(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a.merge(b)


@dataclass
class _Counted:
    predictions: int = 0
    matched: int = 0
    actual_rows: int = 0
    actual_ids: int = 0
    models: dict[str, _Tally] = field(default_factory=dict)
    over_time: dict[datetime, _Tally] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _count(manifest: ModelManifest, store: MonitoringStore, deployment: str, *,
           since: datetime, until: datetime, by: str | None,
           calibration: Calibration | None) -> _Counted:
    """The champions' predictions of the window joined to the latest actual of each id
    and counted, a share of the ids at a time (:class:`~batch.monitoring.by_id.IdBuckets`):
    memory of a share of the rows, whatever the window holds."""
    counted = _Counted()
    read_predictions, read_actuals = Records(pa.table({})), Records(pa.table({}))
    for logged, actuals in id_shares(store, deployment, since=since, until=until,
                                     columns=LOGGED, role="champion",
                                     found=(read_predictions, read_actuals)):
        latest = None
        if actuals is not None:
            latest = latest_actuals(actuals)
            counted.actual_rows += actuals.num_rows
            counted.actual_ids += latest.num_rows
        if logged is not None and logged.num_rows:
            _tally(manifest, counted, logged, with_actuals(logged, latest), by=by,
                   calibration=calibration)
    counted.warnings = [*read_predictions.warnings, *read_actuals.warnings]
    return counted


def id_shares(store: MonitoringStore, deployment: str, *, since: datetime, until: datetime,
              columns: Sequence[str], found: tuple[Records, Records], role: str | None = None
              ) -> Iterator[tuple[pa.Table | None, pa.Table | None]]:
    """The window's predictions (``columns`` of them; of ``role`` only, when given) and
    every actual, a share of the ids at a time (:class:`~batch.monitoring.by_id.IdBuckets`):
    per share, its ids' predictions and actuals (None: the share has none of that kind).
    ``found``: what reading the predictions and the actuals skipped."""
    with IdBuckets(("logged", "actuals")) as shares:
        for table in store.scan(deployment, "predictions", found[0], since=since,
                                until=until, columns=columns):
            shares.add("logged", table if role is None else
                       table.filter(pc.equal(table.column("role"), role)))
        for table in store.scan(deployment, "actuals", found[1], columns=ACTUAL):
            shares.add("actuals", table)
        for share in shares:
            yield share["logged"], share["actuals"]


def _tally(manifest: ModelManifest, counted: _Counted, logged: pa.Table, joined: pa.Table,
           *, by: str | None, calibration: Calibration | None) -> None:
    """Count a share's rows into ``counted``, per model and (``by``) time bucket."""
    models = pc.unique(logged.column("model_id"))
    if pa.types.is_dictionary(models.type):
        models = models.dictionary_decode()
    names = models.to_pylist()
    starts: list[datetime] = []
    if by is not None:
        at = pc.unique(_starts(logged, by))
        starts = sorted(at.to_pylist())
    times = pa.array(starts, pa.timestamp("us", tz="UTC"))
    for (model, start), (rows, mine) in _groups(logged, joined, models, times, by=by):
        tally = _Tally.of(manifest, mine, rows, calibration)
        name = names[model]
        counted.models[name] = _merged(counted.models.get(name), tally)
        if by is not None:
            when = starts[start]
            counted.over_time[when] = _merged(counted.over_time.get(when), tally)
        counted.predictions += rows.num_rows
        counted.matched += mine.num_rows


def _groups(logged: pa.Table, joined: pa.Table, models: pa.Array, times: pa.Array, *,
            by: str | None) -> Iterator[tuple[tuple[int, int], tuple[pa.Table, pa.Table]]]:
    """The rows of ``logged`` and ``joined`` of each (model, time bucket) that has
    predictions: one sort of each table, not a filter per group."""
    def keyed(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
        model = pc.index_in(table.column("model_id"), value_set=models).to_numpy(
            zero_copy_only=False).astype(np.int64)
        time = np.zeros(table.num_rows, dtype=np.int64) if by is None else pc.index_in(
            _starts(table, by), value_set=times).to_numpy(zero_copy_only=False).astype(
                np.int64)
        key = model * max(len(times), 1) + time
        order = np.argsort(key, kind="stable")
        return table.take(pa.array(order)), key[order]

    rows, row_keys = keyed(logged)
    mine, mine_keys = keyed(joined) if joined.num_rows else (joined, np.zeros(0, np.int64))
    width = max(len(times), 1)
    for key in np.unique(row_keys).tolist():
        a, b = np.searchsorted(row_keys, [key, key + 1])
        c, d = np.searchsorted(mine_keys, [key, key + 1])
        yield (key // width, key % width), (rows.slice(int(a), int(b - a)),
                                            mine.slice(int(c), int(d - c)))


def _starts(table: pa.Table, by: str) -> pa.ChunkedArray:
    hours = table.column("hour")
    return hours if by == "hour" else pc.floor_temporal(hours, unit="day")


def with_actuals(logged: pa.Table, latest: pa.Table | None) -> pa.Table:
    """The rows of ``logged`` (any table with ``association_id``) that have an actual in
    ``latest`` (None: no actuals), with it (``actual``, as text, and ``was_acted_on``).
    Joined on the ids and row positions only: a list column cannot ride a hash join."""
    if not logged.num_rows or latest is None or not latest.num_rows:
        return logged.slice(0, 0).append_column("actual", pa.nulls(0, pa.string())) \
            .append_column("was_acted_on", pa.nulls(0, pa.bool_()))
    actual = pc.coalesce(pc.cast(latest.column("actual_value"), pa.string()),
                         latest.column("actual_label"))
    right = pa.table({"association_id": latest.column("association_id"), "actual": actual,
                      "was_acted_on": latest.column("was_acted_on")})
    left = pa.table({"association_id": logged.column("association_id"),
                     "_i": pa.array(np.arange(logged.num_rows))})
    pairs = left.join(right, "association_id", join_type="inner").sort_by("_i")
    rows = logged.take(pairs.column("_i"))
    return rows.append_column("actual", pairs.column("actual")).append_column(
        "was_acted_on", pairs.column("was_acted_on"))


def _predicted_vs_actual(target: Target, joined: pa.Table) -> tuple[int, int, int]:
    """The rows with both a prediction and an outcome, and the exact sums of each:
    binary, the positive-class probability and the positive outcome (1/0);
    regression, the prediction and the actual; multiclass, the predicted class's
    probability and whether it was right. Exact sums, so the same rows in any order,
    counted in any shares, give the same means."""
    predicted = joined.column("prediction").to_numpy().astype(np.float64)
    actual = joined.column("actual").combine_chunks()
    if target.type is TargetType.REGRESSION:
        outcome = pc.cast(actual, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        coded = outcomes(target, actual)  # -1: no class of the target
        hit = coded if target.type is TargetType.BINARY else pc.fill_null(pc.equal(
            joined.column("label").combine_chunks(), pc.cast(actual, pa.string())),
            False).to_numpy(zero_copy_only=False)
        outcome = np.where(coded < 0, np.nan, hit).astype(np.float64)
    kept = np.isfinite(predicted) & np.isfinite(outcome)
    return int(kept.sum()), exact_sum(predicted[kept]), exact_sum(outcome[kept])


def _status(manifest: ModelManifest, current: Mapping[str, Any] | None,
            holdout: Mapping[str, Any]) -> dict[str, Any]:
    metric = PRIMARY_METRIC[manifest.target.type]
    if current is None:
        return {"colour": "grey", "rule": "no predictions of the current champion in the "
                "window", "metric": metric, "value": None, "holdout": holdout.get(metric)}
    value = current["metrics"].get(metric)
    status = accuracy_status(metric, value, holdout.get(metric), current["matched"])
    return {**status.to_json(), "metric": metric, "value": value,
            "holdout": holdout.get(metric)}


def _calibration(baseline: Baseline | None) -> Calibration | None:
    if baseline is None or baseline.calibration is None:
        return None
    return Calibration.from_json(baseline.calibration)


def _target(target: Target) -> dict[str, Any]:
    return {"name": target.name, "type": target.type.value,
            "classes": [str(c) for c in target.classes],
            "positive": None if target.positive is None else str(target.positive),
            "threshold": target.threshold if target.type is TargetType.BINARY else None}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
