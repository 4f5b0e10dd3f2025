"""The ``monitor-drift`` flow: the drift stage on a schedule, its summary as Prefect
artifacts, and an alert when the deployment's drift status changes colour.

Tasks, each calling one ``batch`` function:

1. ``drift-stage``: :func:`batch.monitoring.stage.run_drift` over the window
   ending now (``window``: an age such as ``1d`` or ``6h``);
2. ``publish``: a markdown artifact (status, window, drifted features, data
   quality) and a table artifact (one row per feature);
3. ``alert``: when the colour differs from the one the store remembers, a log
   line, then the deployment's webhook (JSON, retried, bounded) and its Prefect
   notification block when one is configured; the new colour is remembered
   once the alert is out, so it fires once per change, not once per run, and an
   alert that could not be delivered is tried again by the next run.

Schedule it with ``batchpred schedule drift NAME --deployment D --cron ...``
(run by ``batchpred worker``, like scheduled scoring jobs) or run it now with
``batchpred monitor-drift D``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from batch.monitoring.alerts import (
    Alert,
    colour_change,
    post_webhook,
    remember,
    webhook_url,
    where,
)
from batch.monitoring.stage import DriftRequest, open_store, run_drift, settings_of
from batch.monitoring.store import parse_time

DRIFT_FLOW = "monitor-drift"


@task(name="drift-stage", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def drift_stage(request: DriftRequest) -> dict[str, Any]:
    return run_drift(request)


@task(name="publish", cache_policy=NO_CACHE)
def publish(doc: dict[str, Any]) -> None:
    """The summary and the per-feature table as artifacts of the flow run."""
    key = _key(doc["deployment"])
    create_markdown_artifact(summary_markdown(doc), key=f"{key}-drift",
                             description=f"drift of {doc['deployment']}")
    rows = [{"feature": f["name"], "importance": f.get("importance"), "psi": f.get("psi"),
             "js": f.get("js"), "tail": (f.get("tail") or {}).get("wasserstein_std"),
             "status": f["status"]} for f in doc["features"]]
    create_table_artifact(rows, key=f"{key}-features",
                          description=f"drift per feature of {doc['deployment']}")


@task(name="alert", cache_policy=NO_CACHE)
def alert(doc: dict[str, Any], request: DriftRequest) -> dict[str, Any] | None:
    """Raise the alert a colour change makes; returns it (None: no change)."""
    logger = get_run_logger()
    settings = settings_of(request.deployment)
    store = open_store(settings, request.store, request.store_options)
    found = colour_change(store, doc)
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
        remember(store, doc)
    return found.to_json()


def _notify(block_name: str, found: Alert) -> bool:
    """Send ``found`` through the Prefect notification block ``block_name``."""
    from prefect.blocks.core import Block

    logger = get_run_logger()
    try:
        block: Any = Block.load(block_name)
        block.notify(found.line, subject=f"batchpred: {found.deployment} drift "
                                         f"{found.colour}")
    except Exception as exc:  # noqa: BLE001 - a notification must not fail the stage
        logger.error("notification block %r failed: %s", block_name, exc)
        return False
    return True


@flow(name=DRIFT_FLOW, persist_result=False)
def monitor_drift(deployment: str, window: str = "1d", *, against: str = "baseline",
                  store: str | None = None, store_options: dict[str, str] | None = None,
                  by: str | None = None) -> dict[str, Any]:
    """The drift stage over the last ``window``, published, alerting on a change."""
    request = DriftRequest(deployment, since=parse_time(window, option="window"),
                           against=against, store=store, store_options=store_options or {},
                           by=by)
    doc = drift_stage(request)
    publish(doc)
    raised = alert(doc, request)
    get_run_logger().info("drift of %s: %s (%s)", deployment, doc["status"]["colour"],
                          doc["status"]["rule"])
    return {"status": doc["status"], "alert": raised, "rows": doc["rows"]}


def summary_markdown(doc: dict[str, Any]) -> str:
    status = doc["status"]
    window = doc["window"]
    lines = [f"# Drift of {doc['deployment']}: **{status['colour'].upper()}**", "",
             f"{status['rule']} ({status['value']}, threshold {status['threshold']})", "",
             f"Window {window['since']} .. {window['until']}: {doc['rows']:,} rows from "
             f"{len(doc['jobs'])} job(s), against the {doc['against']}.", "",
             f"Prediction drift: {doc['prediction_status']}.", ""]
    drifted = [f for f in doc["features"] if f["drifted"]]
    if drifted:
        lines += ["| feature | importance | PSI | status |", "|---|---|---|---|"]
        lines += [f"| {f['name']} | {f.get('importance', 0):.2f} | {f['psi']:.4f} | "
                  f"{f['status']} |" for f in drifted]
    for q in doc["data_quality"]:
        lines.append(f"- {q['feature']}: {q['finding']} ({q['value']:.1%})")
    return "\n".join(lines)


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "deployment"
