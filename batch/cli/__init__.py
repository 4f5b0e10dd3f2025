"""The engine's commands, for the command line that assembles them (``flows.cli``).

:data:`COMMANDS` are the top-level commands and groups (``job`` is one; the
assembling command line may add to it); :class:`BatchpredGroup` renders
expected errors as one line; :class:`CliContext` carries how a job runs.
Importing this package loads click and the standard library only: the engine,
pydantic, pandas and pyarrow load inside the commands.
"""

from __future__ import annotations

import click

from batch.cli import (
    actuals,
    baselines,
    deployments,
    jobs,
    monitoring,
    packages,
    quickstart,
    score,
    serve,
    status,
)
from batch.cli.context import CliContext, JobRunner
from batch.cli.group import BatchpredGroup

COMMANDS: tuple[click.Command, ...] = (
    score.score, jobs.job, packages.package, baselines.baseline, deployments.deploy,
    quickstart.quickstart, monitoring.drift, monitoring.report, monitoring.health,
    monitoring.accuracy, monitoring.challengers, status.status,
    monitoring.monitoring, actuals.actuals,
    serve.serve,
)

__all__ = ["COMMANDS", "BatchpredGroup", "CliContext", "JobRunner"]
