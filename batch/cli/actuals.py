"""``batchpred actuals upload`` and ``batchpred actuals show``: actual outcomes in the
monitoring store, for the accuracy stage to join to the predictions.

The upload reads any intake a job reads (files, S3, a Snowflake query), checks
each row against the deployment's champion target and stores the good ones
(:mod:`batch.monitoring.upload`); bad rows are counted by reason, with examples,
in the output. Exit codes as everywhere: 1 when every row is bad (the report is
printed first).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from batch.cli.monitoring import STORE, STORE_OPTION
from batch.cli.score import pairs

if TYPE_CHECKING:
    from batch.monitoring.upload import UploadSummary

_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                       default="table", show_default=True,
                       help="Lines for people, or the JSON document.")


@click.group()
def actuals() -> None:
    """Actual outcomes of a deployment's predictions, for accuracy."""


@actuals.command("upload")
@click.argument("deployment")
@click.option("--input", "input_uri", required=True, help="Input file, directory or URL "
              "(a Snowflake query: --input snowflake://account/database/schema --input-query).")
@click.option("--association-id-column", required=True, metavar="COLUMN",
              help="The column of ids the predictions were logged under.")
@click.option("--actual-column", required=True, metavar="COLUMN", help="The actual outcome: "
              "a number (regression) or a class of the target.")
@click.option("--timestamp-column", metavar="COLUMN", help="When the outcome happened "
              "(ISO 8601; UTC unless it has a zone).")
@click.option("--was-acted-on-column", metavar="COLUMN", help="Whether the prediction was "
              "acted on (true/false, yes/no, 1/0).")
@click.option("--input-format", type=click.Choice(["csv", "parquet", "jsonl"]),
              help="Default: from the file extension.")
@click.option("--input-query", metavar="SQL", help="Read the result of this query "
              "(with --input snowflake://account/database/schema).")
@click.option("--input-option", multiple=True, metavar="KEY=VALUE", help="Intake option "
              "(delimiter, encoding, endpoint_url, profile, ...).")
@click.option("--upload-id", metavar="ID", help="Upload id (default: generated and printed).")
@click.option("--resume", is_flag=True, help="Continue the upload --upload-id (stores only "
              "the chunks it has not stored).")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Rows per stored chunk (default 200,000; a resume: the upload's).")
@STORE
@STORE_OPTION
@_FORMAT
def upload(deployment: str, **kw: Any) -> None:
    """Check actual outcomes against DEPLOYMENT's target and store the good rows."""
    from batch.engine.spec import new_job_id
    from batch.monitoring.actuals import ActualColumns
    from batch.monitoring.upload import ActualsRejectedError, UploadRequest, run_upload

    if kw["resume"] and not kw["upload_id"]:
        raise click.UsageError("--resume needs the --upload-id of the upload to continue")
    options = pairs(kw["input_option"], "--input-option")
    if kw["input_format"]:
        options["format"] = kw["input_format"]
    if kw["input_query"]:
        options["query"] = kw["input_query"]
    request = UploadRequest(
        deployment, kw["input_uri"], ActualColumns(
            kw["association_id_column"], kw["actual_column"], kw["timestamp_column"],
            kw["was_acted_on_column"]),
        kw["upload_id"] or new_job_id(), input_options=options, resume=kw["resume"],
        chunk_rows=kw["chunk_rows"], store=kw["store"],
        store_options=pairs(kw["store_option"], "--store-option"))
    click.echo(f"upload {request.upload_id}", err=True)
    try:
        summary = run_upload(request)
    except ActualsRejectedError as exc:
        _echo(exc.summary, kw["fmt"])
        raise
    _echo(summary, kw["fmt"])


def _echo(summary: UploadSummary, fmt: str) -> None:
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(summary.to_json(), indent=2, sort_keys=True, allow_nan=False))
        return
    for line in summary_lines(summary):
        click.echo(line)


def summary_lines(summary: UploadSummary) -> list[str]:
    """The upload's report for people: what was stored, then each kind of bad row and
    the repeated ids, with examples."""
    from batch.monitoring.actuals import REASONS

    if summary.already_done:
        head = [f"upload {summary.upload_id} already finished; nothing to do"]
    else:
        resumed = (f" ({summary.resumed_chunks} stored before this resume)"
                   if summary.resumed_chunks else "")
        head = []
        if not summary.rows:
            head.append("the input has no rows; nothing was stored")
        head.append(f"upload {summary.upload_id}: stored {summary.stored:,} of "
                    f"{summary.rows:,} rows in {summary.chunks:,} chunk(s){resumed} for "
                    f"{summary.deployment} in {summary.store}")
    bad = summary.bad
    if bad.total:
        head.append(f"bad rows, not stored: {bad.total:,}")
    for code, what in REASONS.items():
        if bad.counts.get(code):
            shown = ", ".join(f"row {e.row:,}: {_value(e.value)}"
                              for e in bad.examples.get(code, []))
            head.append(f"  {what}: {bad.counts[code]:,} ({shown})")
    dup = summary.duplicates
    if dup.rows:
        shown = ", ".join(f"row {r.row:,}: {r.id!r} (first at row {r.first_row:,})"
                          for r in dup.examples)
        head.append(f"repeated ids: {dup.rows:,} row(s) repeat one of {dup.ids:,} id(s); "
                    f"the later actual wins ({shown})")
    return head


def _value(value: str | None) -> str:
    return "(missing)" if value is None or value == "" else repr(value)


@actuals.command("prune")
@click.argument("deployment")
@click.option("--older-than", "days", type=click.IntRange(min=1), metavar="DAYS",
              help="Remove actuals received more than DAYS days ago (default: the "
              "deployment's actuals_retention_days setting, 400).")
@STORE
@STORE_OPTION
def prune(deployment: str, days: int | None, store: str | None,
          store_option: tuple[str, ...]) -> None:
    """Remove DEPLOYMENT's actuals older than its retention (whole days of them)."""
    from datetime import UTC, datetime, timedelta

    from batch.monitoring.stage import open_store, settings_of

    settings = settings_of(deployment)
    keep = days or settings.actuals_retention_days
    opened = open_store(settings, store, pairs(store_option, "--store-option"))
    cutoff = (datetime.now(UTC) - timedelta(days=keep)).date()
    removed = opened.prune(deployment, "actuals", before=cutoff)
    click.echo(f"removed {len(removed)} day(s) of actuals received before {cutoff} "
               f"(kept: the last {keep} days)")


@actuals.command("show")
@click.argument("deployment")
@STORE
@STORE_OPTION
@_FORMAT
def show(deployment: str, store: str | None, store_option: tuple[str, ...], fmt: str) -> None:
    """DEPLOYMENT's uploads of actuals: rows, stored, bad rows, when received."""
    from batch.monitoring.upload import uploads_document

    doc = uploads_document(deployment, store=store,
                           store_options=pairs(store_option, "--store-option"))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
        return
    click.echo(f"deployment {deployment}: {len(doc['uploads'])} upload(s), {doc['stored']:,} "
               f"actuals stored, last received {doc['last_received'] or 'never'} "
               f"({doc['store']})")
    for entry in doc["uploads"]:
        rows = "?" if entry["rows"] is None else f"{entry['rows']:,}"
        line = (f"{entry['upload_id']}\t{entry['status']}\t{entry['received_at']}\t"
                f"rows {rows}\tstored {entry['stored']:,}\tbad {entry['bad_rows']:,}\t"
                f"repeated {entry['repeated']:,}")
        if entry["status"] in ("running", "failed"):
            line += f"\t(continue it: --upload-id {entry['upload_id']} --resume)"
        click.echo(line)
