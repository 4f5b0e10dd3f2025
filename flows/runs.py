"""Flow runs of the ``batch-score`` flow, looked up by job id (the run's name)."""

from __future__ import annotations

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort

from flows.api import prefect_api
from flows.scoring import FLOW_NAME


def job_flow_runs(job_id: str, *, limit: int = 10) -> list[FlowRun]:
    """The flow runs named ``job_id``, latest first (a resumed job has several)."""
    with prefect_api(), get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[job_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
