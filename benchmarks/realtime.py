"""Latency and throughput of ``batchpred serve``, DRUM's ``drum server`` and the bare model.

    python benchmarks/realtime.py [--models hgb,logistic] [--clients 1,8,32]
                                  [--sizes 1,100] [--requests 2000] [--batch-requests 500]
                                  [--workers N] [--extra "SERVE OPTIONS"]
                                  [--drum-python PATH | --no-drum]

Serves each of the two packages of ``throughput.py`` (``hgb``: a
HistGradientBoostingClassifier, ``logistic``: a ColumnTransformer pipeline; built
once under benchmarks/.cache by ``throughput.build_packages``) with ``batchpred serve
--model PKG --workers N``, and the same fitted model with ``drum server`` (DRUM's
built-in scikit-learn predictor on gunicorn with N sync workers, from a venv of its
own: see ``drum_peer.py``); N is ``--workers``, 1 by default. Both run as
subprocesses on loopback ports, up at the same time.

Each gets CSV requests of 1 and of 100 rows of the benchmark table (20 numbers with
~1% missing, 5 categoricals) cut to the model's features (``hgb``: the 20 numbers;
``logistic``: all 25), the same bytes to both, as the raw body with ``Content-Type:
text/csv``: ``POST /predictions`` to batchpred, ``POST /predict/`` to DRUM (which gives
every column of the body to the model, and scikit-learn refuses columns it was not
fitted on). They come from 1, 8 and 32 concurrent clients: threads with one
keep-alive ``http.client`` connection each, a fixed number of requests per setting
(``--requests`` single-row, ``--batch-requests`` 100-row), after a short warm-up;
each setting runs against batchpred, then against DRUM. DRUM closes the connection
after every answer (its gunicorn keeps no connection alive), so its clients connect
again for each request: that is part of its latency as a client sees it. A request
is an error unless it answers 200 with one prediction per row. Before measuring,
both servers score the same 100-row bodies, and the largest difference of their
positive-class probabilities is printed once per model (DRUM rounds them to 10
digits; batchpred may score with an ONNX conversion, in float32). batchpred runs with
its defaults (monitoring on, counted off the request path) plus ``--extra``; DRUM
monitors nothing (its ``--monitor`` needs DataRobot's MLOps agent).

The baseline, measured in the same run: the same rows, already a pandas frame, scored
in this process by the model's own ``predict_proba``, one call per request, one
caller. The gap between a server's p50 and the baseline's is what the server adds to
the bare model call (HTTP, parsing the CSV, coercing the features, building the
answer); the client threads run in this process's GIL, so at 32 clients part of the
latency is the clients' own.

The ratios, per model, rows and clients: batchpred's req/s over DRUM's (above 1:
batchpred served more) and batchpred's p50 over DRUM's (below 1: batchpred answered
sooner). The two ran the same requests with the same worker count in the same
minutes, so on a busy machine the ratios hold better than the figures; a burst of
other work on one contender's turn still moves its setting's ratio (its p95 and p99
show it): run again when a ratio stands apart from its neighbours. On a small machine
the OpenMP pool of ``hgb`` (a thread per core in each server's one worker, beside the
clients) makes both servers' ``hgb`` figures swing with other load, DRUM's most;
``OMP_NUM_THREADS=1`` in the environment takes it out of the comparison (both servers
and the baseline inherit it).

Targets (on 2 cores):
  * single-row requests at 8 clients: p50 <= 3 ms and p99 <= 15 ms;
  * 1,000+ single-row requests at 32 clients with 0 errors.
The script prints whether batchpred meets each, per model.

DRUM is installed once into benchmarks/.cache/drum-venv (``pip install datarobot-drum
scikit-learn==<this project's release>``); ``--drum-python PATH`` uses another
interpreter that has both, ``--no-drum`` leaves DRUM out. When DRUM cannot be
installed or started, the run prints one line saying why and goes on without it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import sklearn
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drum_peer  # noqa: E402
from throughput import CACHE, CATEGORICAL, NUMERIC, TRAIN_ROWS, build_packages, generate  # noqa: E402

POOL_ROWS = 20_000  # scoring rows the requests are cut from
BODIES = 64  # distinct bodies per request size, sent in turn
WARMUP = 50
START_TIMEOUT = 120.0
TARGET_P50_MS, TARGET_P99_MS, TARGET_CLIENTS = 3.0, 15.0, 8
STRESS_CLIENTS, STRESS_REQUESTS = 32, 1_000
BASELINE, BATCHPRED, DRUM = "sklearn in-process", "batchpred", "drum"


class StartError(RuntimeError):
    """A server exited or did not answer its readiness path before :data:`START_TIMEOUT`;
    the message ends with the last line of its log, and names the log."""

    def __init__(self, what: str, log: Path) -> None:
        text = log.read_text(errors="replace") if log.exists() else ""
        super().__init__(f"{what}; its log ends: {drum_peer.last_line(text)} (log: {log})")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server takes predictions, and what a right answer holds once per row."""

    contender: str
    port: int
    path: str
    marker: bytes
    workers: int


@dataclass(frozen=True, slots=True)
class Model:
    """A package's fitted model, its features as model.yaml lists them (the order the
    model was fitted in; DRUM needs that order) and its class labels."""

    estimator: Any
    features: list[str]
    labels: drum_peer.Labels


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a contender in one setting, and what it measured."""

    model: str
    size: int
    contender: str
    clients: int
    workers: int | None  # None: in this process
    measured: dict[str, Any]


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


@contextmanager
def serving(cmd: list[str], *, env: dict[str, str], log: Path, port: int, ready: str,
            cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """``cmd`` running until the block ends, once ``GET ready`` on ``port`` answers 200.

    Raises:
        StartError: it exited, or did not answer 200 within :data:`START_TIMEOUT`.
    """
    with log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)
    try:
        wait_ready(proc, port, ready, log)
        yield proc
    finally:
        stop_server(proc)


def wait_ready(proc: subprocess.Popen, port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited {proc.returncode}", log)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise StartError(f"did not answer GET {path} in {START_TIMEOUT:g} s", log)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server; its whole session is killed if it is not gone in 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the server and its workers: their own session
        proc.wait()


def start_batchpred(stack: ExitStack, package: Path, home: Path, *,
                    extra: list[str], workers: int) -> Endpoint:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--model", str(package), "--port",
           str(port), "--workers", str(workers), *extra]
    stack.enter_context(serving(cmd, env={**os.environ, "BATCHPRED_HOME": str(home)},
                                log=home / f"serve-{package.name}.log", port=port,
                                ready="/ping"))
    return Endpoint(BATCHPRED, port, "/predictions", b'"rowId"', workers)


def start_drum(stack: ExitStack, drum: drum_peer.Drum, model: Model, *, log: Path,
               workers: int) -> Endpoint:
    """``drum server`` on ``model`` until ``stack`` closes; raises :class:`StartError`."""
    code_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drum-")))
    drum_peer.write_code_dir(model.estimator, code_dir / "model")
    port = free_port()
    cmd = drum_peer.server_command(drum, code_dir / "model", model.labels, port=port,
                                   workers=workers)
    stack.enter_context(serving(cmd, env=drum_peer.server_env(workers), log=log, port=port,
                                ready=drum_peer.READY_PATH, cwd=code_dir))
    return Endpoint(DRUM, port, drum_peer.PREDICT_PATH,
                    drum_peer.prediction_marker(model.labels), workers)


def scorer(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/info")
    info = json.loads(conn.getresponse().read())
    conn.close()
    return str(info.get("scorer", "?"))


class Client:
    """One keep-alive connection (opened again when the server closed it, or failed)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.endpoint.port, timeout=60)

    def send(self, body: bytes) -> tuple[int, bytes]:
        """The answer's status and body; raises ``OSError``, ``HTTPException``."""
        self.conn.request("POST", self.endpoint.path, body=body,
                          headers={"Content-Type": "text/csv"})
        response = self.conn.getresponse()
        return response.status, response.read()

    def post(self, body: bytes, rows: int) -> tuple[float, bool]:
        """Latency in seconds, and whether the answer was right."""
        started = time.perf_counter()
        try:
            status, data = self.send(body)
            ok = status == 200 and data.count(self.endpoint.marker) == rows
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            ok = False
        return time.perf_counter() - started, ok

    def close(self) -> None:
        self.conn.close()


def run_setting(endpoint: Endpoint, bodies: list[bytes], rows: int, *, clients: int,
                total: int) -> dict[str, Any]:
    """``total`` requests from ``clients`` threads; latencies, errors, wall time."""
    pool = [Client(endpoint) for _ in range(clients)]
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


def run_baseline(model: Model, frames: list[pd.DataFrame], total: int) -> dict[str, Any]:
    """``predict_proba`` on each request's frame in turn, in this process."""
    for i in range(WARMUP):
        model.estimator.predict_proba(frames[i % len(frames)][model.features])
    latencies = []
    started = time.perf_counter()
    for j in range(total):
        frame = frames[j % len(frames)][model.features]
        t = time.perf_counter()
        model.estimator.predict_proba(frame)
        latencies.append(time.perf_counter() - t)
    return summary(latencies, 0, time.perf_counter() - started)


def summary(latencies: list[float], errors: int, wall: float) -> dict[str, Any]:
    ms = np.array(latencies) * 1e3
    return {"requests": len(latencies), "errors": errors, "wall": wall,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "rps": len(latencies) / wall}


def load_model(package: Path) -> Model:
    meta = yaml.safe_load((package / "model.yaml").read_text())
    target = meta["target"]
    positive = str(target["positive"])
    negative = next(str(c) for c in target["classes"] if str(c) != positive)
    return Model(joblib.load(package / meta["artifact"]["path"]),
                 [f["name"] for f in meta["features"]], drum_peer.Labels(positive, negative))


def agreement(batchpred: Endpoint, drum: Endpoint, bodies: list[bytes],
              labels: drum_peer.Labels) -> str:
    """How far apart the two servers' positive-class probabilities are on ``bodies``."""
    try:
        ours = probabilities(batchpred, bodies, labels, batchpred_probabilities)
        theirs = probabilities(drum, bodies, labels, drum_peer.positive_probabilities)
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        return f"could not compare batchpred's and drum's predictions: {type(e).__name__}: {e}"
    if ours.shape != theirs.shape:
        return f"batchpred gave {ours.size} predictions, drum {theirs.size}"
    return (f"max |P({labels.positive}) batchpred - drum| over the same {ours.size:,} rows: "
            f"{np.nanmax(np.abs(ours - theirs)):.2g}")


def probabilities(endpoint: Endpoint, bodies: list[bytes], labels: drum_peer.Labels,
                  parse: Callable[[bytes, drum_peer.Labels], np.ndarray]) -> np.ndarray:
    """``endpoint``'s positive-class probabilities for ``bodies``, read by ``parse``.

    Raises:
        ValueError: an answer other than 200 (or one ``parse`` cannot read).
    """
    client = Client(endpoint)
    try:
        out = []
        for body in bodies:
            status, data = client.send(body)
            if status != 200:
                raise ValueError(f"{endpoint.contender} answered {status}: {data[:200]!r}")
            out.append(parse(data, labels))
        return np.concatenate(out)
    finally:
        client.close()


def batchpred_probabilities(body: bytes, labels: drum_peer.Labels) -> np.ndarray:
    """The positive class's probability of each row of batchpred's PPS answer."""
    return np.array([next(v["value"] for v in row["predictionValues"]
                          if v["label"] == labels.positive)
                     for row in json.loads(body)["data"]], dtype=float)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hgb,logistic")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per setting")
    parser.add_argument("--sizes", default="1,100", help="rows per request")
    parser.add_argument("--requests", type=int, default=2_000,
                        help="requests per single-row setting")
    parser.add_argument("--batch-requests", type=int, default=500,
                        help="requests per setting of more than one row")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="server processes of batchpred serve, and workers of drum")
    parser.add_argument("--extra", default="", help="extra batchpred serve options")
    peer = parser.add_mutually_exclusive_group()
    peer.add_argument("--drum-python", type=Path, metavar="PATH",
                      help="a python with datarobot-drum and scikit-learn (default: a venv "
                      "under benchmarks/.cache, made on first use)")
    peer.add_argument("--no-drum", action="store_true", help="leave drum server out")
    args = parser.parse_args()
    if any(w == "--workers" or w.startswith("--workers=") for w in args.extra.split()):
        parser.error("give --workers N to the benchmark, not in --extra: drum gets the same")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: give 1 or more")
    return args


def main() -> None:
    args = parse_args()
    packages = build_packages(data_file())
    rows = scoring_rows(data_file())
    drum, why = (None, "--no-drum") if args.no_drum else drum_peer.find_drum(args.drum_python)
    print(f"{os.cpu_count()} cores; CSV requests on loopback to batchpred serve --model PKG "
          f"--workers {args.workers} {args.extra}".rstrip() + f", {BODIES} distinct bodies "
          "per size, each model's features only, the same bytes to every server")
    if drum is None:
        print(f"drum server left out: {why}")
    else:
        other = "" if drum.sklearn_version == sklearn.__version__ else (
            f", unlike this project's {sklearn.__version__}: the pickle may not score the same")
        print(f"drum server {drum.drum_version} (scikit-learn {drum.sklearn_version}{other}): "
              f"gunicorn, {args.workers} sync worker(s), built-in scikit-learn predictor "
              f"on a pickle of the same model")
    table: list[Row] = []
    for name in args.models.split(","):
        table += run_model(name, packages[name], rows, drum=drum, args=args)
    report(table)
    ratios(table)
    targets(table)


def run_model(name: str, package: Path, rows: pa.Table, *, drum: drum_peer.Drum | None,
              args: argparse.Namespace) -> list[Row]:
    """Every setting of one model: the baseline, then batchpred and drum back to back."""
    model = load_model(package)
    sizes = [int(s) for s in args.sizes.split(",")]
    cut = {size: requests_of(rows.select(model.features), size) for size in sizes}
    home = CACHE / "home-realtime"
    table = []
    with ExitStack() as stack:
        endpoints = [start_batchpred(stack, package, home, extra=args.extra.split(),
                                     workers=args.workers)]
        print(f"{name}: batchpred scores with {scorer(endpoints[0].port)}", flush=True)
        peer = start_peer(stack, drum, model, log=home / f"drum-{package.name}.log",
                          workers=args.workers)
        if peer is not None:
            endpoints.append(peer)
            print(f"{name}: {agreement(endpoints[0], peer, cut[max(sizes)][0], model.labels)}",
                  flush=True)
        for size in sizes:
            bodies, frames = cut[size]
            total = args.requests if size == 1 else args.batch_requests
            table.append(Row(name, size, BASELINE, 1, None, run_baseline(model, frames, total)))
            for n in [int(c) for c in args.clients.split(",")]:
                for endpoint in endpoints:
                    m = run_setting(endpoint, bodies, size, clients=n, total=total)
                    table.append(Row(name, size, endpoint.contender, n, endpoint.workers, m))
                    print(f"  {name:8s} {size:4d} rows {n:3d} clients {endpoint.contender:9s} "
                          f"p50 {m['p50']:7.2f} ms {m['rps']:7.0f} req/s {m['errors']} errors",
                          flush=True)
    return table


def start_peer(stack: ExitStack, drum: drum_peer.Drum | None, model: Model, *, log: Path,
               workers: int) -> Endpoint | None:
    """drum server on ``model``, or None (and one line saying why) if it does not start."""
    if drum is None:
        return None
    try:
        return start_drum(stack, drum, model, log=log, workers=workers)
    except (StartError, OSError, pickle.PicklingError) as e:
        print(f"drum server left out for this model: {e}", flush=True)
        return None


def report(table: list[Row]) -> None:
    print()
    print(f"{'model':8s} {'rows':>5s} {'contender':20s} {'workers':>7s} {'clients':>7s} "
          f"{'requests':>8s} {'errors':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} "
          f"{'req/s':>8s} {'p50 over model':>14s}")
    base: dict[tuple[str, int], float] = {}
    for r in table:
        m = r.measured
        if r.workers is None:
            base[(r.model, r.size)] = m["p50"]
            over, workers = "", "-"
        else:
            over, workers = f"+{m['p50'] - base[(r.model, r.size)]:.2f} ms", str(r.workers)
        print(f"{r.model:8s} {r.size:5d} {r.contender:20s} {workers:>7s} {r.clients:7d} "
              f"{m['requests']:8d} {m['errors']:6d} {m['p50']:7.2f} {m['p95']:7.2f} "
              f"{m['p99']:7.2f} {m['rps']:8.0f} {over:>14s}")


def ratios(table: list[Row]) -> None:
    """batchpred over drum, per setting both ran."""
    by = {(r.model, r.size, r.contender, r.clients): r.measured for r in table}
    pairs = [(r, by[(r.model, r.size, DRUM, r.clients)]) for r in table
             if r.contender == BATCHPRED and (r.model, r.size, DRUM, r.clients) in by]
    if not pairs:
        return
    print()
    print("batchpred / drum, same requests, same workers: req/s above 1x = batchpred served "
          "more; p50 below 1x = batchpred answered sooner")
    print(f"{'model':8s} {'rows':>5s} {'clients':>7s} {'req/s':>8s} {'p50':>8s}")
    for r, d in pairs:
        print(f"{r.model:8s} {r.size:5d} {r.clients:7d} {r.measured['rps'] / d['rps']:7.2f}x "
              f"{r.measured['p50'] / d['p50']:7.2f}x")


def targets(table: list[Row]) -> None:
    print()
    by = {(r.model, r.size, r.clients): r.measured for r in table
          if r.contender == BATCHPRED}
    for name in dict.fromkeys(r.model for r in table):
        latency = by.get((name, 1, TARGET_CLIENTS))
        if latency:
            met = latency["p50"] <= TARGET_P50_MS and latency["p99"] <= TARGET_P99_MS
            print(f"{name}: single-row at {TARGET_CLIENTS} clients p50 {latency['p50']:.2f} ms "
                  f"(<= {TARGET_P50_MS:g}), p99 {latency['p99']:.2f} ms (<= {TARGET_P99_MS:g}): "
                  f"{'MET' if met else 'NOT MET'}")
        stress = by.get((name, 1, STRESS_CLIENTS))
        if stress:
            met = stress["requests"] >= STRESS_REQUESTS and stress["errors"] == 0
            print(f"{name}: {stress['requests']:,} single-row requests at {STRESS_CLIENTS} "
                  f"clients, {stress['errors']} errors (1,000+ with 0 errors): "
                  f"{'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
