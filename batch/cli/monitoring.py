"""``batchpred drift``, ``report``, ``health``, ``accuracy``, ``challengers`` and
``monitoring compact``.

The stages read the monitoring store (``--store``, else the deployment's setting,
else ``<home>/monitoring``); nothing here scores rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.cli.score import pairs
from batch.errors import BatchPredError, ConfigError

if TYPE_CHECKING:
    from batch.deployments import DeploymentRegistry
    from batch.monitoring.html import Documents
    from batch.monitoring.stage import DriftRequest

STORE = click.option("--store", metavar="URI", help="The monitoring store (default: the "
                      "deployment's setting, else <home>/monitoring).")
STORE_OPTION = click.option("--store-option", multiple=True, metavar="KEY=VALUE",
                             help="Storage option of the store (endpoint_url, profile, ...).")


def _window(func: Any) -> Any:
    for option in reversed([
        click.option("--since", metavar="TIME", help="Start of the window: an ISO time "
                     "(UTC unless it has a zone) or an age such as 24h, 7d (default: 1d "
                     "before --until)."),
        click.option("--until", metavar="TIME", help="End of the window (default: now)."),
        click.option("--job", "job_id", metavar="ID", help="Only the records of this job."),
        click.option("--source", type=click.Choice(["batch", "realtime"]),
                     help="Only batch jobs' records, or only requests' (default: both)."),
        click.option("--consumer", metavar="NAME", help="Only the requests of this API "
                     "consumer (the name its token has in the server's token file)."),
        click.option("--by", type=click.Choice(["hour", "day"]), help="Also per hour or day."),
        click.option("--against", type=click.Choice(["baseline", "previous"]),
                     default="baseline", show_default=True, help="Compare with the baseline, "
                     "or with the window before (of the same length)."),
        STORE, STORE_OPTION,
    ]):
        func = option(func)
    return func


def _request(deployment: str, kw: dict[str, Any]) -> DriftRequest:
    from batch.monitoring.stage import DriftRequest
    from batch.monitoring.store import parse_time

    return DriftRequest(
        deployment, since=parse_time(kw["since"], option="--since") if kw["since"] else None,
        until=parse_time(kw["until"], option="--until") if kw["until"] else None,
        job_id=kw["job_id"], source=kw["source"], consumer=kw["consumer"], by=kw["by"],
        against=kw["against"],
        store=kw["store"],
        store_options=pairs(kw["store_option"], "--store-option"))


@click.command()
@click.argument("deployment")
@_window
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or the JSON document.")
def drift(deployment: str, fmt: str, **kw: Any) -> None:
    """Data drift of DEPLOYMENT's scored rows in a window, feature by feature."""
    from batch.monitoring.stage import run_drift
    from batch.monitoring.table import drift_table

    doc = run_drift(_request(deployment, kw))
    for warning in doc["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False, default=str))
    else:
        click.echo(drift_table(doc))


REPORT_PARTS = ("accuracy", "challengers", "health", "history")
HOURLY_UP_TO = 72  # hours: a report's window up to this long is drawn by the hour


def _parts(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return REPORT_PARTS
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in REPORT_PARTS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r} is no part of the report; give some of "
                                 f"{','.join(REPORT_PARTS)}")
    return names


@click.command()
@click.argument("deployment")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (one self-contained file).")
@click.option("--with", "parts", metavar="PARTS", callback=_parts, help="Beside drift, "
              "these comma-separated parts: accuracy, challengers, health, history (default: "
              "all that can run for the deployment).")
@_window
def report(deployment: str, output: Path, parts: tuple[str, ...], **kw: Any) -> None:
    """An HTML report of DEPLOYMENT: drift, accuracy, challengers, health and history.

    --since/--until bound every stage's window; without --since each stage takes its
    own (drift and health the day before --until, accuracy and challengers the 30
    days before). A part that cannot run (no association id, no challengers, no
    predictions in the window, a store it cannot read) is left out with a note.
    """
    from dataclasses import replace

    from batch.monitoring.html import render_report
    from batch.monitoring.stage import run_drift
    from connectors.atomic_file import write_atomic

    request = _request(deployment, kw)
    doc = run_drift(replace(request, by=request.by or _by(request.since, request.until,
                                                          days=1)))
    documents = report_documents(request, parts)
    for stage, found in (("drift", doc), ("accuracy", documents.accuracy),
                         ("challengers", documents.challengers), ("health", documents.health)):
        for warning in (found or {}).get("warnings") or ():
            click.echo(f"warning: {warning}" if stage == "drift" else
                       f"warning: {stage}: {warning}", err=True)
    write_atomic(output, render_report(doc, documents))
    said = [f"drift status {doc['status']['colour']}"]
    said += [f"{stage} {found['status']['colour']}" for stage, found in (
        ("accuracy", documents.accuracy), ("challengers", documents.challengers),
        ("health", documents.health)) if found is not None]
    left = f"; left out: {', '.join(documents.left_out)}" if documents.left_out else ""
    click.echo(f"wrote {output} ({', '.join(said)}{left})")


def _by(since: datetime | None, until: datetime | None, *, days: int) -> str:
    """By the hour up to three days, else by the day (``days``: the window's length
    when ``since`` is not given)."""
    from datetime import UTC, timedelta

    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=days)
    return "hour" if (end - start).total_seconds() <= HOURLY_UP_TO * 3600 else "day"


def report_documents(request: DriftRequest, parts: tuple[str, ...]) -> Documents:
    """The documents of the report's ``parts`` beside drift, over ``request``'s window
    (each stage's own default where it has no ``since``): a part that cannot run, or
    has nothing to show, is left out with the reason, never an error."""
    from batch.deployments import DeploymentRegistry
    from batch.monitoring.html import Documents
    from batch.monitoring.plan import empty_reason, stage_plan
    from connectors.errors import ConnectorError

    registry = DeploymentRegistry()
    planned = stage_plan(registry.get(request.deployment), parts)
    left_out, found = dict(planned.left_out), {}
    for part in planned.run:
        try:
            found[part] = _part(part, request, registry)
        except (BatchPredError, ConnectorError) as exc:  # cannot run here: say why
            left_out[part] = str(exc).splitlines()[0]
            continue
        why = None if part == "history" else empty_reason(found[part])
        if why is not None:
            left_out[part] = why
            del found[part]
    return Documents(accuracy=found.get("accuracy"), challengers=found.get("challengers"),
                     health=found.get("health"), history=found.get("history"),
                     left_out={p: left_out[p] for p in parts if p in left_out})


def _part(part: str, request: DriftRequest, registry: DeploymentRegistry) -> Any:
    """One part's document (history: its events as JSON-able dicts, oldest first)."""
    from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
    from batch.monitoring.challengers import ChallengersRequest, run_challengers

    name, since, until = request.deployment, request.since, request.until
    if part == "history":
        return [event.model_dump(mode="json") for event in registry.history(name)]
    if part == "health":
        return health_of(name, since=since, until=until, store=request.store,
                         store_options=dict(request.store_options or {}))
    if part == "challengers":
        return run_challengers(ChallengersRequest(
            name, since=since, until=until, store=request.store,
            store_options=request.store_options), registry)
    return run_accuracy(AccuracyRequest(
        name, since=since, until=until, by=request.by or _by(since, until, days=30),
        store=request.store, store_options=request.store_options), registry)


@click.command()
@click.argument("deployment")
@click.option("--since", metavar="TIME", help="Start of the window (ISO time or an age such "
              "as 24h; default: 1d before --until).")
@click.option("--until", metavar="TIME", help="End of the window (default: now).")
@click.option("--slo-ms", type=click.FloatRange(min=0, min_open=True),
              help="The latency objective (p95) the status is held to (default: the "
              "deployment's slo_p95_ms setting, 1000).")
@STORE
@STORE_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def health(deployment: str, *, since: str | None, until: str | None, slo_ms: float | None,
           store: str | None, store_option: tuple[str, ...], fmt: str) -> None:
    """Service health of DEPLOYMENT: rows, requests, latency, errors, per source."""
    from batch.monitoring.store import parse_time

    doc = health_of(deployment, since=parse_time(since, option="--since") if since else None,
                    until=parse_time(until, option="--until") if until else None,
                    slo_ms=slo_ms, store=store,
                    store_options=pairs(store_option, "--store-option"))
    for warning in doc.pop("warnings"):
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        from batch.monitoring.health import health_table_text

        click.echo(health_table_text(doc))


@click.command()
@click.argument("deployment")
@click.option("--since", metavar="TIME", help="Start of the window of prediction times (ISO "
              "time or an age such as 7d; default: 30d before --until).")
@click.option("--until", metavar="TIME", help="End of the window (default: now).")
@click.option("--by", type=click.Choice(["hour", "day"]), help="Also per hour or day of "
              "the prediction.")
@STORE
@STORE_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or the JSON document.")
def accuracy(deployment: str, *, since: str | None, until: str | None, by: str | None,
             store: str | None, store_option: tuple[str, ...], fmt: str) -> None:
    """Accuracy of DEPLOYMENT's predictions against the actuals uploaded for them."""
    from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
    from batch.monitoring.store import parse_time
    from batch.monitoring.table import accuracy_table

    doc = run_accuracy(AccuracyRequest(
        deployment, since=parse_time(since, option="--since") if since else None,
        until=parse_time(until, option="--until") if until else None, by=by, store=store,
        store_options=pairs(store_option, "--store-option")))
    for warning in doc["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        click.echo(accuracy_table({**doc, "warnings": []}))


@click.command()
@click.argument("deployment")
@click.option("--since", metavar="TIME", help="Start of the window of prediction times "
              "(default: 30d before --until).")
@click.option("--until", metavar="TIME", help="End of the window (default: now).")
@STORE
@STORE_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or the JSON document.")
def challengers(deployment: str, *, since: str | None, until: str | None, store: str | None,
                store_option: tuple[str, ...], fmt: str) -> None:
    """Compare DEPLOYMENT's challengers with its champion on the same rows."""
    from batch.monitoring.challengers import ChallengersRequest, run_challengers
    from batch.monitoring.store import parse_time
    from batch.monitoring.table import challengers_table

    doc = run_challengers(ChallengersRequest(
        deployment, since=parse_time(since, option="--since") if since else None,
        until=parse_time(until, option="--until") if until else None, store=store,
        store_options=pairs(store_option, "--store-option")))
    for warning in doc["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        click.echo(challengers_table(doc))


def health_of(deployment: str, *, since: datetime | None = None, until: datetime | None = None,
              slo_ms: float | None = None, store: str | None = None,
              store_options: dict[str, str] | None = None) -> dict[str, Any]:
    """The health document of ``deployment`` (default window: the day before ``until``),
    failed jobs of the home included, with the store's warnings under ``warnings``."""
    from datetime import UTC, timedelta

    from batch.engine.housekeeping import failed_jobs
    from batch.monitoring.health import health_document
    from batch.monitoring.stage import open_store, settings_of

    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=1)
    if start >= end:
        raise ConfigError(f"--since {start.isoformat()} is not before --until "
                          f"{end.isoformat()}")
    settings = settings_of(deployment)
    found = open_store(settings, store, store_options).read(deployment, "health", since=start,
                                                            until=end)
    doc = health_document(found.table, deployment=deployment, since=start, until=end,
                          slo_ms=slo_ms or settings.slo_p95_ms,
                          failed_jobs=failed_jobs(deployment, since=start, until=end))
    doc["warnings"] = found.warnings
    return doc


@click.group()
def monitoring() -> None:
    """The monitoring store: compaction."""


@monitoring.command("compact")
@click.argument("deployment", required=False)
@STORE
@STORE_OPTION
@click.option("--all-days", is_flag=True, help="Today's records too (default: days before "
              "today, which no job adds to any more).")
def compact(deployment: str | None, store: str | None, store_option: tuple[str, ...],
            all_days: bool) -> None:
    """Merge each day's record files into one (of DEPLOYMENT, or of every deployment)."""
    from datetime import UTC, datetime

    from batch.deployments import DeploymentSettings
    from batch.monitoring.stage import open_store, settings_of

    settings = settings_of(deployment) if deployment else DeploymentSettings()
    opened = open_store(settings, store, pairs(store_option, "--store-option"))
    done = opened.compact(deployment, before=None if all_days else datetime.now(UTC).date())
    for path, replaced in done:
        click.echo(f"{path}: {replaced} files")
    click.echo(f"compacted {len(done)} day(s) in {opened.uri}")

