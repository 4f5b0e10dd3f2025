"""The ``batchpred`` command line.

Errors print one line (``error: ...``) and exit 1; ``--debug`` anywhere on the
command line shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.errors import BatchPredError, ConfigError
from batch.job_options import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_PREFLIGHT_ROWS,
    several_chunks,
)
from batch.models.kinds import TargetType
from batch.process_exit import skip_final_collection
from batch.worker_processes import discard_prestarted, prestart, scorers

if TYPE_CHECKING:
    from batch.models.package import ModelPackage
    from batch.spec import JobSpec

# The job spec (pydantic), the engine, pandas and pyarrow load inside the commands:
# ``score`` starts its scoring processes first, and they load on the other cores
# meanwhile.


class _Group(click.Group):
    """Renders expected errors as one line; ``--debug`` re-raises them."""

    def main(self, args: Sequence[str] | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        argv = [a for a in argv if a != "--debug"]
        try:
            return super().main(argv, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; nothing was published", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                raise
            from connectors import ConnectorError

            if isinstance(exc, BatchPredError | ConnectorError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchpred")
def cli() -> None:
    """Batch prediction: score files with model packages, fast and nothing partial.

    Add --debug anywhere to see tracebacks.
    """


def _pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value
    return out


@cli.command()
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

    from batch.spec import JobSpec, new_job_id

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
            dask_address=kw["dask_address"], onnx=kw["onnx"],
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + "-".join(str(part) for part in error["loc"]).replace("_", "-")
        raise ConfigError(f"{option}: {error['msg'].removeprefix('Value error, ')}") from exc


def _run(spec: JobSpec, *, quiet: bool) -> None:
    from batch.progress import run_with_progress, summary_line

    click.echo(f"job {spec.job_id}", err=True)
    report = run_with_progress(spec, quiet=quiet)
    if report.already_done:
        click.echo(f"job {spec.job_id} already finished; nothing to do")
    click.echo(summary_line(report))


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
    options = _pairs(kw["input_option"], "--input-option")
    for key in ("delimiter", "encoding", "quotechar"):
        if kw[key] is not None:
            options[key] = kw[key]
    if kw["input_format"]:
        options["format"] = kw["input_format"]
    if kw["input_query"]:
        options["query"] = kw["input_query"]
    return options


def _output_options(kw: dict[str, Any]) -> dict[str, str]:
    options = _pairs(kw["output_option"], "--output-option")
    if kw["output_format"]:
        options["format"] = kw["output_format"]
    return options


@cli.group()
def job() -> None:
    """Inspect scoring jobs."""


@job.command("show")
@click.argument("job_id")
def job_show(job_id: str) -> None:
    """Print the report of job JOB_ID (or its state, if it has not finished)."""
    from batch.jobs import JobStatus, JobStore

    store = JobStore()
    report = store.report(job_id)
    record = store.load(job_id)
    if record is None:
        raise ConfigError(f"no job {job_id!r} (jobs are kept under {store.root})")
    if report is None or record.status is not JobStatus.SUCCEEDED:
        chunks = store.chunks(job_id)
        report = {"job_id": job_id, "status": str(record.status), "error": record.error,
                  "committed_chunks": len(chunks), "scoredRows": sum(c.rows for c in chunks),
                  "failedRows": sum(c.failed for c in chunks)}
    click.echo(json.dumps(report, indent=2, default=str))


@cli.group()
def package() -> None:
    """Create and inspect model packages."""


@package.command("create")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--artifact", required=True, type=click.Path(path_type=Path),
              help="Model file (.joblib/.pkl, .onnx) or a directory with custom.py.")
@click.option("--training-data", required=True, help="Training data (CSV/Parquet/JSON lines).")
@click.option("--target", required=True, help="Target column in the training data.")
@click.option("--type", "target_type", type=click.Choice([t.value for t in TargetType]),
              help="Target type (default: inferred).")
@click.option("--positive-class", help="Binary positive class (default: the model's last).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--kind", help="Artifact kind: sklearn, onnx, python (default: from the file).")
@click.option("--name", help="Model name (default: the artifact's name).")
@click.option("--version", "model_version", default="1", show_default=True)
@click.option("--association-id", help="Column that identifies rows, to join actuals later.")
def package_create(directory: Path, **kw: Any) -> None:
    """Write a model package to DIRECTORY from an artifact and its training data."""
    from batch.models.builder import PackageSpec, create_package

    pkg = create_package(directory, PackageSpec(
        artifact=kw["artifact"], training_data=kw["training_data"], target=kw["target"],
        kind=kw["kind"], target_type=TargetType(kw["target_type"]) if kw["target_type"] else None,
        positive_class=kw["positive_class"], threshold=kw["threshold"], name=kw["name"],
        version=kw["model_version"], association_id=kw["association_id"],
    ))
    click.echo(f"created {pkg.label} at {pkg.path}")


@package.command("info")
@click.argument("directory", type=click.Path(path_type=Path))
def package_info(directory: Path) -> None:
    """Print a package's manifest and digest."""
    from batch.models.package import open_package

    _echo_package(open_package(directory))


def _echo_package(pkg: ModelPackage) -> None:
    click.echo(f"package: {pkg.path}")
    click.echo(f"digest:  {pkg.digest}")
    click.echo(pkg.manifest.to_yaml().rstrip())


@cli.group()
def deploy() -> None:
    """Name a package so jobs can use the name instead of a path."""


@deploy.command("create")
@click.argument("name")
@click.option("--model", required=True, help="Model package directory.")
@click.option("--replace", is_flag=True, help="Point an existing deployment at this package.")
def deploy_create(name: str, model: str, replace: bool) -> None:
    """Create deployment NAME for a package."""
    from batch.deployments import DeploymentRegistry
    from batch.models.package import open_package

    d = DeploymentRegistry().create(name, open_package(model), replace=replace)
    click.echo(f"deployment {d.name!r} -> {d.model_name} v{d.model_version} "
               f"({d.package_digest[:12]})")


@deploy.command("list")
def deploy_list() -> None:
    """List deployments."""
    from batch.deployments import DeploymentRegistry

    deployments = DeploymentRegistry().list()
    if not deployments:
        click.echo("no deployments yet (batchpred deploy create NAME --model PKG)")
    for d in deployments:
        click.echo(f"{d.name}\t{d.model_name} v{d.model_version}\t{d.package_digest[:12]}\t"
                   f"{d.created_at:%Y-%m-%d %H:%M}")


@deploy.command("show")
@click.argument("name")
def deploy_show(name: str) -> None:
    """Show deployment NAME and its package."""
    from batch.deployments import DeploymentRegistry

    registry = DeploymentRegistry()
    d = registry.get(name)
    click.echo(f"deployment: {d.name}\ncreated:    {d.created_at:%Y-%m-%d %H:%M:%S %Z}")
    _echo_package(registry.package(name))


@cli.command()
@click.option("--rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True,
              help="Rows of sample data to score.")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Where to put the sample data (default: <home>/quickstart).")
@click.option("--workers", type=click.IntRange(min=0), default=None)
def quickstart(rows: int, directory: Path | None, workers: int | None) -> None:
    """Make sample data, train and package a model, deploy it and score the data."""
    from batch.quickstart import run_quickstart

    run_quickstart(rows=rows, directory=directory, workers=workers, echo=click.echo)


def main() -> None:
    skip_final_collection()
    cli.main()


if __name__ == "__main__":
    main()
