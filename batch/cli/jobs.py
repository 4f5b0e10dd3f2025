"""``batchpred job``: what the job store knows of a job."""

from __future__ import annotations

import json

import click

from batch.errors import ConfigError


@click.group()
def job() -> None:
    """Inspect scoring jobs."""


@job.command("show")
@click.argument("job_id")
def job_show(job_id: str) -> None:
    """Print the report of job JOB_ID (or its state, if it has not finished)."""
    from batch.engine.store import JobStatus, JobStore

    store = JobStore()
    report = store.report(job_id)
    record = store.load(job_id)
    if record is None:
        raise ConfigError(f"no job {job_id!r} (jobs are kept under {store.root})")
    if report is None or record.status is not JobStatus.SUCCEEDED:
        chunks = store.chunks(job_id)
        report = {"job_id": job_id, "status": str(record.status), "error": record.error,
                  "committed_chunks": len(chunks), "scoredRows": sum(c.rows for c in chunks),
                  "failedRows": sum(c.failed for c in chunks)}
    click.echo(json.dumps(report, indent=2, default=str))
