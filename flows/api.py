"""Which Prefect API a command talks to, and the local server it may start for that.

:func:`prefect_api` picks, in order:

1. a configured API (``PREFECT_API_URL`` in the environment, the active
   profile, or an enclosing :func:`prefect_api`), used as is;
2. the API of a ``batchpred worker`` running on this batchpred home (its
   address is in ``<prefect home>/worker.json``), so a command pays no server
   start-up;
3. otherwise a temporary server for this one command (Prefect's ephemeral
   mode, database under the batchpred home). Starting it costs 10-20 s; it is
   stopped when the command ends, on failure too, and stops by itself if the
   command's process dies (:mod:`flows.apiserver` watches its parent).

:func:`worker_api` is the worker's variant: a server with Prefect's services
(the scheduler) that other commands find through ``worker.json``.

Raises (both): ConfigError when a server cannot start, or a second worker
would start on the same home.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

from batch.errors import ConfigError
from flows.prefect_env import prefect_home
from flows.settings import FlowSettings


def configured_api_url() -> str | None:
    """The API URL Prefect's settings name, if any."""
    return PREFECT_API_URL.value() or None


def _healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def worker_file() -> Path:
    return prefect_home() / "worker.json"


def running_worker_api() -> str | None:
    """The API URL of a live ``batchpred worker`` on this home, or None."""
    try:
        data = json.loads(worker_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("api_url")
    return url if isinstance(url, str) and _healthy(url) else None


class LocalServer:
    """A Prefect server in a child process on a free loopback port.

    ``services=False`` is Prefect's ephemeral mode; ``services=True`` adds the
    scheduler and the UI. Use as a context manager: the server is stopped on
    exit (SIGTERM, then SIGKILL after ``grace`` seconds).
    """

    def __init__(self, *, services: bool = False, grace: float = 10.0) -> None:
        self.services = services
        self.grace = grace
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def start(self, timeout: float | None = None, *, wait: bool = True) -> None:
        """Start the server and (unless ``wait`` is false) wait until it answers.

        Raises:
            ConfigError: it exited or did not answer within ``timeout`` seconds.
        """
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        # The server inherits a socket bound here: the port is known now and nobody
        # can take it between choosing and binding it.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self.port = int(sock.getsockname()[1])
            command = [sys.executable, "-m", "flows.apiserver", "--fd", str(sock.fileno()),
                       "--port", str(self.port), "--parent", str(os.getpid())]
            # Own session: Ctrl-C reaches the command, which then stops the server in order.
            self.process = subprocess.Popen(
                command + (["--services"] if self.services else []), stdout=self._log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=[sock.fileno()],
                start_new_session=True)
        _STARTING[self.api_url] = self
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the server answers (see :meth:`start`)."""
        timeout = timeout or FlowSettings().server_timeout
        deadline = time.monotonic() + timeout
        while not _healthy(self.api_url, timeout=2.0):
            if self.process is None or self.process.poll() is not None \
                    or time.monotonic() > deadline:
                output = self._output()
                self.stop()
                raise ConfigError(f"the local Prefect server on port {self.port} did not "
                                  f"start within {timeout:.0f} s: {output or 'no output'} "
                                  "(set PREFECT_API_URL to use a running server)")
            time.sleep(0.1)
        _STARTING.pop(self.api_url, None)

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-5:])

    def stop(self) -> None:
        _STARTING.pop(self.api_url, None)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Servers started with ``wait=False`` that have not answered yet, by API URL.
_STARTING: dict[str, LocalServer] = {}


def wait_for_api(api_url: str | None = None) -> None:
    """Block until ``api_url`` (default: the current one) answers, if batchpred is starting it.

    Raises:
        ConfigError: that server failed to start.
    """
    server = _STARTING.get(api_url or configured_api_url() or "")
    if server is not None:
        server.wait_ready()


@contextlib.contextmanager
def use_api(api_url: str, *, ui: bool = True) -> Iterator[str]:
    """Point Prefect, here and in child processes, at ``api_url``.

    ``ui=False``: the server has no UI, so logs carry no "View at" links.
    """
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    updates: dict[Any, str] = {PREFECT_API_URL: api_url}
    if not ui:
        updates[PREFECT_UI_URL] = ""
    try:
        with temporary_settings(updates=updates):
            yield api_url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def drain_run_logs(timeout: float = 10.0) -> None:
    """Send the run logs and events still queued, before their server goes away."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            service.drain_all(timeout=timeout)


@contextlib.contextmanager
def prefect_api(*, wait: bool = True) -> Iterator[str]:
    """The API URL to use for the duration of a command (see the module docstring).

    With ``wait=False`` a temporary server is still starting when this yields,
    so its start-up overlaps other work; call :func:`wait_for_api` before
    using it (:func:`flows.score` does).
    """
    configured = configured_api_url()
    if configured:
        yield configured
        return
    worker = running_worker_api()
    if worker:
        with use_api(worker):
            yield worker
        return
    server = LocalServer()
    try:
        server.start(wait=wait)
        with use_api(server.api_url, ui=False):
            try:
                yield server.api_url
            finally:
                drain_run_logs()
    finally:
        server.stop()


@contextlib.contextmanager
def submission_api() -> Iterator[str]:
    """The API that reaches a worker: a configured one, else this home's running worker.

    Raises:
        ConfigError: neither is there (a temporary server would reach no worker).
    """
    url = configured_api_url() or running_worker_api()
    if url is None:
        raise ConfigError("no worker runs for this home: start one with `batchpred worker` "
                          "(or set PREFECT_API_URL to the Prefect server your worker uses)")
    with use_api(url):
        yield url


@contextlib.contextmanager
def worker_api() -> Iterator[str]:
    """The API a worker serves through: a configured one, else a local server with services.

    Raises:
        ConfigError: another worker already serves this batchpred home.
    """
    configured = configured_api_url()
    if configured:
        yield configured
        return
    other = running_worker_api()
    if other:
        raise ConfigError(f"a worker already runs for this home (API {other}); stop it "
                          "first, or set PREFECT_API_URL to share one Prefect server")
    record = worker_file()
    with LocalServer(services=True) as server, use_api(server.api_url):
        record.write_text(json.dumps({"api_url": server.api_url, "ui_url": server.url,
                                      "pid": os.getpid()}), encoding="utf-8")
        try:
            yield server.api_url
        finally:
            with contextlib.suppress(OSError):
                record.unlink()
            drain_run_logs()
