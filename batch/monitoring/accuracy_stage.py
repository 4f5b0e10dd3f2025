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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry
from batch.errors import ConfigError
from batch.models.manifest import ModelManifest, Target, TargetType
from batch.monitoring.accuracy import MulticlassAccumulator, accumulate, outcomes
from batch.monitoring.baseline import Baseline, read_baseline
from batch.monitoring.estimate import Calibration, EstimateAccumulator
from batch.monitoring.exactsum import exact_sum, to_float
from batch.monitoring.metrics import PRIMARY_METRIC, accuracy_status
from batch.monitoring.stage import open_store, settings_of

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
    predictions = store.read(request.deployment, "predictions", since=since, until=until,
                             columns=LOGGED)
    actuals = store.read(request.deployment, "actuals", columns=ACTUAL)
    warnings = [*predictions.warnings, *actuals.warnings]
    logged = predictions.table.filter(pc.equal(predictions.table.column("role"), "champion")) \
        if predictions.table.num_rows else predictions.table
    latest = latest_actuals(actuals.table)
    joined = with_actuals(logged, latest)
    baseline = read_baseline(package)
    doc: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION, "kind": "accuracy",
        "deployment": request.deployment,
        "window": {"since": _iso(since), "until": _iso(until), "by": request.by},
        "target": _target(manifest.target),
        "champion": deployment.package_digest,
        "primary_metric": PRIMARY_METRIC[manifest.target.type],
        "predictions": logged.num_rows, "matched": joined.num_rows,
        "actuals": {"rows": actuals.table.num_rows, "ids": latest.num_rows},
        "holdout": dict(baseline.holdout) if baseline is not None else {},
        "warnings": warnings,
    }
    calibration = _calibration(baseline)
    models = {}
    for model_id in sorted(set(logged.column("model_id").to_pylist())):
        mine = pc.equal(joined.column("model_id"), model_id)
        models[model_id] = _figures(manifest, joined.filter(mine), logged.filter(
            pc.equal(logged.column("model_id"), model_id)), calibration)
    doc["models"] = models
    current = models.get(deployment.package_digest)
    doc["status"] = _status(manifest, current, doc["holdout"])
    doc["over_time"] = _over_time(manifest, joined, logged, calibration=calibration,
                                  by=request.by) if request.by else []
    if calibration is None and manifest.target.type is TargetType.BINARY:
        doc["warnings"].append("the baseline has no calibration: the estimate before "
                               "actuals takes the probabilities as calibrated (rebuild the "
                               "baseline with --holdout-data to calibrate it)")
    return doc


def with_actuals(logged: pa.Table, latest: pa.Table) -> pa.Table:
    """The rows of ``logged`` (any table with ``association_id``) that have an actual,
    with it (``actual``, as text, and ``was_acted_on``). Joined on the ids and row
    positions only: a list column cannot ride a hash join."""
    if not logged.num_rows or not latest.num_rows:
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


def _figures(manifest: ModelManifest, joined: pa.Table, logged: pa.Table,
             calibration: Calibration | None) -> dict[str, Any]:
    target = manifest.target
    figures: dict[str, Any] = {"predictions": logged.num_rows, "matched": joined.num_rows}
    if joined.num_rows:
        counted = accumulate(target, actual=joined.column("actual").combine_chunks(),
                             prediction=joined.column("prediction").to_numpy(),
                             probabilities=joined.column("probabilities").combine_chunks())
        figures["metrics"] = counted.metrics()
        figures["skipped"] = counted.skipped
        if isinstance(counted, MulticlassAccumulator):
            figures["class_f1"] = counted.class_f1()
    else:
        figures["metrics"], figures["skipped"] = {}, 0
    figures["predicted_vs_actual"] = _predicted_vs_actual(target, joined)
    if target.type is TargetType.BINARY and logged.num_rows:
        estimate = EstimateAccumulator.count(
            logged.column("prediction").to_numpy(),
            calibration=calibration or Calibration.identity(),
            threshold=float(target.threshold))
        figures["estimated"] = estimate.metrics()
    return figures


def _predicted_vs_actual(target: Target, joined: pa.Table) -> dict[str, Any]:
    """The mean prediction beside the mean outcome, over the rows with an actual: binary,
    the mean positive-class probability and the share of positives; regression, the mean
    prediction and the mean actual; multiclass, the mean probability of the predicted
    class and the share predicted right. Means of exact sums, so the same rows in any
    order give the same figures; rows of a missing prediction or actual are left out."""
    if not joined.num_rows:
        return {"rows": 0, "predicted": None, "actual": None}
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
    rows = int(kept.sum())
    if not rows:
        return {"rows": 0, "predicted": None, "actual": None}
    return {"rows": rows, "predicted": to_float(exact_sum(predicted[kept])) / rows,
            "actual": to_float(exact_sum(outcome[kept])) / rows}


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


def _over_time(manifest: ModelManifest, joined: pa.Table, logged: pa.Table, *,
               calibration: Calibration | None, by: str) -> list[dict[str, Any]]:
    def starts(table: pa.Table) -> pa.Array:
        hours = table.column("hour")
        return hours if by == "hour" else pc.floor_temporal(hours, unit="day")

    if not logged.num_rows:
        return []
    logged_at, joined_at = starts(logged), starts(joined)
    out = []
    for start in sorted(set(logged_at.to_pylist())):
        at = pa.scalar(start, logged_at.type)
        figures = _figures(manifest, joined.filter(pc.equal(joined_at, at)),
                           logged.filter(pc.equal(logged_at, at)), calibration)
        out.append({"start": _iso(start), **figures})
    return out


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
