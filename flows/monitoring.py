"""The ``monitor-drift`` flow: the deployment's monitoring stages on a schedule, their
summaries as Prefect artifacts, and an alert when a stage's status changes colour.

Tasks, each calling one ``batch`` function:

1. ``plan``: :func:`batch.monitoring.plan.stage_plan`, the stages that can run for
   the deployment (accuracy needs an association id with accuracy on, the
   comparison needs challengers; the others are left out with the reason logged);
2. ``drift-stage``: :func:`batch.monitoring.stage.run_drift` over the window ending
   now (``window``: an age such as ``1d`` or ``6h``); ``accuracy-stage`` and
   ``challengers-stage`` over ``accuracy_window`` (default ``30d``);
   ``health-stage`` over ``window``;
3. ``publish``: per stage a markdown artifact and a table artifact
   (:func:`batch.monitoring.markdown.summary_of`);
4. ``alert``: per stage (drift, accuracy, challengers, health), when its colour
   differs from the one the store remembers for that stage, a log line, then the
   deployment's webhook (JSON, retried, bounded) and its Prefect notification
   block when one is configured; the new colour is remembered once the alert is
   out, so it fires once per change, not once per run, and an alert that could
   not be delivered is tried again by the next run. Each stage has its own state.

A stage that fails does not stop the others: they run, publish and alert, and the
flow then fails with the first stage's error. A stage is retried twice unless its
error is one of batchpred's own (no baseline, a bad window: a retry cannot mend it).

Schedule it with ``batchpred schedule drift NAME --deployment D --cron ...``
(run by ``batchpred worker``, like scheduled scoring jobs) or run it now with
``batchpred monitor-drift D``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from batch.cli.monitoring import health_of
from batch.deployments import DeploymentRegistry
from batch.errors import BatchPredError
from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
from batch.monitoring.alerts import (
    Alert,
    colour_change,
    post_webhook,
    remember,
    webhook_url,
    where,
)
from batch.monitoring.challengers import ChallengersRequest, run_challengers
from batch.monitoring.markdown import summary_of
from batch.monitoring.plan import StagePlan, empty_reason, stage_plan
from batch.monitoring.stage import DriftRequest, open_store, run_drift, settings_of
from batch.monitoring.store import parse_time

DRIFT_FLOW = "monitor-drift"
FLOW_STAGES = ("drift", "accuracy", "challengers", "health")


@task(name="plan", cache_policy=NO_CACHE)
def plan(deployment: str) -> StagePlan:
    return stage_plan(DeploymentRegistry().get(deployment), FLOW_STAGES)


def _transient(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a stage unless it failed with one of batchpred's own errors (a bad window,
    no baseline, no such deployment), which a retry cannot mend; a store that did not
    answer may."""
    return not isinstance(state.result(raise_on_failure=False), BatchPredError)


STAGE_TASK: dict[str, Any] = {"cache_policy": NO_CACHE, "retries": 2, "retry_delay_seconds": 5,
                              "retry_condition_fn": _transient}


@task(name="drift-stage", **STAGE_TASK)
def drift_stage(request: DriftRequest) -> dict[str, Any]:
    return run_drift(request)


@task(name="accuracy-stage", **STAGE_TASK)
def accuracy_stage(request: AccuracyRequest) -> dict[str, Any]:
    return run_accuracy(request)


@task(name="challengers-stage", **STAGE_TASK)
def challengers_stage(request: ChallengersRequest) -> dict[str, Any]:
    return run_challengers(request)


@task(name="health-stage", **STAGE_TASK)
def health_stage(deployment: str, since: datetime, store: str | None,
                 store_options: Mapping[str, str]) -> dict[str, Any]:
    return health_of(deployment, since=since, store=store, store_options=dict(store_options))


@task(name="publish", cache_policy=NO_CACHE)
def publish(doc: dict[str, Any]) -> None:
    """The stage's summary and its table as artifacts of the flow run: keys
    ``<deployment>-<stage>`` and ``<deployment>-<table>`` (``features``,
    ``accuracy-models``, ``health-sources``, ``challengers-table``)."""
    key, kind, name = _key(doc["deployment"]), doc["kind"], doc["deployment"]
    summary = summary_of(doc)
    create_markdown_artifact(summary.markdown, key=f"{key}-{kind}",
                             description=f"{kind} of {name}")
    if summary.rows:
        create_table_artifact(summary.rows, key=f"{key}-{summary.table}",
                              description=f"{kind} of {name}, as a table")


@task(name="alert", cache_policy=NO_CACHE)
def alert(doc: dict[str, Any], store: str | None, store_options: Mapping[str, str]
          ) -> dict[str, Any] | None:
    """Raise the alert a colour change of the document's stage makes; returns it (None:
    no change)."""
    logger = get_run_logger()
    settings = settings_of(doc["deployment"])
    opened = open_store(settings, store, store_options)
    found = colour_change(opened, doc)
    if found is None:
        return None
    logger.warning("alert: %s", found.line)
    delivered = True
    if settings.alert_webhook:
        url = webhook_url(settings.alert_webhook)
        sent = post_webhook(url, found.to_json())
        delivered = sent.delivered
        if sent.delivered:
            logger.info("alert sent to %s", where(url))
        else:
            logger.error("alert not delivered after %d attempt(s): %s; the next run tries "
                         "again", sent.attempts, sent.error)
    if settings.alert_block:
        delivered = _notify(settings.alert_block, found) and delivered
    if delivered:
        remember(opened, doc)
    return found.to_json()


def _notify(block_name: str, found: Alert) -> bool:
    """Send ``found`` through the Prefect notification block ``block_name``."""
    from prefect.blocks.core import Block

    logger = get_run_logger()
    try:
        block: Any = Block.load(block_name)
        block.notify(found.line, subject=f"batchpred: {found.deployment} {found.stage} "
                                         f"{found.colour}")
    except Exception as exc:  # noqa: BLE001 - a notification must not fail the stage
        logger.error("notification block %r failed: %s", block_name, exc)
        return False
    return True


@flow(name=DRIFT_FLOW, persist_result=False)
def monitor_drift(deployment: str, window: str = "1d", *, against: str = "baseline",
                  store: str | None = None, store_options: dict[str, str] | None = None,
                  by: str | None = None, accuracy_window: str = "30d") -> dict[str, Any]:
    """The deployment's stages (drift and health over the last ``window``, accuracy and
    challengers over the last ``accuracy_window``), published, alerting on a change.

    Returns the drift ``status``, its ``alert`` and ``rows`` (as before), and per stage
    run its ``status`` and ``alert`` under ``stages`` (the comparison also each
    challenger's ``recommendation``), the stages ``left_out`` with why.
    """
    options = store_options or {}
    recent = parse_time(window, option="window")
    drift = DriftRequest(deployment, since=recent, against=against, store=store,
                         store_options=options, by=by)
    since = parse_time(accuracy_window, option="accuracy_window")
    runs = {"drift": lambda: drift_stage(drift, return_state=True),
            "accuracy": lambda: accuracy_stage(AccuracyRequest(
                deployment, since=since, store=store, store_options=options),
                return_state=True),
            "challengers": lambda: challengers_stage(ChallengersRequest(
                deployment, since=since, store=store, store_options=options),
                return_state=True),
            "health": lambda: health_stage(deployment, recent, store, options,
                                           return_state=True)}
    planned = plan(deployment)
    logger = get_run_logger()
    for stage, why in planned.left_out.items():
        logger.info("%s of %s left out: %s", stage, deployment, why)
    stages: dict[str, Any] = {}
    failed: list[BaseException] = []
    for stage in planned.run:
        state = runs[stage]()
        doc = state.result(raise_on_failure=False)
        if isinstance(doc, BaseException) or not state.is_completed():
            logger.error("%s of %s failed: %s", stage, deployment, doc)
            failed.append(doc if isinstance(doc, BaseException) else RuntimeError(str(doc)))
            continue
        stages[stage] = _published(doc, store, options)
    if failed:
        raise failed[0]
    status = stages["drift"]["status"]
    logger.info("drift of %s: %s (%s)", deployment, status["colour"], status["rule"])
    return {"status": status, "alert": stages["drift"]["alert"],
            "rows": stages["drift"]["rows"], "stages": stages,
            "left_out": dict(planned.left_out)}


def _published(doc: dict[str, Any], store: str | None, options: Mapping[str, str]
               ) -> dict[str, Any]:
    """Publish a stage's document and raise its alert; what the flow returns of it."""
    empty = empty_reason(doc)
    comparison = doc["kind"] == "challengers"
    if empty is None or not comparison:  # an empty comparison has no table to publish
        publish(doc)
    found = {"status": doc["status"], "alert": alert(doc, store, options),
             "rows": doc.get("rows"), "empty": empty}
    if comparison:
        found["challengers"] = [{"id": c["id"], "recommendation": c["recommendation"]}
                                for c in doc["challengers"]]
    return found


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "deployment"
