"""Real stand-ins for the connectors' stores, on free loopback ports.

S3: moto's server, one per session; every test that asks for ``s3`` gets it
reset (no buckets, no policies, authentication off), a fresh ``S3FileSystem``
instance cache, dummy credentials in the environment, and an empty bucket
``bucket``.

Snowflake: fakesnow's server (``fakesnow.server()``), one per session, with the
real connector talking HTTP to it; one schema per test, so tests never see each
other's tables. ``sql`` runs statements over a plain connector connection: the
independent reference the tests check against.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import fakesnow
import pytest
import snowflake.connector
from moto.server import ThreadedMotoServer
from s3fs import S3FileSystem

BUCKET = "bucket"


@dataclass(frozen=True)
class S3:
    """The moto server as the tests see it."""

    endpoint: str
    bucket: str = BUCKET

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def options(self, **extra: str) -> dict[str, str]:
        """``--input-option``/``--output-option`` values that reach this server."""
        return {"endpoint_url": self.endpoint, **extra}

    def client(self) -> Any:
        return _client(self.endpoint)

    def fs(self) -> S3FileSystem:
        return S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True)

    def objects(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix`` (no listing cache)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def put(self, key: str, body: bytes, **kwargs: Any) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)

    def pending_uploads(self) -> list[str]:
        """Keys of multipart uploads started and neither completed nor aborted."""
        found = self.client().list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in found.get("Uploads", [])]

    def deny(self, actions: str | list[str], resource: str) -> None:
        """Attach a bucket policy that denies ``actions`` on ``resource`` (a key pattern)."""
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": actions,
            "Resource": f"arn:aws:s3:::{self.bucket}/{resource}"}]}
        self.client().put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))

    def allow_all(self) -> None:
        self.client().delete_bucket_policy(Bucket=self.bucket)

    def moto_api(self, action: str, body: bytes = b"") -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/{action}", data=body,
                                         method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@functools.lru_cache(maxsize=4)
def _client(endpoint: str) -> Any:
    # explicit dummy keys: the client outlives the monkeypatched environment of one test
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="moto-test-key", aws_secret_access_key="moto-test-secret")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Dummy credentials and no shared config from the machine running the tests."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no probe of a metadata service
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def s3(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3]:
    aws_env(monkeypatch, tmp_path_factory.mktemp("aws"))
    server = S3(moto_endpoint)
    server.moto_api("reset")
    server.moto_api("reset-auth", b"inf")  # a test may have switched IAM checks on
    S3FileSystem.clear_instance_cache()
    server.client().create_bucket(Bucket=server.bucket)
    yield server
    S3FileSystem.clear_instance_cache()


# -- Snowflake ----------------------------------------------------------------------

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


@pytest.fixture(scope="session")
def asgi_server() -> Callable[[Any], contextlib.AbstractContextManager[Endpoint]]:
    """``with asgi_server(app) as endpoint:`` an ASGI app served on a free loopback port."""
    return serve_app


@pytest.fixture
def another_fakesnow() -> Callable[[], contextlib.AbstractContextManager[dict[str, Any]]]:
    """``with another_fakesnow() as kwargs:`` a second fakesnow server, to stop at will.

    It serves the same in-memory databases as the session's server (fakesnow
    keeps them per process), so a job can lose its server and resume on the other.
    """
    return _serve


@pytest.fixture
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
