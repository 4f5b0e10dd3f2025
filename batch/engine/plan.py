"""A job cut into partitions: runs of whole chunks that a flow scores one task each."""

from __future__ import annotations

from dataclasses import dataclass

from batch.deployments import resolve_model
from batch.engine.attempt import check_uris, prepare
from batch.engine.spec import JobSpec
from batch.engine.store import JobStatus, JobStore
from batch.engine.workers import JobWorkers
from batch.errors import ConfigError
from batch.models.package import ModelPackage


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A job that passed its pre-flight, cut into partitions of whole chunks."""

    job_id: str
    finished: bool  # the job id had already succeeded: nothing to score
    chunks: int | None  # chunks the input makes, as planned (None: unknown)
    partitions: tuple[tuple[int, int | None], ...]  # [start, stop) chunk indexes, last open


def plan_job(
    spec: JobSpec,
    *,
    package: ModelPackage | None = None,
    store: JobStore | None = None,
    workers: JobWorkers | None = None,
    partition_chunks: int = 16,
) -> JobPlan:
    """Run the pre-flight and record the job (so that :func:`~batch.engine.run.run_job`
    with ``resume=True`` starts scoring at once), and cut it into partitions of
    ``partition_chunks`` chunks for ``run_job(..., until_chunk=stop)`` calls.

    Raises:
        ConfigError: ``spec`` has no job id, or the job exists and ``spec`` is
            not a resume, or it differs from the recorded job.
        The pre-flight's errors (see :func:`~batch.engine.run.run_job`).
    """
    if not spec.job_id:
        raise ConfigError("plan_job needs a job id")
    check_uris(spec)
    store = store or JobStore()
    package = package or resolve_model(spec.model)
    previous = store.load(spec.job_id)
    if previous is not None and previous.status is JobStatus.SUCCEEDED:
        return JobPlan(spec.job_id, True, None, ())
    attempt = prepare(spec, spec.job_id, package, store=store, previous=previous,
                      workers=workers or JobWorkers(spec, package, start=False))
    chunks = attempt.record.chunks_planned
    size = max(1, partition_chunks)
    stops: list[int | None] = list(range(size, chunks, size)) if chunks else []
    starts = [0, *(s for s in stops if s is not None)]
    return JobPlan(spec.job_id, False, chunks, tuple(zip(starts, [*stops, None], strict=True)))
