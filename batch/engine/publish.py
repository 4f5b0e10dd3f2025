"""A finished job's monitoring records, from its manifest, to the monitoring store.

Runs once every chunk is staged and before the output is published. The records
come from the manifest (each committed chunk once, with the counts committed in
the same line), so a job killed and resumed any number of times publishes each
input row exactly once; publishing again writes the same files.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from batch.deployments import DeploymentRegistry
from batch.errors import JobError
from batch.monitoring.records import (
    ChunkFacts,
    Producer,
    duplicate_ids,
    health_table,
    predictions_table,
    stats_table,
)
from batch.monitoring.stage import open_store, settings_of
from batch.monitoring.stats import ChunkStats

if TYPE_CHECKING:
    from batch.engine.attempt import Attempt
    from batch.engine.store import ChunkRecord
    from batch.models.package import ModelPackage


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
    """Write the job's ``stats`` (when counted) and ``health`` records; the paths written.

    Raises:
        ConnectorError: the store cannot be written (the job fails, resumable).
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
    if run.record.logged:
        logs = [_log(run, chunk) for chunk in chunks]
        champion = predictions_table(producer, facts, logs)
        run.report.predictions_logged = champion.num_rows
        if run.record.association_id is not None:
            run.report.duplicate_association_ids = duplicate_ids(champion)
        logged, health = [champion], [tables["health"]]
        for digest in run.record.challengers:
            mine = replace(producer, model_id=digest, role="challenger")
            theirs = [replace(f, seconds=c.challengers[digest]["seconds"],
                              score_seconds=c.challengers[digest]["seconds"],
                              failed=int(c.challengers[digest]["failed"]), stats=None)
                      for f, c in zip(facts, chunks, strict=True)]
            logged.append(predictions_table(
                mine, theirs, [_log(run, chunk, digest) for chunk in chunks]))
            health.append(health_table(mine, theirs))
        tables["predictions"] = pa.concat_tables(logged)
        tables["health"] = pa.concat_tables(health)
    written = store.publish(deployment, run.record.job_id, tables)
    store.compact(deployment, before=datetime.now(UTC).date())  # earlier days: one file each
    return written
