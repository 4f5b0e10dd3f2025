"""Running jobs through Prefect from Python: now (:func:`score`) or on a worker (:func:`submit`).

``score(job)`` runs the ``batch-score`` flow in this process and returns the
report. ``submit(job)`` creates a run of the ``batch-score/submit`` deployment
that ``batchpred worker`` serves and returns a :class:`JobHandle` at once.
Without Prefect at all, :func:`batch.run_job` scores a job directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    TaskRunFilter,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import ArtifactSort
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from batch.engine.report import JobReport
from batch.engine.spec import JobSpec, new_job_id
from batch.engine.store import JobStore
from batch.errors import ConfigError, JobError
from flows.api import prefect_api, submission_api, use_api, wait_for_api
from flows.jobfile import job_from_mapping, load_job_file, with_job_id
from flows.scoring import FLOW_NAME, artifact_key, batch_score

SUBMIT_DEPLOYMENT = "submit"
JobInput = JobSpec | Mapping[str, Any] | str | Path


def as_job_spec(job: JobInput) -> JobSpec:
    """A JobSpec from a spec, a mapping of its fields, or a job file path.

    Raises:
        ConfigError: the mapping or file is not a valid job spec.
    """
    if isinstance(job, JobSpec):
        return job
    if isinstance(job, str | Path):
        return load_job_file(job)
    return job_from_mapping(dict(job))


def job_parameters(spec: JobSpec) -> dict[str, Any]:
    """The flow's parameters for ``spec``, as stored in Prefect (JSON, defaults left out)."""
    return {"job": spec.model_dump(mode="json", exclude_defaults=True)}


def score(job: JobInput) -> JobReport:
    """Run ``job`` through the ``batch-score`` flow now, in this process.

    Uses the configured Prefect API, a running worker's, or a temporary local
    server (see :mod:`flows.api`).

    Raises:
        ConfigError: ``job`` is not a valid job spec.
        The engine's errors (see :func:`batch.engine.run_job`) once retries are spent.
    """
    spec = as_job_spec(job)
    with prefect_api():
        wait_for_api()
        data = batch_score(spec)
    return JobReport.from_json(data)


def submit(job: JobInput, *, job_id: str | None = None) -> JobHandle:
    """Queue ``job`` for the worker; returns at once.

    The job id is ``job_id``, else the spec's, else a new one; submitting a
    failed job's id again resumes it.

    Raises:
        ConfigError: an invalid job, no worker's API to reach, or no worker has
            registered the submission deployment there yet.
    """
    spec = as_job_spec(job)
    spec = with_job_id(spec, job_id or spec.job_id or new_job_id())
    assert spec.job_id is not None
    with submission_api() as api_url:
        with get_client(sync_client=True) as client:
            _submission_deployment(client, api_url)
        run = run_deployment(
            f"{FLOW_NAME}/{SUBMIT_DEPLOYMENT}", parameters=job_parameters(spec),
            flow_run_name=spec.job_id, timeout=0, as_subflow=False, tags=["batchpred"],
        )
    assert isinstance(run, FlowRun)  # the sync call, not the coroutine
    return JobHandle(job_id=spec.job_id, flow_run_id=run.id, api_url=api_url)


def _submission_deployment(client: SyncPrefectClient, api_url: str) -> None:
    try:
        client.read_deployment_by_name(f"{FLOW_NAME}/{SUBMIT_DEPLOYMENT}")
    except ObjectNotFound:
        raise ConfigError(f"no worker has registered {FLOW_NAME}/{SUBMIT_DEPLOYMENT} at "
                          f"{api_url}: start `batchpred worker` against this API") from None


@dataclass(frozen=True, slots=True)
class JobHandle:
    """A submitted job: its id, its Prefect flow run, and the API that tracks it."""

    job_id: str
    flow_run_id: UUID
    api_url: str

    @contextmanager
    def _client(self) -> Iterator[SyncPrefectClient]:
        with use_api(self.api_url), get_client(sync_client=True) as client:
            yield client

    def flow_run(self) -> FlowRun:
        with self._client() as client:
            return client.read_flow_run(self.flow_run_id)

    def status(self) -> str:
        """The flow run's state name: Scheduled, Late, Pending, Running, Completed, Failed, ..."""
        state = self.flow_run().state
        return state.name if state is not None and state.name else "Unknown"

    def wait(self, timeout: float | None = None, *, poll: float = 1.0) -> str:
        """Wait until the run ends; returns its final state name.

        Raises:
            TimeoutError: still not finished after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.flow_run().state
            if state is not None and state.is_final():
                return state.name or state.type.value
            if deadline is not None and time.monotonic() >= deadline:
                name = state.name if state is not None else "unknown"
                raise TimeoutError(f"job {self.job_id} is still {name} after {timeout:g} s")
            time.sleep(poll)

    def report(self) -> JobReport:
        """The job's report: from the job store here, else from the run's report artifact.

        Raises:
            JobError: the job has not finished successfully (yet).
        """
        saved = JobStore().report(self.job_id)
        if saved is not None:
            return JobReport.from_json(saved)
        with self._client() as client:
            # every filter given: the sync client sends the missing ones as null (a 422)
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
                    any_=[artifact_key(self.job_id, "report")])),
                flow_run_filter=FlowRunFilter(), task_run_filter=TaskRunFilter(),
                sort=ArtifactSort.CREATED_DESC, limit=1, offset=0)
        rows = artifacts[0].data if artifacts else None
        if isinstance(rows, str):  # tables are stored as JSON text
            rows = json.loads(rows)
        if isinstance(rows, list):
            return JobReport.from_json({r["field"]: r["value"] for r in rows})
        raise JobError(f"job {self.job_id} has no report: its run is {self.status()}")
