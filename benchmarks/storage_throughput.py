"""Rows/s of the file connector: local files against S3 (moto's server), CSV and Parquet.

    python benchmarks/storage_throughput.py [--rows 1000000] [--chunk-rows 100000]
    python -m benchmarks.connectors ...        (the same, from the repository root)

Generates a deterministic table (an id, 8 floats, 2 strings), then for each
format and store: writes it through ``FileOutput`` (one file: staged chunks and
one publish at commit, on S3 one multipart upload), reads it back through
``FileIntake`` (streamed), and for CSV reads it again as byte ranges (what
scoring workers do). Prints rows/s and MB/s, with S3's ratio to local files
measured in the same run as the baseline.

moto's server runs in its own process on a loopback port and keeps objects in
memory: the S3 numbers measure the connector's requests and s3fs/botocore's
overhead, not a network. Not collected by pytest (no ``test_`` names).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

if __name__ == "__main__" and not __package__:
    # run as a file, this module's own name would shadow the connectors package
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.connectors", *sys.argv[1:]])

from connectors import IntakeRequest, OutputRequest, open_intake, open_output  # noqa: E402

BUCKET = "bench"


def generate(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    cols: dict[str, pa.Array] = {"id": pa.array(np.arange(rows))}
    for i in range(8):
        cols[f"x{i}"] = pa.array(rng.normal(size=rows))
    cols["state"] = pa.array(rng.choice(["CA", "NY", "TX", "WA", "FL"], size=rows))
    cols["purpose"] = pa.array(rng.choice(["car", "home", "debt consolidation"], size=rows))
    return pa.table(cols)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a child process; yields its endpoint URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    n = fn()
    return time.perf_counter() - started, n


def write(uri: str, options: dict[str, str], table: pa.Table, chunk_rows: int) -> int:
    out = open_output(OutputRequest(uri=uri, options=options, overwrite=True))
    out.start(table.schema)
    for i, batch in enumerate(table.to_batches(max_chunksize=chunk_rows)):
        out.write(i, batch)
    out.commit()
    return table.num_rows


def read(uri: str, options: dict[str, str], chunk_rows: int) -> int:
    intake = open_intake(IntakeRequest(uri=uri, options=options, chunk_rows=chunk_rows))
    try:
        return sum(b.num_rows for b in intake.batches())
    finally:
        intake.close()


def read_ranges(uri: str, options: dict[str, str], target: int) -> int:
    intake = open_intake(IntakeRequest(uri=uri, options=options))
    ranges = intake.byte_ranges(target)  # type: ignore[attr-defined]
    intake.close()
    return sum(r.read().num_rows for r in ranges)


def size_of(uri: str, options: dict[str, str]) -> int:
    intake = open_intake(IntakeRequest(uri=uri, options=options))
    total = intake.progress().bytes_total or 0
    intake.close()
    return total


def run(table: pa.Table, chunk_rows: int, stores: dict[str, tuple[str, dict[str, str]]]
        ) -> list[tuple[str, str, str, float, int, int]]:
    """(format, operation, store, seconds, rows, bytes) for every combination."""
    rows = []
    for fmt in ("csv", "parquet"):
        for store, (root, options) in stores.items():
            uri = f"{root}/table.{fmt}"
            seconds, n = timed(lambda u=uri, o=options: write(u, o, table, chunk_rows))
            size = size_of(uri, options)
            rows.append((fmt, "output", store, seconds, n, size))
            seconds, n = timed(lambda u=uri, o=options: read(u, o, chunk_rows))
            rows.append((fmt, "intake", store, seconds, n, size))
            if fmt == "csv":
                seconds, n = timed(lambda u=uri, o=options: read_ranges(u, o, 16 << 20))
                rows.append((fmt, "ranges", store, seconds, n, size))
            print(f"  {fmt:8s} {store:6s} done", file=sys.stderr, flush=True)
    return rows


def report(rows: list[tuple[str, str, str, float, int, int]]) -> None:
    local = {(f, op): s for f, op, store, s, _, _ in rows if store == "local"}
    print(f"{'format':8s} {'operation':10s} {'store':6s} {'seconds':>8s} {'rows/s':>12s} "
          f"{'MB/s':>8s} {'speed vs local':>15s}")
    for fmt, op, store, seconds, n, size in rows:
        ratio = f"{local[(fmt, op)] / seconds:14.2f}x" if store != "local" else f"{'1.00x':>15s}"
        print(f"{fmt:8s} {op:10s} {store:6s} {seconds:8.2f} {n / seconds:12,.0f} "
              f"{size / seconds / 1e6:8.1f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    table = generate(args.rows)
    print(f"{args.rows:,} rows, {table.nbytes / 1e6:,.0f} MB in memory, chunks of "
          f"{args.chunk_rows:,}, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET)
        stores = {"local": (str(Path(tmp)), {}),
                  "s3": (f"s3://{BUCKET}", {"endpoint_url": endpoint})}
        report(run(table, args.chunk_rows, stores))


if __name__ == "__main__":
    main()
