"""Subprocesses of the flow tests: batchpred commands and the Prefect servers they start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a batchpred subprocess: its own home, no Prefect settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "BATCHPRED_HOME": str(home), **extra}


def batchpred(*args: str) -> list[str]:
    """The ``batchpred`` command line (the console script's module, this interpreter)."""
    return [sys.executable, "-m", "flows.cli", *args]


def api_servers(parent: int) -> list[psutil.Process]:
    """Live local Prefect servers that process ``parent`` started."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if ("flows.apiserver" in cmd and str(parent) in cmd
                and proc.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(proc)
    return found


def wait_until_gone(parent: int, timeout: float = 20.0) -> list[psutil.Process]:
    """Servers of ``parent`` still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := api_servers(parent)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def run_cli(*args: str, home: Path, timeout: float = 180,
            **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(batchpred(*args), capture_output=True, text=True, timeout=timeout,
                          env=clean_env(home, **env), check=False)
