"""Snowflake stand-in: fakesnow's server, with the real connector talking HTTP to it.

One server for the session (``fakesnow.server()``), one schema per test, so
tests never see each other's tables. ``sql`` runs statements over a plain
connector connection: the independent reference the tests check against.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fakesnow
import pytest
import snowflake.connector

# ``fakesnow.server()`` imports its submodule ``fakesnow.server``, which then
# shadows the function on the package: keep the function while it is one.
_fakesnow_server: Any = fakesnow.server

ACCOUNT = "fakesnow"
DATABASE = "BATCHPRED"
PASSWORD = "snow"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def options(self, **extra: str) -> dict[str, str]:
        """Connection options for a request (secrets come from the environment)."""
        # network_timeout bounds the connector's retries of a server error (fakesnow
        # answers an unsupported statement with HTTP 500, retried without end otherwise)
        return {"host": self.host, "port": str(self.port), "protocol": "http",
                "user": "fake", "network_timeout": "20", **extra}


@contextlib.contextmanager
def _serve() -> Iterator[dict[str, Any]]:
    """``fakesnow.server()``; if something imported its submodule first, the same by hand."""
    if callable(_fakesnow_server):
        with _fakesnow_server() as kwargs:
            yield kwargs
        return
    with serve_app(_fakesnow_server.app) as endpoint:
        yield {"user": "fake", "password": PASSWORD, "account": ACCOUNT, "host": endpoint.host,
               "port": endpoint.port, "protocol": "http", "network_timeout": 1}


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict[str, Any]]:
    """fakesnow's server on a free loopback port; yields its connect() kwargs."""
    with _serve() as kwargs:
        yield kwargs


@pytest.fixture(scope="session")
def endpoint(fakesnow_server: dict[str, Any]) -> Endpoint:
    return Endpoint(fakesnow_server["host"], fakesnow_server["port"])


@pytest.fixture(autouse=True)
def snowflake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the password comes from the environment; nothing else leaks in."""
    for key in ("USER", "AUTHENTICATOR", "PRIVATE_KEY_FILE", "TOKEN", "ROLE", "WAREHOUSE",
                "HOST", "PORT", "PROTOCOL"):
        monkeypatch.delenv(f"SNOWFLAKE_{key}", raising=False)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)


@pytest.fixture
def schema(request: pytest.FixtureRequest) -> str:
    """A fresh schema name for this test (fakesnow creates it on first connect)."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name.upper())
    return f"T_{name}"[:120]


@pytest.fixture
def base_uri(schema: str) -> str:
    return f"snowflake://{ACCOUNT}/{DATABASE}/{schema}"


@pytest.fixture
def connection(fakesnow_server: dict[str, Any], schema: str) -> Iterator[Any]:
    """A plain connector connection to this test's schema."""
    conn = snowflake.connector.connect(**fakesnow_server, database=DATABASE, schema=schema)
    yield conn
    conn.close()


@pytest.fixture
def sql(connection: Any) -> Callable[..., list[tuple]]:
    """``sql(statement, params=None) -> rows`` over a plain connector connection."""

    def run(statement: str, params: Any = None) -> list[tuple]:
        cursor = connection.cursor()
        cursor.execute(statement, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    return run


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[Endpoint]:
    """Run an ASGI app on a free loopback port until the block ends."""
    import uvicorn

    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="stand-in server", daemon=True)
    thread.start()
    while thread.is_alive() and not server.started:
        time.sleep(0.02)
    try:
        yield Endpoint("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _password_checking_app(password: str) -> Any:
    """fakesnow's own app, behind a login that checks the password.

    fakesnow's server accepts any credentials, so it cannot refuse a login; this
    route answers a wrong password the way Snowflake does (code 390100) and
    hands every other request to fakesnow.
    """
    import fakesnow.server as fake
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def login(request: Request) -> JSONResponse:
        body = await request.body()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if json.loads(body)["data"].get("PASSWORD") != password:
            return JSONResponse({"data": None, "code": "390100", "success": False,
                                 "message": "Incorrect username or password was specified."})
        return await fake.login_request(request)

    return Starlette(routes=[Route("/session/v1/login-request", login, methods=["POST"]),
                             *fake.routes])


@pytest.fixture(scope="session")
def password_endpoint(fakesnow_server: dict[str, Any]) -> Iterator[Endpoint]:
    """A server that accepts only the password ``snow`` (fakesnow behind a real check)."""
    with serve_app(_password_checking_app(PASSWORD)) as endpoint:
        yield endpoint


@pytest.fixture
def another_fakesnow() -> Callable[[], contextlib.AbstractContextManager[dict[str, Any]]]:
    """``with another_fakesnow() as kwargs:`` a second fakesnow server, to stop at will.

    It serves the same in-memory databases as the session's server (fakesnow
    keeps them per process), so a job can lose its server and resume on the other.
    """
    return _serve


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
