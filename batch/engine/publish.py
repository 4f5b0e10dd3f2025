"""A finished job's monitoring records, from its manifest, to the monitoring store.

Runs once every chunk is staged and before the output is published. The records
come from the manifest (each committed chunk once, with the counts committed in
the same line), so a job killed and resumed any number of times publishes each
input row exactly once; publishing again writes the same files.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry
from batch.errors import JobError
from batch.monitoring.duplicates import DuplicateIds
from batch.monitoring.records import (
    ChunkFacts,
    Producer,
    health_table,
    prediction_rows,
    stats_table,
)
from batch.monitoring.stage import open_store, settings_of
from batch.monitoring.stats import ChunkStats
from batch.scoring.prediction_log import BUCKET_COLUMN

if TYPE_CHECKING:
    from batch.engine.attempt import Attempt
    from batch.engine.store import ChunkRecord
    from batch.models.package import ModelPackage
    from batch.monitoring.store import MonitoringStore


def deployment_id(model: str, package: ModelPackage, registry: DeploymentRegistry) -> str:
    """The deployment a job's records belong to: the deployment it named, else the
    model's name (a package scored by its path)."""
    if registry.find(model) is not None:
        return model
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", package.manifest.name).strip("-._")
    return name or "model"


def _log(run: Attempt, chunk: ChunkRecord, model: str | None = None) -> pa.RecordBatch:
    """A committed chunk's prediction log (of challenger ``model``), with rows numbered
    in the job's input.

    Raises:
        JobError: it is missing or not what the manifest says (the job's folder was
            tampered with): nothing is published.
    """
    expected = chunk.logged if model is None else int(chunk.challengers[model]["logged"])
    try:
        log = run.store.log(run.record.job_id, chunk.index, model=model)
    except (OSError, pa.ArrowException) as exc:
        raise JobError(f"job {run.record.job_id!r}: the prediction log of chunk "
                       f"{chunk.index} cannot be read ({exc}); discard the job and run it "
                       "again") from None
    if expected is not None and log.num_rows != expected:
        raise JobError(f"job {run.record.job_id!r}: the prediction log of chunk "
                       f"{chunk.index} has {log.num_rows:,} rows, its manifest "
                       f"{expected:,}; discard the job and run it again")
    rows = pc.add(log.column("row"), pa.scalar(chunk.start_row, pa.int64()))
    return log.set_column(log.schema.get_field_index("row"), "row", rows)


def publish_records(run: Attempt) -> list[str]:
    """Write the job's ``stats`` (when counted), ``health`` and ``predictions`` (when
    logged) records; the paths written.

    Raises:
        ConnectorError: the store cannot be written (the job fails, resumable).
        JobError: a staged prediction log is missing or not what the manifest says.
    """
    spec = run.spec
    registry = DeploymentRegistry(run.store.home)
    deployment = deployment_id(spec.model, run.package, registry)
    store = open_store(settings_of(deployment, registry), spec.monitoring_store,
                       spec.monitoring_store_options, registry)
    chunks = run.store.chunks(run.record.job_id)
    facts = [ChunkFacts(c.index, c.rows, c.failed, c.seconds, c.ended_at or datetime.now(UTC),
                        ChunkStats.from_json(c.stats) if c.stats is not None else None,
                        score_seconds=c.score_seconds)
             for c in chunks]
    producer = Producer(deployment, run.package.digest, run.record.job_id)
    tables = {"health": health_table(producer, facts)}
    if run.baseline is not None:
        store.save_baseline(run.baseline)
        tables["stats"] = stats_table(producer, facts,
                                      (p.name for p in run.baseline.predictions))
    written: list[str] = []
    if run.record.logged:
        logs = [_Log(None, producer, facts)]
        health = [tables["health"]]
        for digest in run.record.challengers:
            mine = replace(producer, model_id=digest, role="challenger")
            theirs = [replace(f, seconds=c.challengers[digest]["seconds"],
                              score_seconds=c.challengers[digest]["seconds"],
                              failed=int(c.challengers[digest]["failed"]), stats=None)
                      for f, c in zip(facts, chunks, strict=True)]
            logs.append(_Log(digest, mine, theirs))
            health.append(health_table(mine, theirs))
        tables["health"] = pa.concat_tables(health)
        written += _publish_logs(run, store, chunks, logs)
        run.report.predictions_logged = sum(c.logged or 0 for c in chunks)
    written += store.publish(deployment, run.record.job_id, tables)
    store.compact(deployment, before=datetime.now(UTC).date())  # earlier days: one file each
    return written


@dataclass(frozen=True, slots=True)
class _Log:
    model: str | None  # a challenger's digest; None: the champion's
    producer: Producer
    facts: list[ChunkFacts]


def _publish_logs(run: Attempt, store: MonitoringStore, chunks: list[ChunkRecord],
                  logs: list[_Log]) -> list[str]:
    """Each model's prediction log to a file of its own (per day), and the champion's
    repeated association ids counted, side by side in threads: encoding Parquet and
    hashing ids leave the interpreter's lock, and the workers are idle by now."""
    job_id = run.record.job_id

    def publish(log: _Log) -> list[str]:
        parts = (prediction_rows(log.producer, fact, _log(run, chunk, log.model))
                 for fact, chunk in zip(log.facts, chunks, strict=True))
        return store.publish_parts(log.producer.deployment_id, job_id, "predictions", parts,
                                   part=None if log.model is None else log.model[:16])

    def count() -> int:
        with DuplicateIds(run.store.path(job_id) / "duplicate-ids") as seen:
            for chunk in chunks:
                log = _log(run, chunk)
                keys = log.column(BUCKET_COLUMN) if BUCKET_COLUMN in log.schema.names \
                    else None  # hashed in the worker (a log staged by an older version: not)
                seen.add(log.column("association_id"), log.column("row"), keys)
            return seen.count(examples=False).rows

    with ThreadPoolExecutor(max_workers=max(1, min(len(logs) + 1, os.cpu_count() or 1))
                            ) as pool:
        duplicates = pool.submit(count) if run.record.association_id is not None else None
        published = [pool.submit(publish, log) for log in logs]
        written = [path for future in published for path in future.result()]
        if duplicates is not None:
            run.report.duplicate_association_ids = duplicates.result()
    return written
