"""A real S3 for the file connector: moto's server on a free loopback port.

One server per session; every test that asks for ``s3`` gets it reset (no
buckets, no policies, authentication off), a fresh ``S3FileSystem`` instance
cache, dummy credentials in the environment, and an empty bucket ``bucket``.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
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
