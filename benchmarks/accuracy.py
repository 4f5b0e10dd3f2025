"""What challengers, actuals and the accuracy stage cost, each against its baseline.

    python benchmarks/accuracy.py [--rows 5000000] [--small 1000000] [--skip-challenger]
                                  [--skip-actuals] [--skip-month]

On the engine benchmark's table and packages (``throughput.py``: the ``hgb``
champion, the ``logistic`` pipeline as its challenger; both predict ``target``):

1. **Challenger overhead.** ``batchpred score`` of a deployment with the
   prediction log on, without and then with the challenger, against the
   challenger's own scoring time in that run (the per-chunk seconds the job
   keeps in its manifest, spread over the scoring processes) and against
   scoring the challenger's package alone. Target: the challenger adds no more
   than its own scoring time (no extra reading or parsing).
2. **Actuals upload and join.** ``batchpred actuals upload`` of one actual per
   scored row, and ``batchpred accuracy`` joining them to the prediction log, at
   ``--small`` and ``--rows`` rows: wall time and peak memory of the process
   tree at both sizes (flat in rows: the larger's peak near the smaller's).
3. **A month of records.** The ``--rows`` prediction log spread over 30 days of
   hourly buckets (rewritten in the store as a month of days), then
   ``batchpred accuracy --by day`` over the month: wall time and peak memory.

Each measurement is a fresh process; the table prints at the end. The machine
is shared by whatever else runs: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import CACHE, build_packages, generate, measure, target_for  # noqa: E402

CLI = [sys.executable, "-m", "flows.cli"]


def _data(rows: int) -> tuple[Path, Path]:
    csv_path, parquet_path = CACHE / f"data-{rows}.csv", CACHE / f"data-{rows}.parquet"
    if not csv_path.exists():
        print(f"generating {rows:,} rows ...", flush=True)
        generate(rows, csv_path, parquet_path)
    return csv_path, parquet_path


def _actuals(parquet_path: Path, out: Path) -> Path:
    """One actual per row: the table's own target, written as CSV (id, target)."""
    if out.exists():
        return out
    writer = None
    for batch in pq.ParquetFile(parquet_path).iter_batches(batch_size=500_000):
        frame = batch.to_pandas()
        table = pa.table({"id": frame["id"].to_numpy(), "target": target_for(frame)})
        if writer is None:
            writer = pcsv.CSVWriter(str(out), table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return out


def _run(args: list[str], env: dict[str, str]) -> dict[str, float]:
    return measure([*CLI, *args], env)


def _deploy(env: dict[str, str], name: str, package: Path, *,
            challenger: Path | None = None) -> None:
    for cmd in (["deploy", "create", name, "--model", str(package), "--replace"],
                ["deploy", "settings", name, "--association-id", "id"]):
        _run(cmd, env)
    if challenger is not None:
        _run(["deploy", "add-challenger", name, "--model", str(challenger)], env)


def _manifest_seconds(home: Path, job: str) -> tuple[float, float]:
    """The champion's and the challengers' scoring seconds, summed over the chunks."""
    champion = challengers = 0.0
    for line in (home / "jobs" / job / "manifest.jsonl").read_text().splitlines():
        chunk = json.loads(line)
        champion += chunk.get("score_seconds") or 0.0
        challengers += sum(c["seconds"] for c in (chunk.get("challengers") or {}).values())
    return champion, challengers


def challenger_overhead(rows: int, packages: dict[str, Path], home: Path,
                        env: dict[str, str]) -> list[tuple[str, dict[str, float]]]:
    csv_path, _ = _data(rows)
    out = CACHE / "out"
    out.mkdir(exist_ok=True)
    _deploy(env, "plain", packages["hgb"])
    _deploy(env, "duel", packages["hgb"], challenger=packages["logistic"])
    found = []
    # the challenger's package alone first: its job checks and keeps its ONNX conversion,
    # which it then scores with as a challenger too
    for name, model, job in (("challenger's package alone", str(packages["logistic"]),
                              "bench-alone"),
                             ("champion, log on", "plain", "bench-plain"),
                             ("champion + challenger", "duel", "bench-duel")):
        shutil.rmtree(home / "jobs" / job, ignore_errors=True)
        m = _run(["score", "--model", model, "--input", str(csv_path), "--output",
                  str(out / f"{job}.csv"), "--overwrite", "--quiet", "--job-id", job], env)
        m["score_s"], m["challenger_s"] = _manifest_seconds(home, job)
        timings = json.loads((home / "jobs" / job / "report.json").read_text())["timings"]
        m["publish_s"], m["stage_s"] = timings["monitoring"], timings["write"]
        found.append((name, m))
        print(f"  {name:28s} {m['wall']:7.1f} s", flush=True)
    return found


def actuals_and_join(rows: int, packages: dict[str, Path], home: Path, env: dict[str, str]
                     ) -> list[tuple[str, dict[str, float]]]:
    csv_path, parquet_path = _data(rows)
    actuals = _actuals(parquet_path, CACHE / f"actuals-{rows}.csv")
    name = f"acc{rows}"
    _deploy(env, name, packages["hgb"])
    job = f"bench-{name}"
    shutil.rmtree(home / "jobs" / job, ignore_errors=True)
    _run(["score", "--model", name, "--input", str(csv_path), "--output",
          str(CACHE / "out" / f"{job}.csv"), "--overwrite", "--quiet", "--job-id", job], env)
    upload = _run(["actuals", "upload", name, "--input", str(actuals),
                   "--association-id-column", "id", "--actual-column", "target",
                   "--upload-id", f"up-{rows}-{os.getpid()}"], env)
    join = _run(["accuracy", name, "--format", "json"], env)
    print(f"  {rows:>10,} rows: upload {upload['wall']:6.1f} s, accuracy {join['wall']:6.1f} s",
          flush=True)
    return [(f"actuals upload, {rows:,}", upload), (f"accuracy stage, {rows:,}", join)]


def month(rows: int, home: Path, env: dict[str, str]) -> list[tuple[str, dict[str, float]]]:
    """The ``acc<rows>`` deployment's prediction log respread over 30 days, then the
    accuracy stage by day over them."""
    name = f"acc{rows}"
    store = home / "monitoring" / f"deployment={name}" / "kind=predictions"
    files = sorted(store.rglob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    for f in files:
        f.unlink()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=30)
    offsets = np.arange(table.num_rows) % (30 * 24)
    hours = pa.array([start + timedelta(hours=int(h)) for h in range(30 * 24)],
                     pa.timestamp("us", tz="UTC")).take(pa.array(offsets))
    table = table.set_column(table.schema.get_field_index("hour"), "hour", hours)
    table = table.set_column(table.schema.get_field_index("ts_start"), "ts_start", hours)
    days = pc.strftime(hours, format="%Y-%m-%d")
    for day in sorted(set(days.to_pylist())):
        folder = store / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pc.equal(days, day)), folder / "job-month.parquet",
                       compression="zstd")
    m = _run(["accuracy", name, "--by", "day", "--since", "31d", "--format", "json"], env)
    print(f"  a month, {rows:,} rows: accuracy --by day {m['wall']:6.1f} s", flush=True)
    return [(f"accuracy --by day, a month of {rows:,}", m)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--skip-challenger", action="store_true")
    parser.add_argument("--skip-actuals", action="store_true")
    parser.add_argument("--skip-month", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    _, parquet_path = _data(args.rows)
    packages = build_packages(parquet_path)
    home = CACHE / "home-accuracy"
    shutil.rmtree(home, ignore_errors=True)  # every run starts from no deployment, no records
    env = {"BATCHPRED_HOME": str(home)}
    print(f"{os.cpu_count()} cores; {args.rows:,} rows (and {args.small:,})", flush=True)
    results: list[tuple[str, dict[str, float]]] = []
    if not args.skip_challenger:
        results += challenger_overhead(args.rows, packages, home, env)
    if not args.skip_actuals:
        for rows in (args.small, args.rows):
            results += actuals_and_join(rows, packages, home, env)
    if not args.skip_month:
        results += month(args.rows, home, env)
    report(results, args.rows)


def report(results: list[tuple[str, dict[str, float]]], rows: int) -> None:
    print(f"\n{'measurement':42s} {'wall s':>8s} {'peak MB':>8s}")
    for name, m in results:
        print(f"{name:42s} {m['wall']:8.1f} {m['peak'] / 1e6:8.0f}")
    found = dict(results)
    plain, duel = found.get("champion, log on"), found.get("champion + challenger")
    alone = found.get("challenger's package alone")
    if plain and duel and alone:
        cores = os.cpu_count() or 1
        added = duel["wall"] - plain["wall"]
        own = duel["challenger_s"] / cores
        print(f"\nchallenger: adds {added:.1f} s of wall time; its own scoring took "
              f"{duel['challenger_s']:.1f} s of worker time ({own:.1f} s over {cores} cores); "
              f"its package alone scores in {alone['wall']:.1f} s "
              f"(of which scoring {alone['score_s']:.1f} s of worker time)")
        print(f"challenger: of the job's own timings, publishing the records "
              f"{plain['publish_s']:.1f} -> {duel['publish_s']:.1f} s, staging the chunks "
              f"(a thread beside the scoring) {plain['stage_s']:.1f} -> {duel['stage_s']:.1f} s")
        print(f"challenger: costs no more than its own scoring time: "
              f"{'MET' if added <= own * 1.1 else 'NOT MET'} "
              f"({added:.1f} s <= {own:.1f} s, with 10% for noise)")
    names = [n for n, _ in results if n.startswith("actuals upload")]
    if len(names) == 2:
        small, big = found[names[0]], found[names[1]]
        print(f"actuals upload: peak {small['peak'] / 1e6:.0f} MB -> {big['peak'] / 1e6:.0f} MB "
              f"for {rows:,} rows ({big['peak'] / small['peak']:.2f}x)")
        joins = [n for n, _ in results if n.startswith("accuracy stage")]
        a, b = found[joins[0]], found[joins[1]]
        print(f"accuracy join: peak {a['peak'] / 1e6:.0f} MB -> {b['peak'] / 1e6:.0f} MB "
              f"({b['peak'] / a['peak']:.2f}x), wall {a['wall']:.1f} -> {b['wall']:.1f} s")


if __name__ == "__main__":
    main()
