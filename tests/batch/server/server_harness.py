"""Starting ``batchpred serve`` as a subprocess on a free loopback port, for the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import batchpred_cli
import httpx
import pyarrow as pa

START_TIMEOUT = 60.0
MAX_PAYLOAD_MB = 0.05  # 52,428 bytes: the rows the tests send fit; 1,200 rows do not
RELEASE = "release-the-model"  # the file under the slow server's home that ends its load


@dataclass(frozen=True)
class Server:
    url: str
    home: Path
    process: subprocess.Popen[Any]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


@dataclass(frozen=True)
class Credit:
    package: Path
    estimator: Any
    table: pa.Table  # scoring rows, no target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, *args: str, ready: Callable[[httpx.Response], bool]) -> Server:
    """``batchpred serve ARGS`` on a free port, once ``/ping`` answers as ``ready`` wants."""
    port = free_port()
    log = home / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        process = batchpred_cli.start("serve", "--port", str(port), *args, home=home,
                                      stdout=subprocess.DEVNULL, stderr=err)
    server = Server(f"http://127.0.0.1:{port}", home, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"batchpred serve exited: {log.read_text()}")
        try:
            if ready(httpx.get(f"{server.url}/ping", timeout=2.0)):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(server)
    raise AssertionError(f"batchpred serve did not answer /ping: {log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


