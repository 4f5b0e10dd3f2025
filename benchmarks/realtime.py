"""Latency and throughput of ``batchpred serve`` against the bare scikit-learn model call.

    python benchmarks/realtime.py [--models hgb,logistic] [--clients 1,8,32]
                                  [--sizes 1,100] [--requests 2000] [--batch-requests 500]
                                  [--extra "SERVE OPTIONS"]

Serves each of the two packages of ``throughput.py`` (``hgb``: a
HistGradientBoostingClassifier, ``logistic``: a ColumnTransformer pipeline; built
once under benchmarks/.cache by ``throughput.build_packages``) with ``batchpred serve
--model PKG`` as a subprocess on a loopback port, and sends it CSV requests of 1 and
of 100 rows of the benchmark table (20 numbers with ~1% missing, 5 categoricals) from
1, 8 and 32 concurrent clients: threads with one keep-alive ``http.client`` connection
each, a fixed number of requests per setting (``--requests`` single-row,
``--batch-requests`` 100-row), after a short warm-up. A request is an error unless it
answers 200 with one prediction per row.

The baseline, measured in the same run: the same rows, already a pandas frame, scored
in this process by the model's own ``predict_proba``, one call per request, one
caller. The gap between the two p50s is what the server adds to the bare model call
(HTTP, parsing the CSV, coercing the features, building the answer); the client
threads run in this process's GIL, so at 32 clients part of the latency is the
clients' own.

Targets (on 2 cores):
  * single-row requests at 8 clients: p50 <= 3 ms and p99 <= 15 ms;
  * 1,000+ single-row requests at 32 clients with 0 errors.
The script prints whether each is met, per model.

DataRobot's ``drum`` (its custom-model server), the natural outside baseline, is not
available here (not installable in this environment), so the baseline is the model
call alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import CACHE, CATEGORICAL, NUMERIC, TRAIN_ROWS, build_packages, generate  # noqa: E402

POOL_ROWS = 20_000  # scoring rows the requests are cut from
BODIES = 64  # distinct bodies per request size, sent in turn
WARMUP = 50
START_TIMEOUT = 120.0
TARGET_P50_MS, TARGET_P99_MS, TARGET_CLIENTS = 3.0, 15.0, 8
STRESS_CLIENTS, STRESS_REQUESTS = 32, 1_000


def data_file() -> Path:
    """The Parquet table of throughput.py if it is there, else a 200k-row one."""
    cached = sorted(CACHE.glob("data-*.parquet"), key=lambda p: p.stat().st_size)
    if cached:
        return cached[-1]
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"data-{TRAIN_ROWS}.parquet"
    print(f"generating {TRAIN_ROWS:,} rows ...", flush=True)
    generate(TRAIN_ROWS, CACHE / f"data-{TRAIN_ROWS}.csv", path)
    return path


def scoring_rows(parquet: Path) -> pa.Table:
    """:data:`POOL_ROWS` rows past the training rows where the table has them."""
    file = pq.ParquetFile(parquet)
    skip = TRAIN_ROWS if file.metadata.num_rows >= TRAIN_ROWS + POOL_ROWS else 0
    batches, seen = [], 0
    for batch in file.iter_batches(batch_size=POOL_ROWS):
        if seen >= skip:
            batches.append(batch)
            break
        seen += batch.num_rows
    return pa.Table.from_batches(batches).slice(0, POOL_ROWS).select(NUMERIC + CATEGORICAL)


def csv_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def requests_of(rows: pa.Table, size: int) -> tuple[list[bytes], list[pd.DataFrame]]:
    """:data:`BODIES` CSV bodies of ``size`` rows, and the same rows as frames."""
    bodies, frames = [], []
    for i in range(BODIES):
        part = rows.slice((i * size) % (rows.num_rows - size), size)
        bodies.append(csv_bytes(part))
        frames.append(part.to_pandas())
    return bodies, frames


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(package: Path, home: Path, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BATCHPRED_HOME": str(home)}
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--model", str(package), "--port",
           str(port), *extra]
    log = (home / f"serve-{package.name}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"batchpred serve exited {proc.returncode}: "
                               f"{(home / f'serve-{package.name}.log').read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("batchpred serve did not answer /ping")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def scorer(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/info")
    info = json.loads(conn.getresponse().read())
    conn.close()
    return str(info.get("scorer", "?"))


class Client:
    """One keep-alive connection; reconnects after a failed request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, body: bytes, rows: int) -> tuple[float, bool]:
        """Latency in seconds, and whether the answer was right."""
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/predictions", body=body,
                              headers={"Content-Type": "text/csv"})
            response = self.conn.getresponse()
            data = response.read()
            ok = response.status == 200 and data.count(b'"rowId"') == rows
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            ok = False
        return time.perf_counter() - started, ok

    def close(self) -> None:
        self.conn.close()


def run_setting(port: int, bodies: list[bytes], rows: int, *, clients: int,
                total: int) -> dict[str, Any]:
    """``total`` requests from ``clients`` threads; latencies, errors, wall time."""
    pool = [Client(port) for _ in range(clients)]
    for i in range(WARMUP):
        pool[i % clients].post(bodies[i % len(bodies)], rows)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(index: int) -> None:
        nonlocal errors
        mine, bad = [], 0
        barrier.wait()
        for j in range(shares[index]):
            seconds, ok = pool[index].post(bodies[(index * 7 + j) % len(bodies)], rows)
            mine.append(seconds)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors += bad

    with ThreadPoolExecutor(clients) as executor:
        futures = [executor.submit(work, i) for i in range(clients)]
        barrier.wait()
        started = time.perf_counter()
        for f in futures:
            f.result()
        wall = time.perf_counter() - started
    for c in pool:
        c.close()
    return summary(latencies, errors, wall)


def run_baseline(model: Any, features: list[str], frames: list[pd.DataFrame],
                 total: int) -> dict[str, Any]:
    """``predict_proba`` on each request's frame in turn, in this process."""
    for i in range(WARMUP):
        model.predict_proba(frames[i % len(frames)][features])
    latencies = []
    started = time.perf_counter()
    for j in range(total):
        frame = frames[j % len(frames)][features]
        t = time.perf_counter()
        model.predict_proba(frame)
        latencies.append(time.perf_counter() - t)
    return summary(latencies, 0, time.perf_counter() - started)


def summary(latencies: list[float], errors: int, wall: float) -> dict[str, Any]:
    ms = np.array(latencies) * 1e3
    return {"requests": len(latencies), "errors": errors, "wall": wall,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "rps": len(latencies) / wall}


def load_model(package: Path) -> tuple[Any, list[str]]:
    meta = yaml.safe_load((package / "model.yaml").read_text())
    return (joblib.load(package / meta["artifact"]["path"]),
            [f["name"] for f in meta["features"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hgb,logistic")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per setting")
    parser.add_argument("--sizes", default="1,100", help="rows per request")
    parser.add_argument("--requests", type=int, default=2_000,
                        help="requests per single-row setting")
    parser.add_argument("--batch-requests", type=int, default=500,
                        help="requests per setting of more than one row")
    parser.add_argument("--extra", default="", help="extra batchpred serve options")
    args = parser.parse_args()

    packages = build_packages(data_file())
    rows = scoring_rows(data_file())
    clients = [int(c) for c in args.clients.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    home = CACHE / "home-realtime"
    print(f"{os.cpu_count()} cores; CSV requests to batchpred serve --model PKG on loopback, "
          f"{BODIES} distinct bodies per size")
    table: list[tuple[str, int, str, dict[str, Any]]] = []
    for name in args.models.split(","):
        package = packages[name]
        model, features = load_model(package)
        proc, port = start_server(package, home, args.extra.split())
        try:
            print(f"{name}: served by {scorer(port)}", flush=True)
            for size in sizes:
                bodies, frames = requests_of(rows, size)
                total = args.requests if size == 1 else args.batch_requests
                table.append((name, size, "sklearn in-process",
                              run_baseline(model, features, frames, total)))
                for n in clients:
                    m = run_setting(port, bodies, size, clients=n, total=total)
                    table.append((name, size, f"serve, {n} clients", m))
                    print(f"  {name:8s} {size:4d} rows {n:3d} clients  p50 {m['p50']:6.2f} ms  "
                          f"{m['rps']:7.0f} req/s  {m['errors']} errors", flush=True)
        finally:
            stop_server(proc)
    report(table)
    targets(table)


def report(table: list[tuple[str, int, str, dict[str, Any]]]) -> None:
    print()
    print(f"{'model':8s} {'rows':>5s} {'contender':20s} {'clients':>7s} {'requests':>8s} "
          f"{'errors':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'req/s':>8s} "
          f"{'p50 over model':>14s}")
    base: dict[tuple[str, int], float] = {}
    for name, size, who, m in table:
        n = who.split(", ")[1].split()[0] if who.startswith("serve") else "1"
        if who.startswith("sklearn"):
            base[(name, size)] = m["p50"]
            over = ""
        else:
            over = f"+{m['p50'] - base[(name, size)]:.2f} ms"
        print(f"{name:8s} {size:5d} {who.split(',')[0]:20s} {n:>7s} {m['requests']:8d} "
              f"{m['errors']:6d} {m['p50']:7.2f} {m['p95']:7.2f} {m['p99']:7.2f} "
              f"{m['rps']:8.0f} {over:>14s}")


def targets(table: list[tuple[str, int, str, dict[str, Any]]]) -> None:
    print()
    by = {(name, size, who): m for name, size, who, m in table}
    for name in dict.fromkeys(t[0] for t in table):
        latency = by.get((name, 1, f"serve, {TARGET_CLIENTS} clients"))
        if latency:
            met = latency["p50"] <= TARGET_P50_MS and latency["p99"] <= TARGET_P99_MS
            print(f"{name}: single-row at {TARGET_CLIENTS} clients p50 {latency['p50']:.2f} ms "
                  f"(<= {TARGET_P50_MS:g}), p99 {latency['p99']:.2f} ms (<= {TARGET_P99_MS:g}): "
                  f"{'MET' if met else 'NOT MET'}")
        stress = by.get((name, 1, f"serve, {STRESS_CLIENTS} clients"))
        if stress:
            met = stress["requests"] >= STRESS_REQUESTS and stress["errors"] == 0
            print(f"{name}: {stress['requests']:,} single-row requests at {STRESS_CLIENTS} "
                  f"clients, {stress['errors']} errors (1,000+ with 0 errors): "
                  f"{'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
