"""The installed ``batchpred`` console script, as the tests run it: a subprocess with its
own home and none of the test process's Prefect settings.

Tests take the ``batchpred`` fixture (``tests/conftest.py``); module-scoped fixtures
and long-running processes use :func:`run` and :func:`start` directly.

:func:`invoke` runs the engine's commands in this process instead (click's
``CliRunner``, the same result): for tests of what a command prints and writes, where
being a process is not what is tested. A process start costs about a second (the
imports); a module of CLI tests makes dozens. Signals, ``kill -9``, what loads before
a command runs, and the Prefect flow runner stay with :func:`run` and :func:`start`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from batch.cli import COMMANDS, BatchpredGroup

# the console script installed beside this interpreter: what users run
BATCHPRED = str(Path(sys.executable).with_name("batchpred"))


def command(*args: str) -> list[str]:
    """The command line of ``batchpred ARGS``."""
    return [BATCHPRED, *args]


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a batchpred subprocess: its own home, no Prefect settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "BATCHPRED_HOME": str(home), **extra}


def run(*args: str, home: Path, cwd: Path | None = None, timeout: float = 300,
        **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``batchpred ARGS`` to the end; its output is captured as text."""
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          env=environment(home, **env), cwd=cwd, check=False)


@click.group(cls=BatchpredGroup)
def engine_cli() -> None:
    """The engine's commands under the root group's error rendering; jobs (the
    quickstart's too) run in this process, as without ``flows``."""


for _command in COMMANDS:
    engine_cli.add_command(_command)


def invoke(*args: str, home: Path, cwd: Path | None = None, **env: str
           ) -> subprocess.CompletedProcess[str]:
    """Run ``batchpred ARGS`` in this process, with ``home`` and ``env`` set in the
    environment while it runs; the exit code and output as :func:`run` gives them."""
    root = logging.getLogger()
    handlers = list(root.handlers)  # the group adds one per call
    try:
        with contextlib.chdir(cwd or Path.cwd()):
            result = CliRunner().invoke(engine_cli, list(args),
                                        env={"BATCHPRED_HOME": str(home), **env})
    finally:
        root.handlers[:] = handlers
    return subprocess.CompletedProcess(command(*args), result.exit_code, result.stdout,
                                       result.stderr)


def start(*args: str, home: Path, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``batchpred ARGS`` (``popen``: :class:`subprocess.Popen`'s own arguments)."""
    return subprocess.Popen(command(*args), env=environment(home), **popen)


@dataclass(frozen=True)
class Batchpred:
    """``batchpred`` with one home: call it to run a command (in a subprocess, or with
    ``in_process`` through :func:`invoke`), :meth:`start` to start one."""

    home: Path
    in_process: bool = False

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 300,
                 **env: str) -> subprocess.CompletedProcess[str]:
        if self.in_process:
            return invoke(*args, home=self.home, cwd=cwd, **env)
        return run(*args, home=self.home, cwd=cwd, timeout=timeout, **env)

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[Any]:
        return start(*args, home=self.home, **popen)
