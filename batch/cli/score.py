"""``batchpred score``: one job from the command line's options.

The job spec (pydantic), the engine, pandas and pyarrow load inside the
command: it starts its scoring processes first, and they load on the other
cores meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.engine.options import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_PREFLIGHT_ROWS,
    several_chunks,
)
from batch.engine.pool.startup import discard_prestarted, prestart, scorers
from batch.errors import ConfigError, validation_message

if TYPE_CHECKING:
    from batch.engine.spec import JobSpec


def pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` option values as a mapping; a bad one is a usage error of ``flag``."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value
    return out


@click.command()
@click.option("--model", required=True, help="Model package directory or deployment name.")
@click.option("--input", "input_uri", required=True, help="Input file, directory or URL.")
@click.option("--output", "output_uri", required=True,
              help="Output file, or a directory (ending in '/') of part files.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Rows per chunk (default: as many as fit in --chunk-size).")
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True,
              help="Input per chunk, e.g. 8MB (CSV bytes; streamed chunks hold half that "
              "in memory).")
@click.option("--passthrough", multiple=True, metavar="COL", help="Copy COL to the output.")
@click.option("--passthrough-all", is_flag=True, help="Copy every input column.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Scoring processes, this one included (default: one per core; "
              "0 or 1: only this one).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="Score in local processes or on a Dask cluster.")
@click.option("--dask-address", help="Dask scheduler (tcp://host:8786); default: a "
              "LocalCluster of --workers processes.")
@click.option("--input-format", type=click.Choice(["csv", "parquet", "jsonl"]))
@click.option("--output-format", type=click.Choice(["csv", "parquet", "jsonl"]))
@click.option("--delimiter", help="CSV input delimiter (default ',' or tab for .tsv).")
@click.option("--encoding", help="CSV input encoding (default utf-8).")
@click.option("--quotechar", help="CSV input quote character (default '\"').")
@click.option("--input-query", metavar="SQL", help="Read the result of this query "
              "(with --input snowflake://account/database/schema).")
@click.option("--input-option", multiple=True, metavar="KEY=VALUE", help="Intake option.")
@click.option("--output-option", multiple=True, metavar="KEY=VALUE", help="Output option.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--job-id", help="Job id (default: generated and printed).")
@click.option("--resume", is_flag=True, help="Continue the failed job --job-id.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1), default=DEFAULT_MAX_ERROR_RATE,
              show_default=True, help="Abort when a larger share of rows fails.")
@click.option("--max-failed-rows", type=click.IntRange(min=0), default=None,
              help="Abort when more rows than this fail (default: no limit).")
@click.option("--quarantine", metavar="PATH", help="Also write failed rows (input values "
              "and reason) here.")
@click.option("--preflight-rows", type=click.IntRange(min=0), default=DEFAULT_PREFLIGHT_ROWS,
              show_default=True, help="Score this many leading rows first (0: skip).")
@click.option("--onnx/--no-onnx", default=True, show_default=True,
              help="Score scikit-learn models with onnxruntime when the ONNX conversion "
              "matches scikit-learn within 1e-6 on the pre-flight rows.")
@click.option("--monitoring/--no-monitoring", default=True, show_default=True,
              help="Count every chunk on the package's monitoring baseline and publish the "
              "records (a package without a baseline scores as before; `job show` says "
              "which).")
@click.option("--monitoring-store", metavar="URI", help="Where monitoring records go: a "
              "directory or URL (default: the deployment's setting, else <home>/monitoring).")
@click.option("--monitoring-store-option", multiple=True, metavar="KEY=VALUE",
              help="Storage option of the monitoring store (endpoint_url, profile, ...).")
@click.option("--quiet", is_flag=True, help="No progress line.")
def score(**kw: Any) -> None:
    """Score INPUT with a model and write predictions to OUTPUT."""
    _start_workers(kw)
    try:
        _run(_job_spec(kw), quiet=kw["quiet"])
    finally:
        discard_prestarted()


def _start_workers(kw: dict[str, Any]) -> None:
    """Start the workers the engine would start (``JobWorkers.plan``) first thing: they
    load their libraries on the other cores while this process loads the job spec
    and the engine. A chunk size that is no size starts none; the job spec reports
    it, as it does any other bad option (``score`` then stops the workers)."""
    try:
        several = several_chunks(kw["chunk_size"], _local_bytes(kw["input_uri"]))
    except ValueError:
        return
    if kw["executor"] == "local" and several:
        prestart(scorers(kw["workers"]))


def _job_spec(kw: dict[str, Any]) -> JobSpec:
    """The job the options describe; a bad value is one line naming its option."""
    from pydantic import ValidationError

    from batch.engine.spec import JobSpec, new_job_id

    try:
        return JobSpec(
            model=kw["model"], input=kw["input_uri"], output=kw["output_uri"],
            input_options=_input_options(kw), output_options=_output_options(kw),
            chunk_rows=kw["chunk_rows"], chunk_size=kw["chunk_size"], workers=kw["workers"],
            passthrough=tuple(kw["passthrough"]), passthrough_all=kw["passthrough_all"],
            overwrite=kw["overwrite"], job_id=kw["job_id"] or new_job_id(),
            resume=kw["resume"], max_error_rate=kw["max_error_rate"],
            max_failed_rows=kw["max_failed_rows"], quarantine=kw["quarantine"],
            preflight_rows=kw["preflight_rows"], executor=kw["executor"],
            dask_address=kw["dask_address"], onnx=kw["onnx"], monitoring=kw["monitoring"],
            monitoring_store=kw["monitoring_store"],
            monitoring_store_options=pairs(kw["monitoring_store_option"],
                                           "--monitoring-store-option"),
        )
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, field=_option, first=True)) from exc


def _option(field: str) -> str:
    """The command-line option of a job spec field: ``chunk_size`` -> ``--chunk-size``."""
    return "--" + field.replace("_", "-").replace(".", "-")


def _run(spec: JobSpec, *, quiet: bool) -> None:
    from batch.cli.context import run_with_progress
    from batch.cli.progress import summary_line

    click.echo(f"job {spec.job_id}", err=True)
    report = run_with_progress(spec, quiet=quiet)
    if report.already_done:
        click.echo(f"job {spec.job_id} already finished; nothing to do")
    click.echo(summary_line(report))
    if report.predictions_logged is not None:
        twice = report.duplicate_association_ids
        click.echo(f"logged {report.predictions_logged:,} predictions for accuracy"
                   + (f"; warning: {twice:,} rows repeat an association id of an earlier "
                      "row (the last actual uploaded for an id counts for each of them)"
                      if twice else ""))


def _local_bytes(uri: str) -> int:
    """Size of a local input file or directory (0 if not local, or not there)."""
    path = Path(uri.removeprefix("file://"))
    if "://" in uri and not uri.startswith("file://"):
        return 0
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return 0


def _input_options(kw: dict[str, Any]) -> dict[str, str]:
    options = pairs(kw["input_option"], "--input-option")
    for key in ("delimiter", "encoding", "quotechar"):
        if kw[key] is not None:
            options[key] = kw[key]
    if kw["input_format"]:
        options["format"] = kw["input_format"]
    if kw["input_query"]:
        options["query"] = kw["input_query"]
    return options


def _output_options(kw: dict[str, Any]) -> dict[str, str]:
    options = pairs(kw["output_option"], "--output-option")
    if kw["output_format"]:
        options["format"] = kw["output_format"]
    return options
