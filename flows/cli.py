"""The ``batchpred`` command: the one place its commands are assembled, and its ``main``.

The engine's commands come from :mod:`batch.cli` (``score``, ``job show``,
``package``, ``deploy``, ``quickstart``); this module adds what needs Prefect:

- ``run JOB_FILE``: run a job file through the flow now, in this process;
- ``submit JOB_FILE [--wait]``: queue it for ``batchpred worker``;
- ``worker``: serve submissions and schedules;
- ``schedule create|drift|list|delete``: cron or interval schedules of job files
  (and of the ``monitor-drift`` flow);
- ``monitor-drift DEPLOYMENT``: the monitoring stages through their flow now (drift,
  accuracy, health, challengers: artifacts, alerts on a change of a stage's colour);
- ``job status ID``: the job's Prefect flow runs and the engine's record;

and hands the engine's commands a job runner that scores through the
``batch-score`` flow (``quickstart`` uses it: run history and artifacts).

Commands that need Prefect pick its API as :func:`flows.api.prefect_api` says;
a temporary server they start is stopped when they end, however they end.
Only click and the standard library load before a command runs: ``score``
starts its scoring processes first thing, before pydantic, pandas and the
engine load.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from batch.cli import COMMANDS, BatchpredGroup, CliContext, JobRunner
from batch.cli.jobs import job
from batch.cli.monitoring import STORE, STORE_OPTION
from batch.engine.pool.process_exit import skip_final_collection
from batch.errors import ConfigError, JobError

if TYPE_CHECKING:
    from batch.engine.report import JobReport
    from batch.engine.spec import JobSpec

_JOB_FILE = click.Path(path_type=Path, dir_okay=False)


@contextmanager
def flow_runner() -> Iterator[JobRunner]:
    """Jobs run as the ``batch-score`` flow; a temporary API server, if one is needed,
    starts while the caller works (the quickstart makes its data meanwhile)."""
    from flows.api import prefect_api
    from flows.submission import score

    with prefect_api(wait=False):
        yield score


@click.group(cls=BatchpredGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchpred")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Batch prediction: score files with model packages, fast and nothing partial.

    Add --debug anywhere to see tracebacks.
    """
    ctx.obj = CliContext(job_runner=flow_runner)


for _command in COMMANDS:
    cli.add_command(_command)


@cli.command("run")
@click.argument("job_file", type=_JOB_FILE)
@click.option("--job-id", help="Job id (default: the file's, else a new one). A failed "
              "job's id resumes it.")
def run_command(job_file: Path, job_id: str | None) -> None:
    """Run the job in JOB_FILE through the batch-score flow now, in this process."""
    from flows.submission import score

    report = score(_job(job_file, job_id))
    _echo_report(report)


@cli.command("submit")
@click.argument("job_file", type=_JOB_FILE)
@click.option("--job-id", help="Job id (default: the file's, else a new one). A failed "
              "job's id resumes it.")
@click.option("--wait", is_flag=True, help="Wait for the job and print its summary.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after "
              "this many seconds (the job keeps running).")
def submit_command(job_file: Path, job_id: str | None, wait: bool,
                   timeout: float | None) -> None:
    """Queue the job in JOB_FILE for the worker (`batchpred worker`)."""
    from flows.submission import submit

    handle = submit(_job(job_file, job_id))
    click.echo(f"submitted job {handle.job_id} (flow run {handle.flow_run_id})", err=True)
    if not wait:
        click.echo(handle.job_id)  # alone on stdout, for scripts
        return
    try:
        state = handle.wait(timeout)
    except TimeoutError as exc:
        raise JobError(f"{exc}; see `batchpred job status {handle.job_id}`") from None
    if state != "Completed":
        run_state = handle.flow_run().state
        detail = f": {run_state.message}" if run_state and run_state.message else ""
        raise JobError(f"job {handle.job_id} ended {state}{detail}")
    _echo_report(handle.report())


def _job(job_file: Path, job_id: str | None) -> JobSpec:
    from flows.jobfile import load_job_file, with_job_id

    spec = load_job_file(job_file)
    return with_job_id(spec, job_id) if job_id else spec


def _echo_report(report: JobReport) -> None:
    from batch.cli.progress import summary_line

    if report.already_done:
        click.echo(f"job {report.job_id} already finished; nothing to do")
    click.echo(summary_line(report))


@cli.command("worker")
@click.option("--limit", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs run at once (each job already uses every core by default).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between checks for runs to start.")
@click.option("--refresh", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between checks for new schedules.")
def worker_command(limit: int, poll: float, refresh: float) -> None:
    """Run submitted and scheduled jobs until stopped (Ctrl-C)."""
    from flows.worker import run_worker

    try:
        run_worker(limit=limit, poll_seconds=poll, reload_seconds=refresh, echo=click.echo)
    except KeyboardInterrupt:
        click.echo("worker stopped")


@cli.group()
def schedule() -> None:
    """Run job files on a cron or interval schedule (executed by `batchpred worker`)."""


@schedule.command("create")
@click.argument("name")
@click.option("--job", "job_file", required=True, type=_JOB_FILE, help="Job file (YAML).")
@click.option("--cron", help="Cron expression, e.g. '0 2 * * *'.")
@click.option("--interval", type=click.FloatRange(min=1), help="Every this many seconds.")
@click.option("--timezone", help="IANA time zone of the cron expression (default UTC).")
@click.option("--replace", is_flag=True, help="Change an existing schedule NAME.")
def schedule_create(*, name: str, job_file: Path, cron: str | None, interval: float | None,
                    timezone: str | None, replace: bool) -> None:
    """Create schedule NAME running the job in --job."""
    from flows.api import prefect_api
    from flows.schedules import create_schedule

    spec = _job(job_file, None)
    with prefect_api():
        create_schedule(name, spec, cron=cron, interval=interval, timezone=timezone,
                        replace=replace)
    click.echo(f"schedule {name!r} created; `batchpred worker` runs it")


def _drift_run(func: Any) -> Any:
    """The options of one run of the monitor-drift flow (now, or on a schedule)."""
    for option in reversed([
        click.option("--window", default="1d", show_default=True, help="Each run looks at "
                     "the records of this last stretch of time (such as 6h, 1d, 7d)."),
        click.option("--against", type=click.Choice(["baseline", "previous"]),
                     default="baseline", show_default=True),
        click.option("--accuracy-window", default="30d", show_default=True, help="The "
                     "accuracy and challenger stages look at the predictions of this last "
                     "stretch of time."),
        STORE, STORE_OPTION,
    ]):
        func = option(func)
    return func


@schedule.command("drift")
@click.argument("name")
@click.option("--deployment", required=True, help="The deployment whose drift to watch.")
@_drift_run
@click.option("--cron", help="Cron expression, e.g. '0 * * * *'.")
@click.option("--interval", type=click.FloatRange(min=1), help="Every this many seconds.")
@click.option("--timezone", help="IANA time zone of the cron expression (default UTC).")
@click.option("--replace", is_flag=True, help="Change an existing schedule NAME.")
def schedule_drift(*, name: str, cron: str | None, interval: float | None,
                   timezone: str | None, replace: bool, **kw: Any) -> None:
    """Create schedule NAME running the monitor-drift flow for a deployment."""
    from batch.cli.score import pairs
    from batch.monitoring.store import parse_time
    from flows.api import prefect_api
    from flows.schedules import create_drift_schedule

    parse_time(kw["window"], option="--window")  # a bad window fails now, not at 2 am
    parse_time(kw["accuracy_window"], option="--accuracy-window")
    parameters = {"deployment": kw["deployment"], "window": kw["window"],
                  "accuracy_window": kw["accuracy_window"],
                  "against": kw["against"], "store": kw["store"],
                  "store_options": pairs(kw["store_option"], "--store-option")}
    with prefect_api():
        create_drift_schedule(name, parameters, cron=cron, interval=interval,
                              timezone=timezone, replace=replace)
    click.echo(f"schedule {name!r} created; `batchpred worker` runs it")


@cli.command("monitor-drift")
@click.argument("deployment")
@_drift_run
def monitor_drift_command(deployment: str, *, window: str, against: str, store: str | None,
                          store_option: tuple[str, ...], accuracy_window: str) -> None:
    """Run the monitor-drift flow for DEPLOYMENT now: drift, accuracy, health and the
    challengers; artifacts, and an alert on a change of a stage's colour."""
    from batch.cli.score import pairs
    from batch.monitoring.store import parse_time
    from flows.api import prefect_api
    from flows.monitoring import monitor_drift

    parse_time(window, option="--window")
    parse_time(accuracy_window, option="--accuracy-window")
    options = pairs(store_option, "--store-option")
    with prefect_api():
        result = monitor_drift(deployment, window=window, against=against, store=store,
                               store_options=options, accuracy_window=accuracy_window)
    status = result["status"]
    click.echo(f"drift of {deployment}: {status['colour']} ({status['rule']}); "
               f"{result['rows']:,} rows" + ("; alert raised" if result["alert"] else ""))
    for stage, found in result["stages"].items():
        if stage == "drift":
            continue
        # the comparison also names each challenger's recommendation
        advice = ", ".join(f"{c['id']} {c['recommendation']['action']}"
                           for c in found.get("challengers") or ())
        click.echo(f"{stage} of {deployment}: {found['status']['colour']} "
                   f"({found['status']['rule']})" + (f"; {advice}" if advice else "")
                   + ("; alert raised" if found["alert"] else ""))
    for stage, why in result["left_out"].items():
        click.echo(f"{stage} left out: {why}")


@schedule.command("list")
def schedule_list() -> None:
    """List schedules and their next runs."""
    from flows.api import prefect_api
    from flows.schedules import list_schedules

    with prefect_api():
        schedules = list_schedules()
    if not schedules:
        click.echo("no schedules yet (batchpred schedule create NAME --job FILE --cron ...)")
    for s in schedules:
        upcoming = f"{s.next_run:%Y-%m-%d %H:%M:%S %Z}" if s.next_run else "-"
        state = "paused" if s.paused else f"next {upcoming}"
        what = (f"drift of {s.job.get('deployment', '')} over {s.job.get('window', '')}"
                if s.flow == "monitor-drift" else f"{s.job.get('model', '')}: "
                f"{s.job.get('input', '')} -> {s.job.get('output', '')}")
        click.echo(f"{s.name}\t{s.when}\t{state}\t{what}")


@schedule.command("delete")
@click.argument("name")
def schedule_delete(name: str) -> None:
    """Delete schedule NAME and its future runs."""
    from flows.api import prefect_api
    from flows.schedules import delete_schedule

    with prefect_api():
        delete_schedule(name)
    click.echo(f"schedule {name!r} deleted")


@job.command("status")
@click.argument("job_id")
def job_status(job_id: str) -> None:
    """The job's Prefect flow runs (latest first) and the engine's record of it."""
    from batch.engine.store import JobStore
    from flows.runs import job_flow_runs

    runs = job_flow_runs(job_id)
    engine = _engine_state(job_id)
    if not runs and engine is None:
        raise ConfigError(f"no job {job_id!r}: no flow run of batch-score has that name and "
                          f"{JobStore().root} has no such job")
    click.echo(json.dumps({
        "job_id": job_id,
        "state": runs[0].state_name if runs else None,
        "flow_runs": [{"id": str(r.id), "state": r.state_name,
                       "message": r.state.message if r.state else None,
                       "deployment_id": str(r.deployment_id) if r.deployment_id else None,
                       "start_time": r.start_time, "end_time": r.end_time} for r in runs],
        "job": engine,
    }, indent=2, default=str))


def _engine_state(job_id: str) -> dict[str, Any] | None:
    from batch.engine.store import JobStatus, JobStore

    store = JobStore()
    record = store.load(job_id)
    if record is None:
        return None
    if record.status is JobStatus.SUCCEEDED:
        return store.report(job_id)
    chunks = store.chunks(job_id)
    return {"status": str(record.status), "error": record.error,
            "committed_chunks": len(chunks), "scoredRows": sum(c.rows for c in chunks),
            "failedRows": sum(c.failed for c in chunks)}


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwind normally on SIGTERM, so a temporary Prefect server is stopped and
    # the job is recorded as failed (resumable), as on Ctrl-C.
    raise SystemExit(128 + signum)


def main() -> None:
    """The ``batchpred`` console script: one ``error:`` line and exit 1 for expected
    errors; SIGTERM unwinds like Ctrl-C; no last garbage collection at exit."""
    signal.signal(signal.SIGTERM, _terminate)
    skip_final_collection()
    cli.main()


if __name__ == "__main__":
    main()
