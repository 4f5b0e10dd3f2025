"""The installed ``batchpred`` console script, as the tests run it: a subprocess with its
own home and none of the test process's Prefect settings.

Tests take the ``batchpred`` fixture (``tests/conftest.py``); module-scoped fixtures
and long-running processes use :func:`run` and :func:`start` directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def start(*args: str, home: Path, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``batchpred ARGS`` (``popen``: :class:`subprocess.Popen`'s own arguments)."""
    return subprocess.Popen(command(*args), env=environment(home), **popen)


@dataclass(frozen=True)
class Batchpred:
    """``batchpred`` with one home: call it to run a command, :meth:`start` to start one."""

    home: Path

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 300,
                 **env: str) -> subprocess.CompletedProcess[str]:
        return run(*args, home=self.home, cwd=cwd, timeout=timeout, **env)

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[Any]:
        return start(*args, home=self.home, **popen)
