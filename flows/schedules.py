"""Scheduled jobs: Prefect deployments of the ``batch-score`` flow (or of the
``monitor-drift`` flow), one per schedule.

A schedule is stored where Prefect keeps deployments (the embedded default's
database under the batchpred home, or the server ``PREFECT_API_URL`` names):
deployment ``batch-score/<name>`` tagged ``batchpred-schedule``, whose
parameters hold the job. Prefect's scheduler creates its runs; a running
``batchpred worker`` serves every such deployment, including ones created
after it started, and executes the runs. Each run gets the job id
``<name>-<scheduled start>`` (see :mod:`flows.scoring`), so a failed run that
is retried resumes, and the next run starts a new job.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import Flow, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterTags,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.client.schemas.sorting import DeploymentSort, FlowRunSort
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectNotFound
from pydantic import ValidationError

from batch.engine.spec import JobSpec
from batch.errors import ConfigError, validation_message
from flows.monitoring import DRIFT_FLOW, monitor_drift
from flows.scoring import FLOW_NAME, batch_score
from flows.submission import SUBMIT_DEPLOYMENT, job_parameters

# what a schedule can run
FLOWS: dict[str, Flow[..., Any]] = {FLOW_NAME: batch_score, DRIFT_FLOW: monitor_drift}

SCHEDULE_TAG = "batchpred-schedule"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as ``schedule list`` shows it."""

    name: str
    when: str
    paused: bool
    next_run: datetime.datetime | None
    job: dict[str, Any]
    deployment_id: UUID
    flow: str = FLOW_NAME


def _schedule(cron: str | None, interval: float | None,
              timezone: str | None) -> CronSchedule | IntervalSchedule:
    if (cron is None) == (interval is None):
        raise ConfigError("give exactly one of --cron and --interval")
    try:
        if cron is not None:
            return CronSchedule(cron=cron, timezone=timezone or "UTC")
        assert interval is not None
        return IntervalSchedule(interval=datetime.timedelta(seconds=interval),
                                timezone=timezone or "UTC")
    except ValidationError as exc:
        what = f"--cron {cron!r}" if cron is not None else f"--interval {interval!r}"
        detail = validation_message(exc, field=lambda _: what, first=True)
        raise ConfigError(detail) from None


def deployment_options(job: dict[str, Any], schedules: list[Any], *, paused: bool = False,
                       tags: list[str] | None = None) -> dict[str, Any]:
    """``to_deployment`` options of a ``batch-score`` deployment: loadable by module path,
    so a worker in any directory (or on another machine) runs it."""
    return {"schedules": schedules, "parameters": job, "paused": paused,
            "tags": tags or ["batchpred", SCHEDULE_TAG],
            "entrypoint_type": EntrypointType.MODULE_PATH}


def create_schedule(
    name: str, spec: JobSpec, *, cron: str | None = None, interval: float | None = None,
    timezone: str | None = None, replace: bool = False,
) -> UUID:
    """Create (or with ``replace``, update) schedule ``name`` running ``spec``.

    Raises:
        ConfigError: a bad name or schedule, a job id in the spec (each run
            needs its own), or the name is taken and ``replace`` is false.
    """
    _check_name(name)
    if spec.job_id is not None:
        raise ConfigError(f"schedule {name!r}: the job sets job_id {spec.job_id!r}, but each "
                          "scheduled run needs its own; remove job_id from the job file")
    return _apply(name, FLOW_NAME, job_parameters(spec), _schedule(cron, interval, timezone),
                  replace=replace, description=f"batchpred scheduled job {name}")


def create_drift_schedule(
    name: str, parameters: dict[str, Any], *, cron: str | None = None,
    interval: float | None = None, timezone: str | None = None, replace: bool = False,
) -> UUID:
    """Create (or update) schedule ``name`` running the ``monitor-drift`` flow with
    ``parameters`` (deployment, window, against, store, store_options).

    Raises:
        ConfigError: a bad name or schedule, or the name is taken and not ``replace``.
    """
    _check_name(name)
    return _apply(name, DRIFT_FLOW, parameters, _schedule(cron, interval, timezone),
                  replace=replace, description=f"batchpred drift monitoring {name}")


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name == SUBMIT_DEPLOYMENT:
        raise ConfigError(f"schedule name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                          f"(not {SUBMIT_DEPLOYMENT!r})")


def _apply(name: str, flow_name: str, parameters: dict[str, Any], schedule: Any, *,
           replace: bool, description: str) -> UUID:
    found = _find(name)
    if found is not None and not replace:
        raise ConfigError(f"schedule {name!r} exists; pass --replace to change it")
    if found is not None and found.flow != flow_name:  # one name, one schedule
        with get_client(sync_client=True) as client:
            client.delete_deployment(found.id)
    deployment = FLOWS[flow_name].to_deployment(
        name, description=description, **deployment_options(parameters, [schedule]))
    assert isinstance(deployment, RunnerDeployment)  # the sync calls, not coroutines
    deployment_id = deployment.apply()
    assert isinstance(deployment_id, UUID)
    return deployment_id


@dataclass(frozen=True, slots=True)
class _Found:
    id: UUID
    flow: str


def _find(name: str) -> _Found | None:
    with get_client(sync_client=True) as client:
        for flow_name in FLOWS:
            try:
                deployment = client.read_deployment_by_name(f"{flow_name}/{name}")
            except ObjectNotFound:
                continue
            if SCHEDULE_TAG in deployment.tags:
                return _Found(deployment.id, flow_name)
    return None


def schedule_filters() -> dict[str, Any]:
    """``read_deployments`` arguments that select the schedules' deployments.

    Sort and limit are given because the API rejects them as null.
    """
    return {"flow_filter": FlowFilter(name=FlowFilterName(any_=list(FLOWS))),
            "deployment_filter": DeploymentFilter(
                tags=DeploymentFilterTags(all_=[SCHEDULE_TAG])),
            "sort": DeploymentSort.NAME_ASC, "limit": 200}


def scheduled_deployments() -> list[DeploymentResponse]:
    """Every schedule's deployment, by name."""
    with get_client(sync_client=True) as client:
        found = client.read_deployments(**schedule_filters())
    return sorted(found, key=lambda d: d.name)


def list_schedules() -> list[ScheduleInfo]:
    """Every schedule with its next scheduled run."""
    out = []
    with get_client(sync_client=True) as client:
        deployments = scheduled_deployments()
        names = flow_names(client, deployments)
        for d in deployments:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[d.id]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(
                        any_=[StateType.SCHEDULED]))),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=1)
            out.append(ScheduleInfo(
                name=d.name, when="; ".join(describe(s.schedule) for s in d.schedules),
                paused=d.paused, next_run=runs[0].expected_start_time if runs else None,
                job=dict(d.parameters.get("job", d.parameters)), deployment_id=d.id,
                flow=names.get(d.flow_id, FLOW_NAME)))
    return out


def flow_names(client: Any, deployments: list[DeploymentResponse]) -> dict[UUID, str]:
    """The flow name of each deployment's flow id (the two flows a schedule runs)."""
    return {d.flow_id: client.read_flow(d.flow_id).name for d in deployments}


def describe(schedule: Any) -> str:
    if isinstance(schedule, CronSchedule):
        return f"cron '{schedule.cron}' ({schedule.timezone or 'UTC'})"
    if isinstance(schedule, IntervalSchedule):
        return f"every {schedule.interval.total_seconds():g} s"
    return str(schedule)


def delete_schedule(name: str) -> None:
    """Delete schedule ``name`` and its future runs.

    Raises:
        ConfigError: no such schedule.
    """
    deployment = _find(name)
    if deployment is None:
        raise ConfigError(f"no schedule {name!r} (see `batchpred schedule list`)")
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment.id)
