"""What monitoring costs a scoring job: the engine benchmark with and without it.

    python benchmarks/monitoring_overhead.py [--rows 5000000] [--models hgb,logistic]
                                             [--formats csv,parquet] [--repeat 3]

Uses the table and the two packages of ``throughput.py`` (built once under
benchmarks/.cache, each with its baseline). Each round runs ``batchpred score``
with ``--no-monitoring`` and then with monitoring on, back to back, so both see
the same machine; the fastest of each is kept. Prints wall times, the overhead
of monitoring, how many chunks were counted, and the workers' time counting
(from the job report: its share of their time on the chunks, and per value of
the 25 features and the prediction).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import CACHE, batchpred_cmd, build_packages, generate, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--models", default="hgb,logistic")
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--repeat", type=int, default=3, metavar="N")
    args = parser.parse_args()

    CACHE.mkdir(exist_ok=True)
    data = {"csv": CACHE / f"data-{args.rows}.csv", "parquet": CACHE / f"data-{args.rows}.parquet"}
    if not data["csv"].exists():
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(args.rows, data["csv"], data["parquet"])
    packages = build_packages(data["parquet"])
    home = CACHE / "home"
    env = {"BATCHPRED_HOME": str(home)}
    out = CACHE / "out"
    out.mkdir(exist_ok=True)
    print(f"{args.rows:,} rows, {os.cpu_count()} cores, best of {args.repeat} rounds")
    rows = []
    for model in args.models.split(","):
        for fmt in args.formats.split(","):
            best = {"off": float("inf"), "on": float("inf")}
            counted = 0
            shares: list[tuple[float, float]] = []
            for _ in range(max(1, args.repeat)):
                for mode, flag in (("off", "--no-monitoring"), ("on", "--monitoring")):
                    shutil.rmtree(home / "jobs", ignore_errors=True)
                    cmd = batchpred_cmd(packages[model], data[fmt], out / f"mon.{fmt}",
                                        "--job-id", mode, flag)
                    best[mode] = min(best[mode], measure(cmd, env)["wall"])
                    if mode == "on":
                        counted = _counted(home / "jobs" / "on" / "manifest.jsonl")
                        shares.append(_count_share(home / "jobs" / "on" / "report.json"))
            overhead = best["on"] / best["off"] - 1
            count_s, worker_s = min(shares)
            rows.append({"model": model, "format": fmt, "off_s": round(best["off"], 2),
                         "on_s": round(best["on"], 2), "overhead": round(overhead, 4),
                         "chunks_counted": counted, "count_s": round(count_s, 2),
                         "count_share_of_worker_time": round(count_s / worker_s, 4),
                         "count_ns_per_value": round(count_s / (args.rows * 26) * 1e9, 1)})
            print(f"  {model:9s} {fmt:8s} off {best['off']:6.2f} s  on {best['on']:6.2f} s  "
                  f"{overhead:+.1%}", flush=True)
    print()
    print(f"{'model':9s} {'format':8s} {'off s':>7s} {'on s':>7s} {'overhead':>9s} "
          f"{'chunks':>7s} {'counting s':>11s} {'of worker time':>15s} {'ns/value':>9s}")
    for r in rows:
        print(f"{r['model']:9s} {r['format']:8s} {r['off_s']:7.2f} {r['on_s']:7.2f} "
              f"{r['overhead']:+9.1%} {r['chunks_counted']:7d} {r['count_s']:11.2f} "
              f"{r['count_share_of_worker_time']:15.1%} {r['count_ns_per_value']:9.1f}")
    print(json.dumps(rows))


def _count_share(report: Path) -> tuple[float, float]:
    """(Seconds the workers spent counting, seconds they spent on the chunks in all)."""
    timings = json.loads(report.read_text())["timings"]
    return timings.get("count", 0.0), timings["score"]


def _counted(manifest: Path) -> int:
    """Chunks of the job whose manifest entry carries stats (so monitoring ran)."""
    lines = manifest.read_text().splitlines() if manifest.exists() else []
    return sum(1 for line in lines if json.loads(line).get("stats"))


if __name__ == "__main__":
    main()
