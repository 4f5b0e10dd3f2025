"""``.ci/check-resolve`` as the project test runs it: in the background from the start.

The check makes a virtualenv, upgrades pip in it and lets pip resolve ".[test]" over
the network: about 20 s, most of it waiting on the index. ``tests/conftest.py`` calls
:func:`start_if_selected` once collection is done, so the check runs while the other
tests do; its test (:data:`TEST`) takes the :func:`result`, waiting for it if need be.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
TEST = "test_the_test_dependencies_resolve_without_backtracking"
TIMEOUT = 600.0  # seconds the test waits at most (the check's own limit is 240 s)


@dataclass(frozen=True)
class _Check:
    process: subprocess.Popen[bytes]
    output: IO[bytes]  # stdout and stderr: a file, so nothing blocks on a full pipe


_running: list[_Check] = []  # the check started for this session, until its result


def _start() -> _Check:
    output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _stop())
    process = subprocess.Popen([sys.executable, str(ROOT / ".ci" / "check-resolve"),
                                "--python", sys.executable], stdout=output,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return _Check(process, output)


def start_if_selected(names: Iterable[str]) -> None:
    """Start the check if :data:`TEST` is among the selected tests' ``names``."""
    if not _running and TEST in names:
        _running.append(_start())


def result() -> subprocess.CompletedProcess[str]:
    """The check's exit code and output (stdout and stderr together), once it has ended
    (started now if it was not; stopped after :data:`TIMEOUT` seconds)."""
    check = _running.pop() if _running else _start()
    try:
        check.process.wait(timeout=TIMEOUT)
        check.output.seek(0)
        text = check.output.read().decode(errors="replace")
    finally:
        _stop(check)
    return subprocess.CompletedProcess(check.process.args, check.process.returncode, text)


def stop() -> None:
    """Stop a check whose result nobody took (the session ended first)."""
    while _running:
        _stop(_running.pop())


def _stop(check: _Check) -> None:
    if check.process.poll() is None:  # it removes its virtualenv on SIGTERM
        check.process.terminate()
        try:
            check.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            check.process.kill()
            check.process.wait()
    check.output.close()
