"""The challenger comparison: each challenger against the champion on the same rows.

Challengers score the champion's chunks in the same pass, so their prediction
logs pair with the champion's row for row (by job and row). Per challenger, over
a window of prediction times:

- agreement: the share of rows with the champion's label (classification), and the
  difference ``challenger - champion`` of the logged prediction: mean, mean
  absolute, root mean square and its 5th / 50th / 95th percentiles;
- accuracy where actuals exist: each model's metrics on the same matched rows;
- the paired difference of the primary metric over hour buckets (at least
  :data:`MIN_BUCKET_ROWS` matched rows each), signed so that positive means the
  challenger is better, with a 95% t-interval over the buckets;
- latency: the 95th percentile over chunks of each model's scoring time, and the
  challenger's as a multiple of the champion's.

Recommendation (the monitoring contract): promote only when the interval
excludes 0 on the better side and the challenger's p95 latency is at most 1.5x
the champion's; keep the champion when it excludes 0 on the worse side;
otherwise there is not enough evidence yet.

Status (:func:`challengers_status`, the colour alerts and ``batchpred status``
read): grey when nothing can be judged (no challenger predictions, or no
challenger with an hour of :data:`MIN_BUCKET_ROWS`+ matched actuals); yellow
when a current challenger is recommended for promotion (the rule and value name
the one with the largest mean paired difference); green otherwise: the champion
holds. A removed challenger still shows in the comparison but takes no part in
the colour. There is no red: a better challenger is news, not a failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry
from batch.models.manifest import Target, TargetType
from batch.monitoring.accuracy import Accumulator, accumulate
from batch.monitoring.accuracy_stage import (
    LOGGED,
    id_shares,
    latest_actuals,
    window_of,
    with_actuals,
)
from batch.monitoring.metrics import METRICS, PRIMARY_METRIC
from batch.monitoring.stage import open_store, settings_of
from batch.monitoring.store import Records

DOCUMENT_VERSION = 1
MIN_BUCKET_ROWS = 30  # matched rows an hour needs to take part in the paired difference
LATENCY_RATIO = 1.5  # a challenger may be this much slower (p95) and still be promoted


@dataclass(frozen=True, slots=True)
class ChallengersRequest:
    deployment: str
    since: datetime | None = None  # default: 30 days before until
    until: datetime | None = None
    store: str | None = None
    store_options: Mapping[str, str] | None = None


def run_challengers(request: ChallengersRequest, registry: DeploymentRegistry | None = None
                    ) -> dict[str, Any]:
    """The comparison document of a deployment's challengers in the window.

    Raises:
        DeploymentError: no such deployment.
        ConfigError: a bad window.
        ConnectorError: the store cannot be read.
    """
    registry = registry or DeploymentRegistry()
    deployment = registry.get(request.deployment)
    target = registry.package(request.deployment).manifest.target
    store = open_store(settings_of(request.deployment, registry), request.store,
                       request.store_options, registry)
    since, until = window_of(request.since, request.until)
    health = store.read(request.deployment, "health", since=since, until=until)
    names = {c.package_digest: c.id for c in deployment.challengers}
    metric = PRIMARY_METRIC[target.type]
    read = Records(pa.table({}))
    compared: dict[str, _Comparison] = {}
    champion_rows = 0
    # a share of the ids at a time: a challenger's rows have the champion's ids
    for logged, actuals in id_shares(store, request.deployment, since=since, until=until,
                                     columns=(*LOGGED, "row"),
                                     found=(read, Records(pa.table({})))):
        if logged is None or not logged.num_rows:
            continue
        latest = latest_actuals(actuals) if actuals is not None else None
        champion = _of(logged, "champion")
        champion_rows += champion.num_rows
        found = _of(logged, "challenger")
        models = pc.unique(found.column("model_id"))
        if pa.types.is_dictionary(models.type):
            models = models.dictionary_decode()
        for digest in models.to_pylist():
            theirs = found.filter(pc.equal(found.column("model_id"), digest))
            compared.setdefault(digest, _Comparison()).add(target, champion, theirs, latest)
    doc: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION, "kind": "challengers",
        "deployment": request.deployment,
        "window": {"since": _iso(since), "until": _iso(until)},
        "champion": deployment.package_digest, "primary_metric": metric,
        "champion_rows": champion_rows,
        "warnings": [*read.warnings, *health.warnings],
    }
    champion_p95 = _p95(health.table, "champion", None)
    doc["champion_latency_p95_s"] = champion_p95
    doc["challengers"] = [
        compared[digest].result(target, latency=(champion_p95, _p95(
            health.table, "challenger", digest)), name=names.get(digest, "(removed)"),
            digest=digest)
        for digest in sorted(compared)]
    # a removed (or promoted) challenger's rows still compare, but cannot be promoted
    current = [c for c in doc["challengers"] if c["model_id"] in names]
    doc["status"] = challengers_status(current, metric,
                                       configured=bool(deployment.challengers))
    return doc


def challengers_status(compared: Sequence[Mapping[str, Any]], metric: str, *,
                       configured: bool = True) -> dict[str, Any]:
    """The comparison's colour from its challengers' entries (``paired`` and
    ``recommendation``, as :func:`run_challengers` makes them) on ``metric``.

    Keys as the other stages' statuses: ``colour``, ``rule``, ``value`` (the paired
    difference of the challenger the rule names, positive: better; None when grey)
    and ``threshold`` (0: the interval must exclude it), with ``metric``,
    ``challenger`` (its id) and ``promote`` (the ids recommended for promotion).
    ``configured``: whether the deployment has challengers (only says why it is grey).
    Give only the current challengers: a removed one cannot be promoted.
    """
    label = METRICS[metric].label if metric in METRICS else metric
    status: dict[str, Any] = {"metric": metric, "value": None, "threshold": 0.0,
                              "challenger": None, "promote": []}
    judged = [c for c in compared if c["paired"]["buckets"]]
    if not judged:
        return {**status, "colour": "grey", "rule": _nothing_to_judge(compared, configured)}
    better = [c for c in judged if c["recommendation"]["action"] == "promote"]
    best = max(better or judged, key=lambda c: c["paired"]["mean"])
    mean = best["paired"]["mean"]
    status.update(value=mean, challenger=best["id"], promote=[c["id"] for c in better])
    if not better:
        return {**status, "colour": "green", "rule": (
            f"the champion holds: no challenger is better on {label} within "
            f"{LATENCY_RATIO}x the champion's p95 latency (closest: {best['id']!r}, "
            f"{mean:+.4g})")}
    return {**status, "colour": "yellow", "rule": _promotion_rule(best, better, label)}


def _promotion_rule(best: Mapping[str, Any], better: Sequence[Mapping[str, Any]],
                    label: str) -> str:
    paired, ratio = best["paired"], best["latency_ratio"]
    speed = ("its p95 latency unknown" if ratio is None else
             f"at {ratio:.2f}x the champion's p95 latency (at most {LATENCY_RATIO}x)")
    others = [repr(c["id"]) for c in better if c is not best]
    also = f"; also {', '.join(others)}" if others else ""
    return (f"challenger {best['id']!r} is better on {label} ({paired['mean']:+.4g}, 95% "
            f"interval [{paired['low']:+.4g}, {paired['high']:+.4g}] excludes 0), {speed}: "
            f"consider promoting it{also}")


def _nothing_to_judge(compared: Sequence[Mapping[str, Any]], configured: bool) -> str:
    if compared:
        return (f"no challenger has an hour with {MIN_BUCKET_ROWS}+ matched actuals "
                "in the window")
    if not configured:
        return "no challengers (batchpred deploy add-challenger NAME --model PKG)"
    return "no predictions of the current challengers in the window"


def _of(table: pa.Table, role: str) -> pa.Table:
    if not table.num_rows:
        return table
    return table.filter(pc.equal(table.column("role"), role))


@dataclass
class _Comparison:
    """One challenger against the champion, counted a share of the rows at a time: the
    differences (kept, 8 bytes a row, for their percentiles), the label agreement,
    and the accuracy accumulators of both models on the matched rows, overall and
    per hour of the prediction (which merge exactly)."""

    rows: int = 0
    differences: list[np.ndarray] = field(default_factory=list)
    agreed: int = 0
    compared: int = 0
    matched: int = 0
    both: tuple[Accumulator, Accumulator] | None = None
    hours: dict[datetime, tuple[int, Accumulator, Accumulator]] = field(default_factory=dict)

    def add(self, target: Target, champion: pa.Table, challenger: pa.Table,
            actuals: pa.Table | None) -> None:
        pairs = _paired(champion, challenger)
        self.rows += pairs.num_rows
        if not pairs.num_rows:
            return
        a = pairs.column("prediction").to_numpy()
        b = pairs.column("challenger_prediction").to_numpy()
        self.differences.append(b - a)
        if target.type is not TargetType.REGRESSION:
            same = pc.equal(pairs.column("label"), pairs.column("challenger_label"))
            self.agreed += int(pc.sum(same).as_py() or 0)
            self.compared += len(same) - same.null_count
        if actuals is None or not actuals.num_rows:
            return
        matched = with_actuals(pairs, actuals)
        self.matched += matched.num_rows
        if not matched.num_rows:
            return
        self.both = _merged_pair(self.both, _counted(target, matched))
        hours = pc.unique(matched.column("hour"))
        if pa.types.is_dictionary(hours.type):
            hours = hours.dictionary_decode()
        for hour in hours.to_pylist():
            rows = matched.filter(pc.equal(matched.column("hour"), pa.scalar(hour, hours.type)))
            mine = _counted(target, rows)
            if hour in self.hours:
                n, champion_acc, challenger_acc = self.hours[hour]
                mine = _merged_pair((champion_acc, challenger_acc), mine)
                self.hours[hour] = (n + rows.num_rows, *mine)
            else:
                self.hours[hour] = (rows.num_rows, *mine)

    def result(self, target: Target, *, latency: tuple[float | None, float | None],
               name: str, digest: str) -> dict[str, Any]:
        metric = PRIMARY_METRIC[target.type]
        out: dict[str, Any] = {"id": name, "model_id": digest, "rows": self.rows}
        diff = np.concatenate(self.differences) if self.differences else np.zeros(0)
        out["difference"] = _distribution(diff)
        out["agreement"] = self.agreed / self.compared if self.compared else None
        out["matched"] = self.matched
        if self.both is not None:
            out["champion_metrics"] = self.both[0].metrics()
            out["challenger_metrics"] = self.both[1].metrics()
        else:
            out["champion_metrics"], out["challenger_metrics"] = {}, {}
        out["paired"] = _paired_difference(self.hours, metric)
        champion_p95, mine = latency
        ratio = mine / champion_p95 if mine is not None and champion_p95 else None
        out["latency_p95_s"], out["latency_ratio"] = mine, ratio
        out["recommendation"] = _recommend(out["paired"], ratio)
        return out


def _counted(target: Target, rows: pa.Table) -> tuple[Accumulator, Accumulator]:
    """The champion's and the challenger's accumulators of matched rows."""
    return _accumulated(target, rows, ""), _accumulated(target, rows, "challenger_")


def _merged_pair(a: tuple[Accumulator, Accumulator] | None,
                 b: tuple[Accumulator, Accumulator]) -> tuple[Accumulator, Accumulator]:
    if a is None:
        return b
    return a[0].merge(b[0]), a[1].merge(b[1])  # type: ignore[arg-type]


def _paired(champion: pa.Table, challenger: pa.Table) -> pa.Table:
    """Champion rows with the challenger's prediction and label of the same row."""
    if not champion.num_rows or not challenger.num_rows:
        empty = champion.slice(0, 0) if champion.num_rows else champion
        return pa.table({"job_id": pa.array([], pa.string()), "row": pa.array([], pa.int64()),
                         "hour": pa.array([], empty.schema.field("hour").type)
                         if "hour" in empty.column_names else pa.array([], pa.timestamp(
                             "us", tz="UTC")),
                         "association_id": pa.array([], pa.string()),
                         "prediction": pa.array([], pa.float64()),
                         "label": pa.array([], pa.string()),
                         "probabilities": pa.array([], pa.list_(pa.float64())),
                         "challenger_prediction": pa.array([], pa.float64()),
                         "challenger_label": pa.array([], pa.string()),
                         "challenger_probabilities": pa.array([], pa.list_(pa.float64()))})
    left = pa.table({"job_id": champion.column("job_id"), "row": champion.column("row"),
                     "_i": pa.array(np.arange(champion.num_rows))})
    right = pa.table({"job_id": challenger.column("job_id"), "row": challenger.column("row"),
                      "_j": pa.array(np.arange(challenger.num_rows))})
    keys = left.join(right, ["job_id", "row"], join_type="inner").sort_by("_i")
    mine = champion.take(keys.column("_i"))
    theirs = challenger.take(keys.column("_j"))
    return pa.table({
        "job_id": mine.column("job_id"), "row": mine.column("row"), "hour": mine.column("hour"),
        "association_id": mine.column("association_id"),
        "prediction": mine.column("prediction"), "label": mine.column("label"),
        "probabilities": mine.column("probabilities"),
        "challenger_prediction": theirs.column("prediction"),
        "challenger_label": theirs.column("label"),
        "challenger_probabilities": theirs.column("probabilities")})


def _accumulated(target: Target, rows: pa.Table, prefix: str) -> Accumulator:
    return accumulate(target, actual=rows.column("actual").combine_chunks(),
                      prediction=rows.column(f"{prefix}prediction").to_numpy(),
                      probabilities=rows.column(f"{prefix}probabilities").combine_chunks())


def _paired_difference(hours: Mapping[datetime, tuple[int, Accumulator, Accumulator]],
                       metric: str) -> dict[str, Any]:
    """The primary metric's per-hour difference (positive: the challenger is better),
    its mean and 95% t-interval over the hours with enough matched rows."""
    better_high = METRICS[metric].higher_is_better
    diffs = []
    for hour in sorted(hours):
        n, champion, challenger = hours[hour]
        if n < MIN_BUCKET_ROWS:
            continue
        mine = champion.metrics().get(metric)
        theirs = challenger.metrics().get(metric)
        if mine is None or theirs is None:
            continue
        diffs.append(theirs - mine if better_high else mine - theirs)
    result: dict[str, Any] = {"metric": metric, "buckets": len(diffs), "mean": None,
                              "low": None, "high": None}
    if len(diffs) >= 2:
        from scipy import stats

        d = np.asarray(diffs)
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        half = float(stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
        result.update(mean=mean, low=mean - half, high=mean + half)
    elif diffs:
        result["mean"] = float(diffs[0])
    return result


def _recommend(paired: Mapping[str, Any], ratio: float | None) -> dict[str, str]:
    low, high = paired["low"], paired["high"]
    if low is None or high is None:
        return {"action": "wait", "why": f"fewer than 2 hours with {MIN_BUCKET_ROWS}+ "
                "matched actuals: not enough evidence"}
    if low > 0:
        if ratio is not None and ratio > LATENCY_RATIO:
            return {"action": "keep", "why": f"better on {paired['metric']}, but its p95 "
                    f"latency is {ratio:.2f}x the champion's (at most {LATENCY_RATIO}x)"}
        return {"action": "promote", "why": f"better on {paired['metric']}: the 95% interval "
                f"[{low:.4g}, {high:.4g}] excludes 0"}
    if high < 0:
        return {"action": "keep", "why": f"worse on {paired['metric']}: the 95% interval "
                f"[{low:.4g}, {high:.4g}] excludes 0"}
    return {"action": "wait", "why": f"the 95% interval [{low:.4g}, {high:.4g}] of the "
            f"{paired['metric']} difference includes 0"}


def _p95(health: pa.Table, role: str, model: str | None) -> float | None:
    """The 95th percentile over chunks of a model's scoring seconds."""
    if not health.num_rows or "score_seconds" not in health.column_names:
        return None
    rows = health.filter(pc.equal(health.column("role"), role))
    if model is not None:
        rows = rows.filter(pc.equal(rows.column("model_id"), model))
    seconds = [s for s in rows.column("score_seconds").to_pylist() if s is not None]
    return float(np.percentile(seconds, 95)) if seconds else None


def _distribution(diff: np.ndarray) -> dict[str, float | None]:
    if not diff.size:
        return {"mean": None, "mean_abs": None, "rms": None, "p5": None, "p50": None,
                "p95": None}
    p5, p50, p95 = np.percentile(diff, [5, 50, 95]).tolist()
    return {"mean": float(diff.mean()), "mean_abs": float(np.abs(diff).mean()),
            "rms": float(np.sqrt(np.mean(diff ** 2))), "p5": p5, "p50": p50, "p95": p95}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
