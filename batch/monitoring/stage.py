"""The drift stage run against a monitoring store: which records, which baseline.

:func:`run_drift` reads a deployment's ``stats`` records in the window, picks the
baseline (the deployment's package's, else the newest records' copy in the
store), leaves out records counted on any other baseline (saying which jobs and
why), merges the rest and returns the drift document; ``--by`` adds one entry
per hour or day, ``--against previous`` compares with the window before, of
the same length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry, DeploymentSettings
from batch.errors import ConfigError
from batch.monitoring.baseline import Baseline, read_baseline
from batch.monitoring.drift import Merged, Window, drift_document, merge_table, psi
from batch.monitoring.store import MonitoringStore, default_store
from connectors.errors import ConnectorError
from connectors.storage import StorageOptions


class NoBaselineError(ConfigError):
    """The deployment has no baseline to measure drift against."""


@dataclass(frozen=True, slots=True)
class DriftRequest:
    deployment: str
    since: datetime | None = None
    until: datetime | None = None
    job_id: str | None = None
    source: str | None = None  # "batch" or "realtime"; None: both
    consumer: str | None = None  # only the requests of this API consumer (a segment)
    by: str | None = None  # "hour" or "day"
    against: str = "baseline"  # or "previous"
    store: str | None = None  # default: the deployment's setting, else <home>/monitoring
    store_options: Mapping[str, str] | None = None


def settings_of(deployment: str, registry: DeploymentRegistry | None = None
                ) -> DeploymentSettings:
    found = (registry or DeploymentRegistry()).find(deployment)
    return found.settings if found is not None else DeploymentSettings()


def open_store(settings: DeploymentSettings, uri: str | None = None,
               options: Mapping[str, str] | None = None,
               registry: DeploymentRegistry | None = None) -> MonitoringStore:
    """The store given, else the deployment's, else the home's default.

    Raises:
        ConnectorConfigError: bad storage options.
    """
    home = (registry or DeploymentRegistry()).home
    given = store_options(options or {})  # checked even when they would go unused
    if uri is not None:
        return MonitoringStore(uri, given)
    if options:
        raise ConfigError("store options are given without the store they are for: pass "
                          "the store's URI too (--store or --monitoring-store)")
    if settings.monitoring_store is not None:
        return MonitoringStore(settings.monitoring_store,
                               store_options(settings.monitoring_store_options))
    return MonitoringStore(default_store(home))


def store_options(values: Mapping[str, str]) -> StorageOptions:
    """``--monitoring-store-option KEY=VALUE`` pairs as storage options.

    Raises:
        ConnectorConfigError: naming the bad key (values are never echoed).
    """
    from pydantic import ValidationError

    from connectors.errors import config_error

    try:
        return StorageOptions.model_validate(dict(values))
    except ValidationError as exc:
        raise config_error(exc, "monitoring store option '{field}'",
                           known_options=StorageOptions.model_fields) from exc


def run_drift(request: DriftRequest, *, registry: DeploymentRegistry | None = None
              ) -> dict[str, Any]:
    """The drift document of ``request``.

    Raises:
        NoBaselineError: neither the deployment nor the store has a baseline.
        ConfigError: a bad window or option.
        ConnectorError: the store cannot be read.
    """
    registry = registry or DeploymentRegistry()
    settings = settings_of(request.deployment, registry)
    store = open_store(settings, request.store, request.store_options, registry)
    until = request.until or datetime.now(UTC)
    since = request.since or (until - timedelta(days=1))
    if since >= until:
        raise ConfigError(f"--since {since.isoformat()} is not before --until "
                          f"{until.isoformat()}")
    found = store.read(request.deployment, "stats", since=since, until=until,
                       job_id=request.job_id)
    found.table = _of_source(found.table, request.source, request.consumer)
    by_print = merge_table(found.table)
    baseline = _baseline(request.deployment, registry, store, found.table)
    with contextlib.suppress(ConnectorError):  # a read-only store still answers the stage
        store.save_baseline(baseline)
    excluded = _excluded(found.table, baseline.fingerprint)
    current = by_print.get(baseline.fingerprint)
    previous = None
    if request.against == "previous":
        span = until - since
        before = store.read(request.deployment, "stats", since=since - span, until=since,
                            job_id=request.job_id)
        before.table = _of_source(before.table, request.source, request.consumer)
        previous = merge_table(before.table).get(baseline.fingerprint)
        found.warnings.extend(before.warnings)
    window = Window(since, until, request.by, request.job_id, request.source,
                    request.consumer)
    over_time = (_over_time(found.table, baseline, request.by, settings.drift.psi_epsilon)
                 if request.by else [])
    return drift_document(baseline, current, deployment_id=request.deployment, window=window,
                          thresholds=settings.drift, previous=previous,
                          against=request.against, excluded=excluded, over_time=over_time,
                          warnings=found.warnings)


def _of_source(table: pa.Table, source: str | None, consumer: str | None = None) -> pa.Table:
    """The rows of ``source`` (None: any) and of ``consumer`` (None: any)."""
    if consumer is not None and table.num_rows:
        table = table.filter(pc.equal(table.column("consumer"), consumer))
    if source is None or not table.num_rows:
        return table
    return table.filter(pc.equal(table.column("source"), source))


def _baseline(deployment: str, registry: DeploymentRegistry, store: MonitoringStore,
              table: pa.Table) -> Baseline:
    known = registry.find(deployment)
    if known is not None:
        baseline = read_baseline(registry.package(deployment))
        if baseline is None:
            raise NoBaselineError(
                f"deployment {deployment!r} has no baseline: add one with `batchpred baseline "
                f"PACKAGE --training-data FILE`, then `batchpred deploy create {deployment} "
                "--model PACKAGE --replace`")
        return baseline
    if table.num_rows:
        newest = pc.index(table.column("ts_end"), pc.max(table.column("ts_end")))
        fingerprint = table.column("fingerprint")[newest.as_py()].as_py()
        stored = store.baseline(fingerprint)
        if stored is not None:
            return stored
    raise NoBaselineError(
        f"no baseline for {deployment!r}: it is not a deployment of this home, and the store "
        f"{store.uri} keeps no baseline for its records in the window (score with a package "
        "that has one: `batchpred baseline PACKAGE --training-data FILE`)")


def _excluded(table: pa.Table, fingerprint: str) -> list[dict[str, Any]]:
    if not table.num_rows:
        return []
    other = table.filter(pc.not_equal(table.column("fingerprint"), fingerprint))
    if not other.num_rows:
        return []
    seen: dict[tuple[str, str], int] = {}
    chunks: set[tuple[str, str, int]] = set()
    for job, print_, chunk, rows in zip(*(other.column(c).to_pylist() for c in (
            "job_id", "fingerprint", "chunk_index", "rows")), strict=True):
        if (job, print_, chunk) in chunks:
            continue
        chunks.add((job, print_, chunk))
        seen[(job, print_)] = seen.get((job, print_), 0) + rows
    return [{"job_id": job, "fingerprint": print_, "rows": rows,
             "reason": f"counted on baseline {print_[:12]}, not the deployment's "
                       f"{fingerprint[:12]}: rescore the input with the deployment's package, "
                       "or run the stage on records of that package alone (--job)"}
            for (job, print_), rows in sorted(seen.items())]


def _over_time(table: pa.Table, baseline: Baseline, by: str, eps: float
               ) -> list[dict[str, Any]]:
    """Per hour or day: rows, each feature's PSI against the baseline and each
    prediction's counts."""
    if not table.num_rows:
        return []
    mine = table.filter(pc.equal(table.column("fingerprint"), baseline.fingerprint))
    if not mine.num_rows:
        return []
    unit = "hour" if by == "hour" else "day"
    keys = pc.floor_temporal(mine.column("hour"), unit=unit)
    mine = mine.append_column("bucket", keys)
    entries = []
    for bucket in sorted(pc.unique(keys).to_pylist()):
        part = merge_table(mine.filter(pc.equal(mine.column("bucket"), pa.scalar(
            bucket, keys.type))).drop_columns(["bucket"])).get(baseline.fingerprint)
        assert part is not None
        entries.append(_bucket_entry(bucket, part, baseline, eps))
    return entries


def _bucket_entry(bucket: datetime, part: Merged, baseline: Baseline, eps: float
                  ) -> dict[str, Any]:
    features = {p.name: psi(p.counts, part.columns[p.name].counts, eps)
                for p in baseline.features if p.name in part.columns}
    predictions = {}
    for p in baseline.predictions:
        if p.name in part.columns:
            stats = part.columns[p.name]
            predictions[p.name] = {"psi": psi(p.counts, stats.counts, eps),
                                   "counts": list(stats.counts), "mean": stats.mean}
    return {"start": bucket.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "rows": part.rows, "psi": features, "predictions": predictions}
