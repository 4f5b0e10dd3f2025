"""The scoring flow: a job spec in, the job report out, tracked by Prefect.

``batch_score`` wires these tasks, each calling one ``batch`` function:

1. ``resolve-model``: the package the job names (a directory or a deployment);
2. ``job-status``: the engine's record of the job id, if any;
3. ``plan``: :func:`batch.engine.plan_job`: the pre-flight (the leading rows
   through the model, so a schema or model problem fails in seconds, before
   any output), the job record, and the partitions: runs of
   ``BATCHPRED_FLOW_PARTITION_CHUNKS`` consecutive chunks (CSV byte ranges, or
   streamed chunks of Parquet row groups, JSON lines or Snowflake result batches);
4. ``score-<k>`` per partition: :func:`batch.engine.run_job` with ``resume=True``
   up to the partition's last chunk; the last one also publishes the output.
   Each is retried with exponential backoff; an attempt continues after the
   last chunk the engine's manifest records, so nothing is scored or written
   twice. Errors that another attempt cannot fix (bad config, schema, model
   output, error budget) are not retried. The partitions run in order (the
   output is in input order) and share the job's scoring processes, which
   score the chunks of each partition in parallel;
5. ``publish``: the report as a table artifact.

Progress shows as one progress artifact for the job, updated as chunks land.

The flow run is named after the job id, and the job id is what makes a re-run
resume: running ``batch_score`` again for a failed job id continues it, and for
a finished one returns its saved report (``already_done``). A job without an
id gets one: ``<deployment>-<scheduled start>`` for deployment runs (so a
re-run of that flow run resumes), else a fresh one.

With ``executor: dask`` the partitions' chunks are scored on a Dask cluster
through ``distributed`` (see ``batch.engine.pool.dask``), the workers reading CSV
byte ranges themselves; no Prefect task runner is involved.
"""

from __future__ import annotations

import re
import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext
from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from batch.deployments import resolve_model
from batch.engine.budget import ErrorBudgetExceeded
from batch.engine.report import JobReport
from batch.engine.run import JobPlan, plan_job, run_job
from batch.engine.spec import JobSpec, new_job_id
from batch.engine.store import JobStatus, JobStore
from batch.engine.workers import JobWorkers
from batch.errors import ModelOutputError
from batch.models.package import ModelPackage
from connectors import Progress
from flows.settings import FlowSettings

FLOW_NAME = "batch-score"
# Retrying cannot fix these: the same input, output and model fail the same way. By the
# built-ins the error trees inherit: bad values and settings (ConfigError,
# ConnectorConfigError, SchemaError, PackageError, InputFormatError, QueryError, ...),
# unknown names (DeploymentError), missing inputs, refused credentials and an output that
# exists (OutputExistsError: it stays until the job says overwrite); plus a model
# breaking its contract and a spent error budget. Decided by type only, never by message.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, LookupError, FileNotFoundError, FileExistsError, PermissionError,
    ModelOutputError, ErrorBudgetExceeded,
)


def artifact_key(job_id: str, kind: str) -> str:
    """An artifact key for a job (keys allow lowercase letters, digits and dashes)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", job_id.lower()).strip("-")
    return f"{kind}-{slug}"[:100]


def job_run_name() -> str:
    """The flow run's name: the job id (see the module docstring)."""
    ctx = FlowRunContext.get()
    job = (ctx.parameters or {}).get("job") if ctx else None
    job_id = job.job_id if isinstance(job, JobSpec) else (job or {}).get("job_id")
    if job_id:
        return str(job_id)
    if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id:
        from prefect.runtime import deployment

        started = ctx.flow_run.expected_start_time
        return f"{deployment.name}-{started:%Y%m%d-%H%M%S}"
    return new_job_id()


def _transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only failures another attempt may not repeat (worker died, I/O, user code)."""
    error = state.data
    return not isinstance(error, PERMANENT_ERRORS)


@task(name="job-status", cache_policy=NO_CACHE)
def job_status(job_id: str) -> str | None:
    """The engine's status of ``job_id`` (None: never run)."""
    record = JobStore().load(job_id)
    return None if record is None else str(record.status)


@task(name="resolve-model", cache_policy=NO_CACHE)
def resolve(spec: JobSpec) -> ModelPackage:
    package = resolve_model(spec.model)
    get_run_logger().info("model: %s at %s", package.label, package.path)
    return package


@task(name="plan", cache_policy=NO_CACHE)
def plan(spec: JobSpec, package: ModelPackage, workers: JobWorkers) -> JobPlan:
    """Pre-flight and record the job; returns its partitions."""
    job_plan = plan_job(spec, package=package, workers=workers,
                        partition_chunks=FlowSettings().partition_chunks)
    record = JobStore().load(job_plan.job_id)
    assert record is not None
    get_run_logger().info(
        "preflight passed: %s chunks (%s bytes or %s rows each) in %s partitions; scorer: %s",
        job_plan.chunks or "?", record.chunk_bytes or "-", record.chunk_rows or "-",
        len(job_plan.partitions), record.scorer)
    return job_plan


class ProgressPublisher:
    """``run_job``'s progress callback: a progress artifact and a log line, throttled."""

    def __init__(self, job_id: str, settings: FlowSettings) -> None:
        self.job_id = job_id
        self.settings = settings
        self._artifact_id: UUID | None = None
        self._updated = self._logged = time.monotonic()

    @property
    def artifact_id(self) -> UUID:
        """The job's progress artifact, created by the first scoring task that reports."""
        if self._artifact_id is None:
            artifact_id = create_progress_artifact(
                0.0, key=artifact_key(self.job_id, "progress"),
                description=f"job {self.job_id}: starting")
            assert isinstance(artifact_id, UUID)  # the sync call, not the coroutine
            self._artifact_id = artifact_id
        return self._artifact_id

    @property
    def logger(self) -> Any:
        return get_run_logger()  # the logger of the task reporting now

    def __call__(self, progress: Progress, report: JobReport) -> None:
        now = time.monotonic()
        if now - self._updated >= self.settings.progress_interval:
            self._updated = now
            self.update(report, progress.fraction)
        if now - self._logged >= self.settings.log_interval:
            self._logged = now
            fields = report.progress_fields(progress.fraction)
            self.logger.info("%s%% done: %s rows scored, %s failed, %.0f s",
                             fields["percentageCompleted"], f"{report.rows_scored:,}",
                             f"{report.rows_failed:,}", report.seconds)

    def update(self, report: JobReport, fraction: float | None) -> None:
        fields = report.progress_fields(fraction)
        update_progress_artifact(self.artifact_id, fields["percentageCompleted"],
                                 description=f"job {report.job_id}: {fields['scoredRows']:,} "
                                 f"rows scored, {fields['failedRows']:,} failed")


@task(name="score", cache_policy=NO_CACHE, retry_condition_fn=_transient)
def score_job(spec: JobSpec, package: ModelPackage, *, workers: JobWorkers | None = None,
              until_chunk: int | None = None,
              publisher: ProgressPublisher | None = None) -> dict[str, Any]:
    """``run_job`` with resume, up to ``until_chunk`` (None: to the end, then publish).

    A retry continues after the last committed chunk.
    """
    logger = get_run_logger()
    assert spec.job_id is not None and spec.resume
    publisher = publisher or ProgressPublisher(spec.job_id, FlowSettings())
    report = run_job(spec, package=package, on_progress=publisher, workers=workers,
                     until_chunk=until_chunk)
    if report.status != JobStatus.RUNNING:
        publisher.update(report, 1.0)
    if report.already_done:
        logger.info("job %s had already finished; returning its report", spec.job_id)
    elif report.status == JobStatus.RUNNING:
        logger.info("scored chunks %s-%s (%s rows so far, %s failed)", report.resumed_chunks,
                    report.chunks - 1, f"{report.rows_scored:,}", f"{report.rows_failed:,}")
    else:
        logger.info("scored %s rows (%s failed, %s chunks resumed) in %.1f s -> %s",
                    f"{report.rows_scored:,}", f"{report.rows_failed:,}",
                    report.resumed_chunks, report.seconds, report.output)
    return {**report.to_json(), "already_done": report.already_done}


@task(name="publish", cache_policy=NO_CACHE)
def publish(report: dict[str, Any]) -> None:
    """The report's scalar fields as a two-column table artifact."""
    rows = [{"field": k, "value": v} for k, v in report.items()
            if not isinstance(v, dict | list)]
    create_table_artifact(rows, key=artifact_key(report["job_id"], "report"),
                          description=f"batchpred job {report['job_id']}")


@flow(name=FLOW_NAME, flow_run_name=job_run_name, persist_result=False)
def batch_score(job: JobSpec | dict[str, Any]) -> dict[str, Any]:
    """Score a job; returns its report (``JobReport.to_json()`` plus ``already_done``).

    Raises:
        pydantic.ValidationError: ``job`` is not a valid job spec.
        The engine's errors (see :func:`batch.engine.run_job`), after the
        retries of the scoring task.
    """
    ctx = FlowRunContext.get()
    spec = job if isinstance(job, JobSpec) else JobSpec.model_validate(job)
    job_id = spec.job_id or (ctx.flow_run.name if ctx and ctx.flow_run else new_job_id())
    spec = spec.model_copy(update={"job_id": job_id, "resume": True})
    settings = FlowSettings()
    package = resolve(spec)
    if job_status(job_id) == JobStatus.SUCCEEDED:
        report = score_job(spec, package)
        publish(report)
        return report
    with JobWorkers(spec, package) as workers:
        job_plan = plan(spec, package, workers)
        publisher = ProgressPublisher(job_id, settings)
        for k, (_, stop) in enumerate(job_plan.partitions):
            scorer = score_job.with_options(
                name=f"score-{k}", retries=settings.retries,
                retry_delay_seconds=exponential_backoff(settings.retry_delay))
            report = scorer(spec, package, workers=workers, until_chunk=stop,
                            publisher=publisher)
    publish(report)
    return report
