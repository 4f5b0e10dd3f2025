"""The jobs of a home: what each left behind, and removing what a failed job staged.

:func:`list_jobs` gives each job's status, age, output and the bytes its
unpublished chunks take; :func:`discard_job` removes a job's staged chunks (of
its output and quarantine) and its record, never a published output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from batch.engine.attempt import quarantine_options
from batch.engine.store import JobRecord, JobStatus, JobStore
from batch.errors import ConfigError
from connectors import ConnectorError, OutputRequest, StagingOutput, open_output


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: str
    status: JobStatus
    age: timedelta
    output: str
    staged_bytes: int | None  # None: the output cannot say (or cannot be reached)
    staging: tuple[str, ...]


def _outputs(record: JobRecord) -> list[tuple[str, StagingOutput | None]]:
    """The job's output and quarantine, opened to look at their staging."""
    spec = record.spec
    targets = [(spec.output, dict(spec.output_options), record.job_id)]
    if spec.quarantine:
        targets.append((spec.quarantine, quarantine_options(spec),
                        record.job_id + "-quarantine"))
    found: list[tuple[str, StagingOutput | None]] = []
    for uri, options, job_id in targets:
        try:
            out = open_output(OutputRequest(uri=uri, options=options, overwrite=True,
                                            job_id=job_id))
        except ConnectorError:
            found.append((uri, None))
            continue
        found.append((uri, out if isinstance(out, StagingOutput) else None))
    return found


def summary(store: JobStore, record: JobRecord) -> JobSummary:
    staged: int | None = 0
    where: list[str] = []
    if record.status is not JobStatus.SUCCEEDED:
        for _, out in _outputs(record):
            if out is None:
                staged = None
                continue
            try:
                size = out.staged_bytes()
            except ConnectorError:
                staged = None
                continue
            if size:
                where.append(out.staging())
            staged = None if staged is None else staged + size
    return JobSummary(record.job_id, record.status, idle_for(store, record.job_id),
                      record.spec.output, staged, tuple(where))


def list_jobs(store: JobStore | None = None) -> list[JobSummary]:
    """Every job of the home, newest first."""
    store = store or JobStore()
    if not store.root.exists():
        return []
    records = [r for r in (store.load(p.name) for p in store.root.iterdir() if p.is_dir())
               if r is not None]
    records.sort(key=lambda r: r.updated_at, reverse=True)
    return [summary(store, r) for r in records]


def failed_jobs(deployment: str, *, since: datetime, until: datetime,
                store: JobStore | None = None) -> list[str]:
    """The jobs of ``deployment`` (named by it) that failed in [since, until), oldest
    first: a failed job publishes no records, so its failure is known here."""
    store = store or JobStore()
    if not store.root.exists():
        return []
    found = [r for r in (store.load(p.name) for p in store.root.iterdir() if p.is_dir())
             if r is not None and r.status is JobStatus.FAILED and r.spec.model == deployment
             and since <= r.updated_at < until]
    return [r.job_id for r in sorted(found, key=lambda r: r.updated_at)]


ACTIVE = timedelta(minutes=2)  # a running job commits a chunk more often than this


def discard_job(job_id: str, store: JobStore | None = None, *, force: bool = False
                ) -> JobSummary:
    """Remove job ``job_id``'s staged chunks and its record (its published output stays).

    Raises:
        ConfigError: no such job, or it looks alive (its record or manifest changed in
            the last two minutes) and not ``force``.
        ConnectorError: the staging could not be removed (the record is kept).
    """
    store = store or JobStore()
    record = store.load(job_id)
    if record is None:
        raise ConfigError(f"no job {job_id!r} (jobs are kept under {store.root})")
    idle = idle_for(store, job_id)
    if record.status in (JobStatus.RUNNING, JobStatus.PUBLISHING) and idle < ACTIVE and (
            not force):
        raise ConfigError(f"job {job_id!r} is {record.status} and committed a chunk "
                          f"{ago(idle)} ago; discard it once it has stopped (or pass --force "
                          "if its process is gone)")
    before = summary(store, record)
    if record.status is not JobStatus.SUCCEEDED:
        for _, out in _outputs(record):
            if out is not None:
                out.discard_staging()
    shutil.rmtree(store.path(job_id))
    return before


def idle_for(store: JobStore, job_id: str) -> timedelta:
    """Time since the job last wrote its record or its manifest."""
    files = [store.path(job_id) / name for name in ("job.json", "manifest.jsonl")]
    latest = max((f.stat().st_mtime for f in files if f.exists()), default=0.0)
    return datetime.now(UTC) - datetime.fromtimestamp(latest, UTC)


def ago(delta: timedelta) -> str:
    """``delta`` as people say it: 45 s, 12 min, 5 h, 3 d."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"

