"""The data-drift stage: merged counts against the baseline (or the window before).

Everything here is computed from merged counts and exact sums, in a fixed
order, so the same rows give the same document, bit for bit, whatever chunks,
workers or executor produced the records. Definitions (the monitoring contract):

- PSI: proportions clamped at ``eps = 1e-4`` (no renormalisation),
  ``sum((q' - p') * ln(q' / p'))``, the missing bucket included.
- JS distance: ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
- Tail signal (numeric): the Wasserstein distance between the two
  distributions on the percentile sketch, in training standard deviations
  (within a bucket values are taken as spread evenly), and the KS D on the
  sketch's edges.
- Difference of means, in training standard deviations, from the exact sums.
- Status by PSI: green < 0.10 <= yellow < 0.25 <= red; grey below 500 rows.
  A feature has drifted at PSI >= 0.15 or a tail signal >= 0.15. The
  deployment is red when a high-importance feature (>= 0.5, or starred)
  drifted, yellow when a low-importance one did, else green.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DriftThresholds
from batch.monitoring.baseline import Baseline, CategoricalProfile, NumericProfile
from batch.monitoring.buckets import MISSING, NEW, OTHER
from batch.monitoring.exactsum import decode
from batch.monitoring.stats import ColumnStats

DOCUMENT_VERSION = 1
COLOURS = ("grey", "green", "yellow", "red")


@dataclass(frozen=True, slots=True)
class Merged:
    """The stats of one fingerprint in a window, per column."""

    fingerprint: str
    columns: dict[str, ColumnStats]
    jobs: tuple[str, ...]
    humility: Mapping[str, int] = field(default_factory=dict)  # rule key -> rows it fired on

    @property
    def rows(self) -> int:
        first = next(iter(self.columns.values()), None)
        return first.rows if first is not None else 0


def merge_table(table: pa.Table) -> dict[str, Merged]:
    """A ``stats`` table merged per fingerprint and column (vectorised: counts are summed
    as arrays, exact sums as integers). The rows are grouped once, not filtered per
    column."""
    result: dict[str, Merged] = {}
    if not table.num_rows:
        return result
    prints = pc.unique(table.column("fingerprint")).to_pylist()
    for fingerprint in sorted(prints):
        part = table if len(prints) == 1 else table.filter(
            pc.equal(table.column("fingerprint"), fingerprint))
        part, humility = _humility_rows(part)
        encoded = part.column("column").combine_chunks().dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
        names = encoded.dictionary.to_pylist()
        by_code = {code: part.take(order[bounds[code]:bounds[code + 1]])
                   for code in range(len(names))}
        first_seen = np.unique(codes, return_index=True)[1]  # keep the records' order
        columns = {names[code]: _merge_column(names[code], by_code[code])
                   for code in codes[np.sort(first_seen)].tolist()}
        jobs = tuple(sorted(set(part.column("job_id").to_pylist())))
        result[fingerprint] = Merged(fingerprint, columns, jobs, humility)
    return result


def _humility_rows(table: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """The feature and prediction rows, and the humility rules' firings summed per rule."""
    is_rule = pc.equal(table.column("role_of_column"), "humility")
    if not pc.any(is_rule).as_py():
        return table, {}
    rules = table.filter(is_rule)
    fired: dict[str, int] = {}
    for key, counts in zip(rules.column("column").to_pylist(),
                           rules.column("counts").to_pylist(), strict=True):
        fired[key] = fired.get(key, 0) + int(counts[0])
    return table.filter(pc.invert(is_rule)), fired


def _merge_column(name: str, rows: pa.Table) -> ColumnStats:
    counts = _summed(rows.column("counts"))
    sketch = _summed(rows.column("sketch"))
    low = pc.min(rows.column("min")).as_py()
    high = pc.max(rows.column("max")).as_py()
    total = sum(decode(v) for v in rows.column("sum_exact").to_pylist())
    return ColumnStats(
        name, tuple(counts), tuple(sketch), out_low=_int_sum(rows, "n_out_low"),
        out_high=_int_sum(rows, "n_out_high"), low=low, high=high, sum=total,
        sum_sq=float(np.sum(rows.column("sum_sq").to_numpy())), new=_int_sum(rows, "n_new"))


def _summed(column: pa.ChunkedArray) -> list[int]:
    lists = column.combine_chunks()
    width = len(lists[0].as_py()) if len(lists) else 0
    if not width:
        return []
    values = pc.list_flatten(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.sum(values.reshape(-1, width), axis=0).tolist()  # type: ignore[no-any-return]


def _int_sum(rows: pa.Table, name: str) -> int:
    return int(pc.sum(rows.column(name)).as_py() or 0)


# -- the measures ----------------------------------------------------------------------------

def psi(reference: Sequence[int], current: Sequence[int], eps: float = 1e-4) -> float | None:
    """Population stability index of ``current`` counts against ``reference`` counts."""
    p, q = _proportions(reference), _proportions(current)
    if p is None or q is None:
        return None
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Sequence[int], current: Sequence[int]) -> float | None:
    """Jensen-Shannon distance (base 2, in [0, 1]) of the unclamped proportions."""
    from scipy.spatial.distance import jensenshannon

    p, q = _proportions(reference), _proportions(current)
    if p is None or q is None:
        return None
    return float(jensenshannon(p, q, base=2))


def _proportions(counts: Sequence[int]) -> np.ndarray | None:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else None


def tail_signal(edges: Sequence[float], reference: Sequence[int], current: Sequence[int], *,
                scale: float | None, current_low: float | None, current_high: float | None,
                reference_low: float | None = None, reference_high: float | None = None
                ) -> tuple[float | None, float | None]:
    """(Wasserstein distance / ``scale``, KS D) of two sets of counts on a sketch.

    ``reference`` and ``current`` are counts on the buckets of ``edges`` with the
    missing bucket last (left out here). Within a bucket the values are taken as
    spread evenly; the open first and last buckets reach to the lowest and
    highest value seen.
    """
    ref = np.asarray(reference[:-1], dtype=np.float64)
    cur = np.asarray(current[:-1], dtype=np.float64)
    if not edges or ref.sum() <= 0 or cur.sum() <= 0:
        return None, None
    f_ref = np.concatenate([[0.0], np.cumsum(ref) / ref.sum()])  # at each bucket's end
    f_cur = np.concatenate([[0.0], np.cumsum(cur) / cur.sum()])
    lows = [v for v in (current_low, reference_low, edges[0]) if v is not None]
    highs = [v for v in (current_high, reference_high, edges[-1]) if v is not None]
    points = np.asarray([min(lows), *edges, max(highs)], dtype=np.float64)
    diff = f_ref - f_cur  # at each point
    ks = float(np.max(np.abs(diff[1:-1])))
    widths = np.diff(points)
    a, b = diff[:-1], diff[1:]
    same = a * b >= 0
    area = np.where(same, (np.abs(a) + np.abs(b)) / 2,
                    (a * a + b * b) / (2 * np.maximum(np.abs(a) + np.abs(b), 1e-300)))
    distance = float(np.sum(area * widths))
    if scale is None or not scale > 0:
        return None, ks
    return distance / scale, ks


# -- the document ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    since: datetime | None
    until: datetime | None
    by: str | None = None
    job_id: str | None = None
    source: str | None = None
    consumer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"since": _iso(self.since), "until": _iso(self.until), "by": self.by,
                "job_id": self.job_id, "source": self.source, "consumer": self.consumer}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts is not None else None


def drift_document(baseline: Baseline, current: Merged | None, *, deployment_id: str,
                   window: Window, thresholds: DriftThresholds,
                   previous: Merged | None = None, against: str = "baseline",
                   excluded: Sequence[Mapping[str, Any]] = (),
                   over_time: Sequence[Mapping[str, Any]] = (),
                   warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The drift stage's result as a JSON-able document (``docs/monitoring.md``)."""
    rows = current.rows if current is not None else 0
    doc: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION, "kind": "drift", "deployment": deployment_id,
        "window": window.to_json(), "against": against,
        "baseline": {"fingerprint": baseline.fingerprint, "rows": baseline.rows},
        "rows": rows, "jobs": list(current.jobs) if current is not None else [],
        "thresholds": thresholds.model_dump(mode="json"),
    }
    features, predictions = [], []
    reference_of = _reference_of(baseline, previous, against)
    for profile in baseline.features:
        features.append(_column(profile, current, reference_of(profile), thresholds,
                                importance=baseline.importance.get(profile.name, 0.0),
                                starred=profile.name in thresholds.starred))
    for profile in baseline.predictions:
        predictions.append(_column(profile, current, reference_of(profile), thresholds))
    doc["features"] = features
    doc["predictions"] = predictions
    doc["data_quality"] = _quality(features, thresholds)
    doc["status"] = _deployment_status(features, rows, thresholds, against=against,
                                       previous=previous)
    doc["prediction_status"] = _worst([p["status"] for p in predictions], rows)
    doc["humility"] = _humility(current, rows)
    doc["over_time"] = list(over_time)
    doc["excluded"] = list(excluded)
    doc["warnings"] = list(warnings)
    return doc


def _humility(current: Merged | None, rows: int) -> list[dict[str, Any]]:
    """Per humility rule that fired in the window: its rows and their share."""
    if current is None:
        return []
    return [{"rule": key.rsplit("/", 1)[0], "action": key.rsplit("/", 1)[-1], "rows": n,
             "share": n / rows if rows else None} for key, n in current.humility.items()]


@dataclass(frozen=True, slots=True)
class _Reference:
    counts: Sequence[int]
    sketch: Sequence[int]
    mean: float | None
    missing_share: float | None
    low: float | None
    high: float | None


def _reference_of(baseline: Baseline, previous: Merged | None, against: str
                  ) -> Callable[[NumericProfile | CategoricalProfile], _Reference | None]:
    def of(profile: NumericProfile | CategoricalProfile) -> _Reference | None:
        if against == "previous":
            if previous is None or profile.name not in previous.columns:
                return None
            stats = previous.columns[profile.name]
            return _Reference(stats.counts, stats.sketch, stats.mean,
                              stats.missing / stats.rows if stats.rows else None,
                              stats.low, stats.high)
        total = sum(profile.counts)
        missing = profile.counts[-1] / total if total else None
        if isinstance(profile, NumericProfile):
            return _Reference(profile.counts, profile.sketch_counts, profile.mean, missing,
                              profile.min, profile.max)
        return _Reference(profile.counts, (), None, missing, None, None)
    return of


def _column(profile: NumericProfile | CategoricalProfile, current: Merged | None,
            reference: _Reference | None, thresholds: DriftThresholds, *,
            importance: float | None = None, starred: bool = False) -> dict[str, Any]:
    stats = current.columns.get(profile.name) if current is not None else None
    rows = stats.rows if stats is not None else 0
    entry: dict[str, Any] = {"name": profile.name, "kind": profile.kind, "rows": rows}
    if importance is not None:
        entry["importance"] = importance
        entry["starred"] = starred
        entry["high_importance"] = starred or importance >= thresholds.high_importance
    entry["histogram"] = {"labels": bucket_labels(profile),
                          "reference": list(reference.counts) if reference else None,
                          "current": list(stats.counts) if stats else None}
    if stats is None or reference is None:
        why = ("no reference rows (the window before is empty)" if stats is not None else
               "no rows in the window" if current is None or not current.rows else
               "no records of this column in the window")
        entry.update(psi=None, js=None, status="grey", drifted=False, reason=why)
        return entry
    entry["psi"] = psi(reference.counts, stats.counts, thresholds.psi_epsilon)
    entry["js"] = js_distance(reference.counts, stats.counts)
    entry["missing_share"] = stats.missing / rows if rows else None
    entry["reference_missing_share"] = reference.missing_share
    if isinstance(profile, NumericProfile):
        finite = rows - stats.missing
        std = profile.std
        mean = stats.mean
        entry["mean"] = mean
        entry["reference_mean"] = reference.mean
        entry["mean_difference_std"] = (
            (mean - reference.mean) / std if mean is not None and reference.mean is not None
            and std else None)
        entry["min"], entry["max"] = stats.low, stats.high
        entry["out_of_range_share"] = (stats.out_low + stats.out_high) / finite if finite else None
        wasserstein, ks = tail_signal(profile.sketch_edges, reference.sketch, stats.sketch,
                                      scale=std, current_low=stats.low, current_high=stats.high,
                                      reference_low=reference.low,
                                      reference_high=reference.high)
        entry["tail"] = {"wasserstein_std": wasserstein, "ks": ks}
    else:
        entry["new_level_share"] = stats.new / rows if rows else None
    entry.update(_feature_status(entry, rows, thresholds))
    return entry


def _feature_status(entry: Mapping[str, Any], rows: int, t: DriftThresholds) -> dict[str, Any]:
    value = entry["psi"]
    tail = (entry.get("tail") or {}).get("wasserstein_std")
    if rows < t.min_rows or value is None:
        return {"status": "grey", "drifted": False,
                "reason": f"{rows} rows in the window, under {t.min_rows}"}
    colour = "red" if value >= t.psi_red else "yellow" if value >= t.psi_yellow else "green"
    reason = f"PSI {value:.4f}"
    tail_drift = tail is not None and tail >= t.tail
    if tail_drift and colour == "green":
        colour = "yellow"
        reason += f"; tail shift {tail:.3f} std >= {t.tail}"
    return {"status": colour, "drifted": value >= t.drift_psi or tail_drift, "reason": reason}


def _quality(features: Sequence[Mapping[str, Any]], t: DriftThresholds) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for f in features:
        if not f["rows"] or f.get("psi") is None:
            continue
        missing, before = f.get("missing_share"), f.get("reference_missing_share")
        if missing is not None and missing >= 1.0 and (before or 0.0) < 1.0:
            found.append({"feature": f["name"], "finding": "column absent or all missing",
                          "value": missing, "threshold": 1.0})
        elif missing is not None and before is not None and missing - before > t.missing_points:
            found.append({"feature": f["name"], "finding": "missing rate up",
                          "value": missing - before, "threshold": t.missing_points})
        share = f.get("out_of_range_share")
        if share is not None and share > t.out_of_range_share:
            found.append({"feature": f["name"], "finding": "values outside the training range",
                          "value": share, "threshold": t.out_of_range_share})
        new = f.get("new_level_share")
        if new is not None and new > t.new_level_share:
            found.append({"feature": f["name"], "finding": "levels never seen in training",
                          "value": new, "threshold": t.new_level_share})
    return found


def _deployment_status(features: Sequence[Mapping[str, Any]], rows: int, t: DriftThresholds, *,
                       against: str, previous: Merged | None) -> dict[str, Any]:
    if not rows:
        return {"colour": "grey", "rule": "no records in the window",
                "value": 0, "threshold": t.min_rows}
    if against == "previous" and previous is None:
        return {"colour": "grey", "rule": "no records in the window before", "value": 0,
                "threshold": t.min_rows}
    if rows < t.min_rows:
        return {"colour": "grey", "rule": f"under {t.min_rows} rows in the window",
                "value": rows, "threshold": t.min_rows}
    high = [f["name"] for f in features if f["drifted"] and f.get("high_importance")]
    low = [f["name"] for f in features if f["drifted"] and not f.get("high_importance")]
    if len(high) >= t.red_high_importance:
        return {"colour": "red", "rule": "high-importance features drifted",
                "value": len(high), "threshold": t.red_high_importance, "features": high}
    if len(low) >= t.yellow_low_importance:
        return {"colour": "yellow", "rule": "low-importance features drifted",
                "value": len(low), "threshold": t.yellow_low_importance, "features": low}
    return {"colour": "green", "rule": "no feature drifted", "value": 0,
            "threshold": t.yellow_low_importance}


def _worst(colours: Sequence[str], rows: int) -> str:
    known = [c for c in colours if c != "grey"]
    if not rows or not known:
        return "grey"
    return max(known, key=COLOURS.index)


def bucket_labels(profile: NumericProfile | CategoricalProfile) -> list[str]:
    if isinstance(profile, CategoricalProfile):
        return [*profile.levels, OTHER, NEW, MISSING]
    edges = [_short(e) for e in profile.edges]
    if not edges:
        return ["all", "missing"]
    labels = [f"< {edges[0]}"]
    labels += [f"[{a}, {b})" for a, b in zip(edges, edges[1:], strict=False)]
    return [*labels, f">= {edges[-1]}", "missing"]


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)
