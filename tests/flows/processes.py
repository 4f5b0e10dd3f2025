"""The Prefect servers that batchpred commands start, as the flow tests watch them."""

from __future__ import annotations

import time

import psutil


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
