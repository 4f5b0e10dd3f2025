"""Reading ``s3://`` through moto's real S3 server: streaming, byte ranges, options, errors.

What goes over the wire is read from s3fs's own debug log of the requests it
makes (``CALL: get_object ... 'Range': 'bytes=a-b'``), not from mocks.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import re
import socket
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from connectors import (
    ConnectorConfigError,
    InputFormatError,
    IntakeRequest,
    SourceNotFoundError,
    open_intake,
)
from connectors.errors import (
    AccessDeniedError,
    AuthenticationError,
    BucketNotFoundError,
    ConnectionFailedError,
    CredentialsInUriError,
    UnknownSchemeError,
)
from connectors.files import READ_BLOCK
from connectors.formats import BLOCK_SIZE
from connectors.ranges import CsvRange

_RANGE = re.compile(r"CALL: get_object .*'Key': '([^']+)'.*'Range': 'bytes=(\d+)-(\d+)'")


if TYPE_CHECKING:
    from conftest import S3  # the fixture's type; several conftest modules exist


def table(rows: int) -> pa.Table:
    rng = np.random.default_rng(5)
    return pa.table({
        "id": pa.array(np.arange(rows), pa.int64()),
        "x": pa.array(rng.normal(size=rows)),
        "label": pa.array(rng.choice(["alpha", "beta", "gamma, delta"], size=rows)),
    })


def csv_bytes(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pcsv.write_csv(t, buf)
    return buf.getvalue()


class Gets:
    """The ranged GETs s3fs makes, from its debug log."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="s3fs")
        self._caplog = caplog

    def ranges(self, key: str) -> list[tuple[int, int]]:
        found = [_RANGE.search(r.getMessage()) for r in self._caplog.records]
        return [(int(m[2]), int(m[3]) + 1) for m in found if m and m[1] == key]

    def unranged(self) -> list[str]:
        return [r.getMessage() for r in self._caplog.records
                if "CALL: get_object" in r.getMessage() and "'Range'" not in r.getMessage()]

    def clear(self) -> None:
        self._caplog.clear()


def test_csv_streams_in_bounded_ranged_reads(s3: S3, caplog: pytest.LogCaptureFixture) -> None:
    """No request asks for the whole object; each asks for a bounded block, once.

    pyarrow's streaming CSV reader reads up to about 32 blocks ahead of the
    batch handed out (bounded, whatever the object's size), so this object is
    smaller than that read-ahead: what shows the streaming is the shape of the
    requests, not a partly-read object.
    """
    data = csv_bytes(table(1_000_000))  # about 36 MB: several read-ahead blocks
    s3.put("big.csv", data)
    gets = Gets(caplog)
    intake = open_intake(IntakeRequest(uri=s3.uri("big.csv"), chunk_rows=100_000,
                                       options=s3.options()))
    rows = sum(b.num_rows for b in intake.batches())
    intake.close()
    every = gets.ranges("big.csv")
    assert rows == 1_000_000 and gets.unranged() == []
    assert len(every) >= 3 and max(b - a for a, b in every) <= BLOCK_SIZE + READ_BLOCK
    assert sorted(every) == every and sum(b - a for a, b in every) == len(data)  # each byte once


def test_parquet_reads_row_groups_by_range(s3: S3, caplog: pytest.LogCaptureFixture) -> None:
    buf = io.BytesIO()
    pq.write_table(table(200_000), buf, row_group_size=20_000)
    s3.put("t.parquet", buf.getvalue())
    gets = Gets(caplog)
    intake = open_intake(IntakeRequest(uri=s3.uri("t.parquet"), chunk_rows=50_000,
                                       options=s3.options()))
    assert pa.Table.from_batches(list(intake.batches())).equals(table(200_000))
    assert gets.ranges("t.parquet") and gets.unranged() == []


def _ranges(s3: S3, rows: int = 20_000) -> tuple[bytes, list[CsvRange]]:
    data = csv_bytes(table(rows))
    s3.put("r.csv", data)
    intake = open_intake(IntakeRequest(uri=s3.uri("r.csv"), options=s3.options()))
    ranges = intake.byte_ranges(len(data) // 5)
    assert ranges is not None and len(ranges) >= 4
    return data, ranges


def test_a_byte_range_fetches_exactly_its_bytes(s3: S3, caplog: pytest.LogCaptureFixture) -> None:
    data, ranges = _ranges(s3)
    gets = Gets(caplog)
    middle = ranges[2]
    batch = middle.read()
    assert gets.ranges("r.csv") == [(middle.start, middle.end)]
    expected = pcsv.read_csv(io.BytesIO(data[:ranges[0].start] + data[middle.start:middle.end]))
    assert batch.to_pylist() == expected.to_pylist()


def test_ranges_read_in_worker_processes_reach_the_same_store(s3: S3) -> None:
    _, ranges = _ranges(s3)
    spawn = multiprocessing.get_context("spawn")  # a fresh process: nothing inherited but args
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        batches = list(pool.map(CsvRange.read, ranges))
    assert pa.Table.from_batches(batches).equals(table(20_000))


def test_public_object_reads_anonymously_and_options_reach_the_client(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put("public.csv", b"id\n1\n", ACL="public-read")
    anon = open_intake(IntakeRequest(uri=s3.uri("public.csv"), options=s3.options(anon="true")))
    assert pa.Table.from_batches(list(anon.batches())).to_pylist() == [{"id": 1}]
    # a named profile from the shared credentials file, with region and requester-pays
    creds = Path(tmp_path / "credentials")
    creds.write_text("[scoring]\naws_access_key_id = k\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    options = s3.options(profile="scoring", region="eu-west-1", requester_pays="true")
    intake = open_intake(IntakeRequest(uri=s3.uri("public.csv"), options=options))
    assert intake.schema.names == ["id"]
    with pytest.raises(AuthenticationError, match="could not be found.*profile="):
        open_intake(IntakeRequest(uri=s3.uri("public.csv"), options=s3.options(profile="nope")))
    with pytest.raises(AuthenticationError, match="no usable credentials.*AWS_PROFILE"):
        open_intake(IntakeRequest(uri=s3.uri("public.csv"), options=s3.options()))


def test_missing_bucket_and_missing_key_name_what_is_missing(s3: S3) -> None:
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        open_intake(IntakeRequest(uri="s3://no-such-bucket/x.csv", options=s3.options()))
    with pytest.raises(SourceNotFoundError, match="bucket 'bucket', key 'in/nope.csv'"):
        open_intake(IntakeRequest(uri=s3.uri("in/nope.csv"), options=s3.options()))
    with pytest.raises(SourceNotFoundError, match="no files match"):
        s3.put("in/_SUCCESS", b"{}")
        open_intake(IntakeRequest(uri=s3.uri("in"), options=s3.options()))


def test_no_permission_is_access_denied_naming_bucket_and_key(s3: S3) -> None:
    s3.put("private/p.csv", b"id\n1\n")
    with pytest.raises(AccessDeniedError, match="bucket 'bucket', key 'private/p.csv'") as info:
        open_intake(IntakeRequest(uri=s3.uri("private/p.csv"), options=s3.options(anon="true")))
    assert isinstance(info.value, PermissionError)
    s3.deny("s3:GetObject", "private/*")  # the bucket policy wins even over credentials
    intake = open_intake(IntakeRequest(uri=s3.uri("private/p.csv"), options=s3.options()))
    with pytest.raises(AccessDeniedError, match="while opening the input"):
        _ = intake.schema


def test_unreachable_endpoint_fails_fast_with_a_clear_error(s3: S3) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match=f"127.0.0.1:{port}.*endpoint_url"):
        open_intake(IntakeRequest(uri=s3.uri("x.csv"),
                                  options={"endpoint_url": f"http://127.0.0.1:{port}"}))
    assert time.monotonic() - started < 10


def test_credentials_in_the_uri_are_refused_without_echoing_them(s3: S3) -> None:
    uri = "s3://AKIAEXAMPLE:wJalrXUtnFEMI-secret@bucket/in.csv"
    with pytest.raises(CredentialsInUriError) as info:
        open_intake(IntakeRequest(uri=uri, options=s3.options()))
    text = str(info.value)
    assert "s3://***@bucket" in text and "AWS_PROFILE" in text
    assert "secret" not in text.replace("AWS_SECRET", "") and "AKIA" not in text
    assert info.value.__cause__ is None and info.value.__context__ is None
    with pytest.raises(ConnectorConfigError, match="endpoint_url") as bad:
        open_intake(IntakeRequest(uri=s3.uri("in.csv"),
                                  options={"endpoint_url": "http://key:hunter2@127.0.0.1:1"}))
    assert "hunter2" not in str(bad.value) and "hunter2" not in str(bad.value.__cause__)


def test_unavailable_scheme_and_misplaced_options_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UnknownSchemeError, match="pip install gcsfs"):
        open_intake(IntakeRequest(uri="gs://bucket/in.csv"))
    (tmp_path / "t.csv").write_text("a\n1\n")
    with pytest.raises(ConnectorConfigError,
                       match="endpoint_url do not apply to 'local' paths"):
        open_intake(IntakeRequest(uri=str(tmp_path / "t.csv"),
                                  options={"endpoint_url": "http://127.0.0.1:9000"}))


def test_unreadable_object_names_its_url(s3: S3) -> None:
    s3.put("bad.csv", b"id,x\n1,2\n3,4,5\n")
    intake = open_intake(IntakeRequest(uri=s3.uri("bad.csv"), options=s3.options()))
    with pytest.raises(InputFormatError, match=r"^s3://bucket/bad\.csv: .*Expected 2 columns"):
        list(intake.batches())
