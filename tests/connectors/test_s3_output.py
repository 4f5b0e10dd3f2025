"""Writing ``s3://`` through moto's real S3 server: whole objects or nothing, clear errors.

A single object is staged as part objects and published by one multipart
upload at commit; the upload is aborted when anything fails. The requests
s3fs makes are read from its debug log, not from mocks.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors import (
    Output,
    OutputError,
    OutputExistsError,
    OutputRequest,
    Receipt,
    open_output,
)
from connectors.errors import AccessDeniedError, BucketNotFoundError, ConnectionFailedError

if TYPE_CHECKING:
    from conftest import S3  # the fixture's type; several conftest modules exist


BIG_ROWS = 420_000  # about 15 MB of CSV: three 5 MiB parts
CHUNK_ROWS = 60_000


def table(rows: int) -> pa.Table:
    rng = np.random.default_rng(11)
    return pa.table({
        "id": pa.array(np.arange(rows), pa.int64()),
        "score": pa.array(rng.random(rows)),
        "label": pa.array(rng.choice(["yes", "no"], size=rows)),
    })


def stage(uri: str, t: pa.Table, **options: str) -> tuple[Output, list[Receipt]]:
    out = open_output(OutputRequest(uri=uri, options=options))
    out.start(t.schema)
    receipts = [out.write(i, b) for i, b in enumerate(t.to_batches(max_chunksize=CHUNK_ROWS))]
    return out, receipts


def reference(tmp_path: Path, name: str, t: pa.Table) -> bytes:
    """The same rows written to a local file: what the object must hold, byte for byte."""
    out, _ = stage(str(tmp_path / name), t)
    out.commit()
    return (tmp_path / name).read_bytes()


def calls(caplog: pytest.LogCaptureFixture, method: str) -> int:
    return sum(f"CALL: {method} " in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_single_object_is_published_by_one_multipart_upload(
    s3: S3, tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    big = table(BIG_ROWS)
    out, _ = stage(s3.uri(name), big, **s3.options(part_size_mb="5"))
    assert s3.objects() == [f".{name}.job.staging/part-{i:05d}{Path(name).suffix}"
                         for i in range(7)]
    caplog.set_level(logging.DEBUG, logger="s3fs")
    out.commit()
    assert calls(caplog, "create_multipart_upload") == 1
    assert calls(caplog, "copy_object") == 0  # written in place, never copied there
    assert s3.objects() == [name] and s3.pending_uploads() == []
    etag = s3.client().head_object(Bucket=s3.bucket, Key=name)["ETag"]
    assert etag.strip('"').rpartition("-")[2].isdigit()  # a multipart ETag: "<md5>-<parts>"
    assert s3.get(name) == reference(tmp_path, name, big)
    if name.endswith(".parquet"):
        assert pq.ParquetFile(tmp_path / name).num_row_groups == 7


def test_a_failed_commit_aborts_the_upload_and_publishes_nothing(
    s3: S3, caplog: pytest.LogCaptureFixture
) -> None:
    out, _ = stage(s3.uri("out.csv"), table(BIG_ROWS), **s3.options(part_size_mb="5"))
    s3.client().delete_object(Bucket=s3.bucket, Key=".out.csv.job.staging/part-00006.csv")
    caplog.set_level(logging.DEBUG, logger="s3fs")
    with pytest.raises(OutputError, match="part-00006.*--resume"):
        out.commit()
    assert calls(caplog, "upload_part") >= 2  # parts were uploaded before the failure...
    assert calls(caplog, "abort_multipart_upload") == 1  # ...and the upload was aborted
    assert "out.csv" not in s3.objects() and s3.pending_uploads() == []


def test_a_refused_commit_keeps_the_staged_chunks_for_a_resume(s3: S3, tmp_path: Path) -> None:
    t = table(200_000)
    s3.deny("s3:PutObject", "out.csv")
    out, receipts = stage(s3.uri("out.csv"), t, **s3.options())
    with pytest.raises(AccessDeniedError, match="bucket 'bucket', key 'out.csv'.*--resume"):
        out.commit()
    assert "out.csv" not in s3.objects() and len(s3.objects(".out.csv.job.staging/")) == 4
    s3.allow_all()
    resumed = open_output(OutputRequest(uri=s3.uri("out.csv"), options=s3.options()))
    resumed.start(t.schema, resume=receipts)
    resumed.commit()
    assert s3.objects() == ["out.csv"]
    assert s3.get("out.csv") == reference(tmp_path, "out.csv", t)


def test_a_prefix_gets_part_objects_and_success_last(s3: S3) -> None:
    t = table(150_000)
    out, receipts = stage(s3.uri("scored/"), t, **s3.options())
    assert all(k.startswith("scored/_temporary/job/") for k in s3.objects())
    out.commit()
    parts = [f"scored/part-{i:05d}.csv" for i in range(3)]
    assert s3.objects() == ["scored/_SUCCESS", *parts]
    success = json.loads(s3.get("scored/_SUCCESS"))
    assert [p["part"] for p in success["parts"]] == [p.rpartition("/")[2] for p in parts]
    assert [p["size"] for p in success["parts"]] == [len(s3.get(p)) for p in parts]
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        open_output(OutputRequest(uri=s3.uri("scored"), options=s3.options(layout="parts")))
    again = open_output(OutputRequest(uri=s3.uri("scored"), overwrite=True,
                                      options=s3.options(layout="parts")))
    again.start(t.schema)
    again.write(0, t.slice(0, 10).to_batches()[0])
    again.commit()
    assert s3.objects() == ["scored/_SUCCESS", "scored/part-00000.csv"]


def test_a_missing_bucket_is_named_and_never_created(s3: S3) -> None:
    for uri in ("s3://no-such-bucket/out.csv", "s3://no-such-bucket/out/"):
        with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket' does not exist"):
            stage(uri, table(10), **s3.options())
    assert [b["Name"] for b in s3.client().list_buckets()["Buckets"]] == [s3.bucket]


def test_refused_writes_name_the_bucket_and_key(s3: S3) -> None:
    s3.deny("s3:PutObject", "*")
    with pytest.raises(AccessDeniedError,
                       match="bucket 'bucket', key 'out.csv' while writing chunk 0"):
        stage(s3.uri("out.csv"), table(10), **s3.options())
    assert s3.objects() == []


def test_unreachable_endpoint_fails_fast(s3: S3) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="cannot reach the storage service"):
        open_output(OutputRequest(uri=s3.uri("out.csv"),
                                  options={"endpoint_url": f"http://127.0.0.1:{port}"}))
    assert time.monotonic() - started < 10


def test_a_resume_refuses_damaged_staging(s3: S3) -> None:
    t = table(100_000)
    _, receipts = stage(s3.uri("out.csv"), t, **s3.options())
    s3.put(".out.csv.job.staging/part-00001.csv", b"truncated")
    resumed = open_output(OutputRequest(uri=s3.uri("out.csv"), options=s3.options()))
    with pytest.raises(OutputError, match="part-00001.csv is missing or damaged; start the job"):
        resumed.start(t.schema, resume=receipts)
    assert "out.csv" not in s3.objects()
