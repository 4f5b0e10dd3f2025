"""Reading a month of records: the drift stage over 30 days x 24 jobs, compacted and not.

    python benchmarks/monitoring_read.py [--days 30] [--jobs-per-day 24] [--chunks 10]
                                         [--chunk-rows 5000] [--repeat 3]

Builds (once, cached under benchmarks/.cache/read/) a small package with a
baseline (the logistic pipeline and 25 columns of ``drift.py``, on 50k
reference rows) and a store of records as hourly jobs leave them: one job an
hour for 30 days, each of 10 chunks of 5,000 rows counted with ``count_chunk``
on drifting random rows and scored by the model (20 distinct chunks, each job
takes 10 of them in turn), published with ``MonitoringStore.publish`` and left
uncompacted (one stats and one health file per job).

On a fresh copy of that store, measures ``batchpred drift DEPLOYMENT --since
START --until END --store DIR --format json`` as a whole process (wall time and
peak RSS, best of ``--repeat``) and the in-process read and merge alone
(``MonitoringStore.read`` + ``merge_table``); then ``batchpred monitoring compact
DEPLOYMENT --store DIR --all-days``, and the same measures again. Both states
must give identical ``features`` entries in the drift document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift import build_package, generate  # noqa: E402
from throughput import CACHE, measure  # noqa: E402

ROOT = CACHE / "read"
DEPLOYMENT = "read-bench"
START = datetime(2026, 1, 1, tzinfo=UTC)  # the first job's hour (fixed: the same store)
REFERENCE_ROWS = 50_000
DISTINCT_CHUNKS = 20


def chunk_stats(pkg: Path, current: Path, chunk_rows: int) -> tuple[list[Any], list[str], str]:
    """``DISTINCT_CHUNKS`` ChunkStats of ``chunk_rows`` current rows each, as a job counts
    them; the prediction column names and the package digest."""
    from batch.models.cache import process_cache
    from batch.models.package import open_package
    from batch.monitoring.baseline import read_baseline
    from batch.monitoring.stats import count_chunk
    from batch.scoring.chunk import score_batch
    from batch.scoring.columns import ScoringOptions
    from batch.scoring.features import coerce_features

    package = open_package(pkg)
    baseline = read_baseline(package)
    assert baseline is not None
    scorer = process_cache().get(package)
    table = pq.read_table(current)
    stats = []
    for i in range(DISTINCT_CHUNKS):
        batch = table.slice(i * chunk_rows, chunk_rows).combine_chunks().to_batches()[0]
        features = coerce_features(batch, package.manifest)
        out = score_batch(batch, package, scorer, ScoringOptions(), features=features)
        stats.append(count_chunk(baseline, features.columns, out, codes=features.codes))
    return stats, [p.name for p in baseline.predictions], package.digest


def build_store(store_dir: Path, args: argparse.Namespace) -> dict[str, int]:
    """Publish one job an hour over ``args.days`` days (uncompacted); what it wrote."""
    from batch.models.package import open_package
    from batch.monitoring.baseline import read_baseline
    from batch.monitoring.records import ChunkFacts, Producer, health_table, stats_table
    from batch.monitoring.store import MonitoringStore

    marker = store_dir / "built.json"
    if marker.exists():
        return json.loads(marker.read_text())  # type: ignore[no-any-return]
    ROOT.mkdir(parents=True, exist_ok=True)
    reference, current = ROOT / "reference.parquet", ROOT / "current.parquet"
    if not reference.exists():
        generate(REFERENCE_ROWS, reference, drifted=False)
    rows = DISTINCT_CHUNKS * args.chunk_rows
    if not current.exists() or pq.ParquetFile(current).metadata.num_rows < rows:
        current.unlink(missing_ok=True)
        generate(rows, current, drifted=True)
    pkg = build_package(reference, ROOT)
    stats, predictions, digest = chunk_stats(pkg, current, args.chunk_rows)
    shutil.rmtree(store_dir, ignore_errors=True)
    store = MonitoringStore(str(store_dir))
    baseline = read_baseline(open_package(pkg))
    assert baseline is not None
    store.save_baseline(baseline)  # as a job does: the stage finds it by fingerprint
    jobs = args.days * args.jobs_per_day
    step = timedelta(days=1) / args.jobs_per_day
    files = 0
    print(f"publishing {jobs} jobs x {args.chunks} chunks of {args.chunk_rows:,} rows ...",
          flush=True)
    for j in range(jobs):
        at = START + j * step
        job_id = f"hourly-{at:%Y%m%dT%H%M}"
        facts = [ChunkFacts(i, args.chunk_rows, 0, 2.5,
                            at + timedelta(minutes=5, seconds=30 * i),
                            stats[(j + i) % DISTINCT_CHUNKS]) for i in range(args.chunks)]
        producer = Producer(DEPLOYMENT, digest, job_id)
        files += len(store.publish(DEPLOYMENT, job_id, {
            "stats": stats_table(producer, facts, predictions),
            "health": health_table(producer, facts)}))
    built = {"jobs": jobs, "files": files, "rows": jobs * args.chunks * args.chunk_rows}
    marker.write_text(json.dumps(built))
    return built


def drift_doc(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def read_merge(store_dir: Path, since: datetime, until: datetime, repeat: int
               ) -> dict[str, float]:
    """The in-process read and merge (the fastest of ``repeat``): seconds of each, files
    and stats rows read."""
    from batch.monitoring.drift import merge_table
    from batch.monitoring.store import MonitoringStore

    best: dict[str, float] = {}
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        found = MonitoringStore(str(store_dir)).read(DEPLOYMENT, "stats", since=since,
                                                     until=until)
        read = time.perf_counter()
        merged = merge_table(found.table)
        done = time.perf_counter()
        assert len(merged) == 1 and not found.warnings, found.warnings
        if not best or done - started < best["read_merge"]:
            best = {"read_merge": done - started, "read": read - started,
                    "merge": done - read, "files": found.files,
                    "stats_rows": found.table.num_rows}
    return best


def measure_state(state: str, store_dir: Path, cmd: list[str], env: dict[str, str], *,
                  since: datetime, until: datetime, repeat: int) -> dict[str, float]:
    inner = read_merge(store_dir, since, until, repeat)
    runs = [measure(cmd, env) for _ in range(max(1, repeat))]
    m = min(runs, key=lambda r: r["wall"])
    print(f"  {state:12s} {inner['files']:5.0f} files  drift {m['wall']:6.2f} s  read "
          f"{inner['read']:6.3f} s + merge {inner['merge']:6.3f} s", flush=True)
    return {**inner, "wall": m["wall"], "peak": m["peak"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--jobs-per-day", type=int, default=24)
    parser.add_argument("--chunks", type=int, default=10, help="chunks per job")
    parser.add_argument("--chunk-rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="run each measure N times and keep the fastest")
    args = parser.parse_args()
    if not 0 < args.jobs_per_day <= 24 * 60 or args.chunks > 100:
        parser.error("--jobs-per-day: 1 to 1440; --chunks: at most 100 (they end 30 s apart)")

    shape = f"{args.days}d-{args.jobs_per_day}j-{args.chunks}c-{args.chunk_rows}r"
    pristine = ROOT / f"store-{shape}"
    built = build_store(pristine, args)
    store_dir = ROOT / "store"  # a fresh copy: compaction changes it
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.copytree(pristine, store_dir)
    since, until = START, START + timedelta(days=args.days)
    env = {"BATCHPRED_HOME": str(ROOT / "home")}  # no deployments: the store's baseline
    fmt = "%Y-%m-%dT%H:%M:%S"
    cmd = [sys.executable, "-m", "flows.cli", "drift", DEPLOYMENT, "--since",
           since.strftime(fmt), "--until", until.strftime(fmt), "--store", str(store_dir),
           "--format", "json"]
    print(f"{built['jobs']} jobs over {args.days} days ({built['rows']:,} rows, "
          f"{built['files']} record files), {os.cpu_count()} cores, best of {args.repeat}",
          flush=True)

    results = {"uncompacted": measure_state("uncompacted", store_dir, cmd, env, since=since,
                                            until=until, repeat=args.repeat)}
    before = drift_doc(cmd, env)
    compact = measure([sys.executable, "-m", "flows.cli", "monitoring", "compact", DEPLOYMENT,
                       "--store", str(store_dir), "--all-days"], env)
    print(f"  compact      {compact['wall']:6.2f} s", flush=True)
    results["compacted"] = measure_state("compacted", store_dir, cmd, env, since=since,
                                         until=until, repeat=args.repeat)
    after = drift_doc(cmd, env)

    assert before["rows"] == after["rows"] == built["rows"], (before["rows"], after["rows"])
    assert before["features"] == after["features"], "compaction changed the merged features"
    assert before["predictions"] == after["predictions"], "compaction changed the predictions"
    assert before["jobs"] == after["jobs"] and len(before["jobs"]) == built["jobs"]
    drifted = [f["name"] for f in after["features"] if f["drifted"]]
    print(f"same document features before and after compaction: {after['rows']:,} rows, "
          f"{len(after['jobs'])} jobs, drifted {', '.join(drifted)}")

    print()
    print(f"{'state':12s} {'files read':>10s} {'stats rows':>11s} {'wall s':>8s} "
          f"{'read s':>7s} {'merge s':>8s} {'peak RSS MB':>12s}")
    for state, r in results.items():
        print(f"{state:12s} {r['files']:10.0f} {r['stats_rows']:11,.0f} {r['wall']:8.2f} "
              f"{r['read']:7.3f} {r['merge']:8.3f} {r['peak'] / 1e6:12,.0f}")
    print(f"{'compaction':12s} {'':10s} {'':11s} {compact['wall']:8.2f}")
    print("(wall: the drift command as a whole process; read, merge: MonitoringStore.read and "
          "merge_table in-process)")
    u, c = results["uncompacted"], results["compacted"]
    print()
    print(f"compacted: the drift stage is {u['wall'] / c['wall']:.1f}x faster "
          f"({u['read_merge'] / c['read_merge']:.1f}x on read+merge alone), reading "
          f"{c['files']:.0f} files instead of {u['files']:.0f}")
    print(json.dumps({"jobs": built["jobs"], "rows": built["rows"],
                      "compact_s": round(compact["wall"], 3), **{
                          state: {"files": int(r["files"]), "stats_rows": int(r["stats_rows"]),
                                  "wall_s": round(r["wall"], 3),
                                  "read_s": round(r["read"], 4),
                                  "merge_s": round(r["merge"], 4),
                                  "peak_rss_mb": round(r["peak"] / 1e6, 1)}
                          for state, r in results.items()}}))


if __name__ == "__main__":
    main()
