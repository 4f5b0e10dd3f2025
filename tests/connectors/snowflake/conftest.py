"""Snowflake tests: fakesnow's server and the schema per test come from ../conftest.py.

Here: the environment every Snowflake test runs in, a server that checks the
password (fakesnow's accepts any), and a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _password_only_from_env(snowflake_env: None) -> None:
    """Every test here: only the password comes from the environment."""


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
def password_endpoint(
    fakesnow_server: dict[str, Any], asgi_server: Callable[[Any], Any]
) -> Iterator[Any]:
    """A server that accepts only fakesnow's password (fakesnow behind a real check)."""
    with asgi_server(_password_checking_app(fakesnow_server["password"])) as endpoint:
        yield endpoint


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
