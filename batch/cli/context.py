"""What the assembling command line hands the engine's commands: how a job runs.

``flows.cli`` puts a :class:`CliContext` on click's context (``ctx.obj``) whose
runner scores through the Prefect flow; without one, jobs run in this process
with a progress line (:func:`run_with_progress`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batch.engine.report import JobReport
    from batch.engine.spec import JobSpec

JobRunner = Callable[["JobSpec"], "JobReport"]


@contextmanager
def in_process() -> Iterator[JobRunner]:
    """Jobs run here, by the engine alone, with a progress line."""
    yield run_with_progress


@dataclass(frozen=True, slots=True)
class CliContext:
    """``job_runner`` is entered around a command's work (a temporary API server, say,
    starts while the quickstart makes its data) and gives the function that runs a job."""

    job_runner: Callable[[], AbstractContextManager[JobRunner]] = in_process


def run_with_progress(spec: JobSpec, *, quiet: bool = False) -> JobReport:
    """Run a job with a progress line on stderr (none when ``quiet``)."""
    from batch.cli.progress import ProgressBar
    from batch.deployments import resolve_model
    from batch.engine.run import run_job

    package = resolve_model(spec.model)
    bar = None if quiet else ProgressBar()
    try:
        return run_job(spec, package=package, on_progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
