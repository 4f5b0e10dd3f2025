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


@job.command("list")
def job_list() -> None:
    """List jobs: id, status, age, output, and what a failed one left staged."""
    from batch.engine.housekeeping import ago, list_jobs

    jobs = list_jobs()
    if not jobs:
        click.echo("no jobs yet")
    for j in jobs:
        staged = "?" if j.staged_bytes is None else _size(j.staged_bytes)
        click.echo(f"{j.job_id}\t{j.status}\t{ago(j.age)}\t{j.output}\tstaged {staged}")


@job.command("discard")
@click.argument("job_ids", nargs=-1)
@click.option("--failed-before", metavar="AGE", help="Every failed (or abandoned) job idle "
              "for longer than AGE (such as 7d, 12h).")
@click.option("--force", is_flag=True, help="Also a job that looks alive (its process gone).")
def job_discard(job_ids: tuple[str, ...], failed_before: str | None, force: bool) -> None:
    """Remove jobs' staged chunks and records; never a published output."""
    from batch.engine.housekeeping import discard_job, list_jobs
    from batch.engine.store import JobStatus
    from batch.monitoring.store import parse_time

    chosen = list(job_ids)
    if failed_before is not None:
        from datetime import UTC, datetime

        cutoff = datetime.now(UTC) - parse_time(failed_before, option="--failed-before")
        chosen += [j.job_id for j in list_jobs() if j.status is not JobStatus.SUCCEEDED
                   and j.age > cutoff and j.job_id not in chosen]
    if not chosen:
        raise ConfigError("name the jobs to discard, or pass --failed-before AGE")
    for job_id in chosen:
        gone = discard_job(job_id, force=force)
        freed = "" if not gone.staged_bytes else f", {_size(gone.staged_bytes)} of staging removed"
        click.echo(f"discarded job {job_id} ({gone.status}{freed})")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
