"""Throughput of batchpred against a naive pandas loop and dask.dataframe.

    python benchmarks/throughput.py [--rows 5000000] [--models hgb,logistic]
                                    [--skip-dask] [--resume-check] [--scale-check 20000000]
                                    [--repeat N]

Generates (once, cached under benchmarks/.cache) a deterministic table: an id,
20 numeric columns with ~1% missing, 5 string categoricals; as CSV (~1 GB at
5M rows) and Parquet. Trains a HistGradientBoostingClassifier and a logistic
ColumnTransformer pipeline on 200k rows. Then runs each contender as a whole
process and measures wall time, rows/s, CPU cores used and the peak RSS of
the process tree, and prints a table with batchpred's ratios to the others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
TRAIN_ROWS = 200_000
SEED = 11


def generate(rows: int, path_csv: Path, path_parquet: Path) -> None:
    """Write the table in 500k-row slices, so generating 20M rows stays small."""
    rng = np.random.default_rng(SEED)
    levels = [[f"L{j}_{k}" for k in range(4 + 3 * j)] for j in range(5)]
    csv_writer = None
    pq_writer = None
    done = 0
    while done < rows:
        n = min(500_000, rows - done)
        cols: dict[str, pa.Array] = {"id": pa.array(np.arange(done, done + n))}
        for name in NUMERIC:
            values = np.round(rng.normal(0, 1, n), 4)
            cols[name] = pa.array(values, mask=rng.random(n) < 0.01)
        for j, name in enumerate(CATEGORICAL):
            picks = rng.integers(0, len(levels[j]), n)
            cols[name] = pa.array(np.array(levels[j], dtype=object)[picks])
        table = pa.table(cols)
        if csv_writer is None:
            csv_writer = pcsv.CSVWriter(str(path_csv), table.schema)
            pq_writer = pq.ParquetWriter(str(path_parquet), table.schema)
        csv_writer.write_table(table)
        pq_writer.write_table(table)
        done += n
    csv_writer.close()
    pq_writer.close()


def target_for(frame) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = frame[NUMERIC].fillna(0).to_numpy()
    z = x[:, :5].sum(axis=1) - x[:, 5] * x[:, 6] + (frame["c0"] == "L0_1").to_numpy() * 1.5
    return np.where(z + np.random.default_rng(SEED).normal(0, 1, len(frame)) > 0, "yes", "no")


def build_packages(data: Path) -> dict[str, Path]:
    """Train both models on the first 200k rows and package them."""
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from batch.models.builder import PackageSpec, create_package, training_table
    from batch.monitoring.baseline import build_baseline, write_baseline

    packages = {name: CACHE / f"pkg-{name}" for name in ("hgb", "logistic")}
    if all((p / "baseline.json").exists() for p in packages.values()):
        return packages
    frame = pq.ParquetFile(data).iter_batches(batch_size=TRAIN_ROWS).__next__().to_pandas()
    frame["target"] = target_for(frame)
    train = CACHE / "train.parquet"
    frame.to_parquet(train)
    hgb = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    hgb.fit(frame[NUMERIC], frame["target"])
    logistic = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ),
        LogisticRegression(max_iter=300),
    )
    logistic.fit(frame[NUMERIC + CATEGORICAL], frame["target"])
    for name, model in (("hgb", hgb), ("logistic", logistic)):
        shutil.rmtree(packages[name], ignore_errors=True)
        joblib.dump(model, CACHE / f"{name}.joblib")
        package = create_package(packages[name], PackageSpec(
            artifact=CACHE / f"{name}.joblib", training_data=str(train), target="target",
            positive_class="yes", name=name, association_id="id"))
        # as `batchpred package create` does: jobs count their chunks on it
        write_baseline(package, build_baseline(package, training_table(str(train))))
    return packages


NAIVE = """
import sys, joblib, pandas as pd, yaml
pkg, src, dst = sys.argv[1:4]
meta = yaml.safe_load(open(pkg + "/model.yaml"))
model = joblib.load(pkg + "/" + meta["artifact"]["path"])
features = [f["name"] for f in meta["features"]]
first = True
for chunk in pd.read_csv(src, chunksize=100_000):
    proba = model.predict_proba(chunk[features])
    out = pd.DataFrame({"id": chunk["id"], "no": proba[:, 0], "yes": proba[:, 1]})
    out.to_csv(dst, mode="w" if first else "a", header=first, index=False)
    first = False
"""

DASK = """
import sys, joblib, pandas as pd, yaml, dask.dataframe as dd
pkg, src, dst = sys.argv[1:4]
meta = yaml.safe_load(open(pkg + "/model.yaml"))
model = joblib.load(pkg + "/" + meta["artifact"]["path"])
features = [f["name"] for f in meta["features"]]
def predict(part):
    proba = model.predict_proba(part[features])
    return pd.DataFrame({"id": part["id"].to_numpy(), "no": proba[:, 0], "yes": proba[:, 1]})
frame = dd.read_csv(src, blocksize="64MB")
meta_out = pd.DataFrame({"id": pd.Series(dtype="int64"), "no": pd.Series(dtype="float64"),
                         "yes": pd.Series(dtype="float64")})
frame.map_partitions(predict, meta=meta_out).to_csv(dst, single_file=True, index=False)
"""


def measure(cmd: list[str], env: dict[str, str] | None = None,
            kill_when: callable | None = None) -> dict[str, float]:  # type: ignore[valid-type]
    """Run ``cmd``; wall time, CPU seconds of the tree, peak RSS of the tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    peak = 0
    seen: dict[int, float] = {}  # CPU seconds of each process of the tree, last sampled
    killed_at = None
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
            for p in tree:
                times = p.cpu_times()
                seen[p.pid] = times.user + times.system
        except psutil.Error:
            pass
        if kill_when is not None and killed_at is None and kill_when():
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = time.perf_counter()  # the job's time ends here, not when we next look
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)  # returns as soon as it ends: its wall time is exact
    wall = (killed_at or time.perf_counter()) - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # a killed tree's workers are reaped by init, not here: count what was sampled of them
    cpu = max(cpu, sum(seen.values()))
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, -9) and kill_when is None:
        raise RuntimeError(f"{cmd[:4]} failed: {err[-2000:]}")
    return {"wall": wall, "cpu": cpu, "peak": peak, "rc": proc.returncode}


def best_of(n: int, cmd: list[str], env: dict[str, str], home: Path) -> dict[str, float]:
    """The fastest of ``n`` runs of ``cmd`` (each a fresh job)."""
    runs = []
    for _ in range(max(1, n)):
        shutil.rmtree(home / "jobs", ignore_errors=True)
        runs.append(measure(cmd, env))
    return min(runs, key=lambda m: m["wall"])


def batchpred_cmd(pkg: Path, src: Path, dst: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "score", "--model", str(pkg), "--input",
            str(src), "--output", str(dst), "--passthrough", "id", "--quiet", "--overwrite",
            *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--models", default="hgb,logistic")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--resume-check", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each contender N times and keep the fastest (less noise)")
    parser.add_argument("--scale-check", type=int, default=0, metavar="ROWS",
                        help="also score ROWS rows (e.g. 20000000) with batchpred and compare "
                        "its peak RSS with the --rows run")
    parser.add_argument("--extra", default="", help="extra batchpred score options")
    args = parser.parse_args()

    CACHE.mkdir(exist_ok=True)
    csv_path = CACHE / f"data-{args.rows}.csv"
    parquet_path = CACHE / f"data-{args.rows}.parquet"
    if not csv_path.exists():
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(args.rows, csv_path, parquet_path)
    packages = build_packages(parquet_path)
    home = CACHE / "home"
    env = {"BATCHPRED_HOME": str(home)}
    out = CACHE / "out"
    out.mkdir(exist_ok=True)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"input: {csv_path.name} {size_mb:,.0f} MB, {args.rows:,} rows, {os.cpu_count()} cores")
    rows = []
    extra = args.extra.split()
    for model in args.models.split(","):
        pkg = packages[model]
        contenders = [("batchpred csv", batchpred_cmd(pkg, csv_path, out / "bp.csv", *extra)),
                      ("batchpred parquet",
                       batchpred_cmd(pkg, parquet_path, out / "bp.parquet", *extra))]
        if not args.skip_naive:
            contenders.append(("naive pandas loop",
                               [sys.executable, "-c", NAIVE, str(pkg), str(csv_path),
                                str(out / "naive.csv")]))
        if not args.skip_dask:
            contenders.append(("dask.dataframe",
                               [sys.executable, "-c", DASK, str(pkg), str(csv_path),
                                str(out / "dask.csv")]))
        for name, cmd in contenders:
            m = best_of(args.repeat, cmd, env, home)
            rows.append((model, name, m))
            print(f"  {model:9s} {name:18s} {m['wall']:7.1f} s", flush=True)
        if args.resume_check:
            rows.append((model, "batchpred killed+resumed",
                         resume_run(pkg, csv_path, out / "bp-resumed.csv", home=home, env=env,
                                    extra=extra, repeat=args.repeat)))
    report(rows, args.rows)
    if args.scale_check:
        scale_check(args.scale_check, args.rows, rows, packages=packages, home=home, env=env,
                    extra=extra)


def scale_check(big: int, n: int, rows: list[tuple[str, str, dict[str, float]]], *,
                packages: dict[str, Path], home: Path, env: dict[str, str],
                extra: list[str]) -> None:
    """Peak RSS of batchpred on ``big`` rows against the ``n``-row run: memory stays flat."""
    big_csv = CACHE / f"data-{big}.csv"
    if not big_csv.exists():
        print(f"generating {big:,} rows ...", flush=True)
        generate(big, big_csv, CACHE / f"data-{big}.parquet")
    print(f"\npeak RSS at {big:,} rows ({big_csv.stat().st_size / 1e9:.1f} GB CSV) vs {n:,}:")
    for model, name, m in rows:
        if name != "batchpred csv":
            continue
        shutil.rmtree(home / "jobs", ignore_errors=True)
        b = measure(batchpred_cmd(packages[model], big_csv, CACHE / "out" / "bp-big.csv",
                                  *extra), env)
        print(f"{model:9s} {n:>11,} rows {m['peak'] / 1e6:6,.0f} MB   {big:>11,} rows "
              f"{b['peak'] / 1e6:6,.0f} MB ({b['peak'] / m['peak'] - 1:+.1%})   "
              f"{big / b['wall']:,.0f} rows/s", flush=True)


def resume_run(pkg: Path, src: Path, dst: Path, *, home: Path, env: dict[str, str],
               extra: list[str], repeat: int = 1) -> dict[str, float]:
    """Kill a job half-way (by committed chunks), resume it; total cost of both runs.

    Each of ``repeat`` rounds runs a clean job, then the killed and the resumed one,
    so both see the same machine; the fastest clean run and the fastest
    killed+resumed total are kept (as ``--repeat`` does for the other contenders).
    """
    best: dict[str, float] | None = None
    cleans = []
    for _ in range(max(1, repeat)):
        shutil.rmtree(home / "jobs", ignore_errors=True)
        clean = measure(batchpred_cmd(pkg, src, dst, "--job-id", "clean", *extra), env)
        cleans.append(clean["wall"])
        chunks = (home / "jobs" / "clean" / "manifest.jsonl").read_text().count("\n")
        manifest = home / "jobs" / "half" / "manifest.jsonl"

        def half_done(manifest: Path = manifest, chunks: int = chunks) -> bool:
            return manifest.exists() and manifest.read_bytes().count(b"\n") >= chunks // 2

        first = measure(batchpred_cmd(pkg, src, dst, "--job-id", "half", *extra), env,
                        half_done)
        second = measure(batchpred_cmd(pkg, src, dst, "--job-id", "half", "--resume", *extra),
                         env)
        total = {k: first[k] + second[k] for k in ("wall", "cpu")}
        total["peak"] = max(first["peak"], second["peak"])
        print(f"    round: clean {clean['wall']:.1f} s, killed {first['wall']:.1f} s + resumed "
              f"{second['wall']:.1f} s ({total['wall'] / clean['wall'] - 1:+.1%})", flush=True)
        if best is None or total["wall"] < best["wall"]:
            best = total
    assert best is not None
    best["clean_wall"] = min(cleans)
    return best


def report(rows: list[tuple[str, str, dict[str, float]]], n: int) -> None:
    print()
    print(f"{'model':9s} {'contender':26s} {'wall s':>8s} {'rows/s':>10s} {'cores':>6s} "
          f"{'peak RSS MB':>12s}")
    for model, name, m in rows:
        print(f"{model:9s} {name:26s} {m['wall']:8.1f} {n / m['wall']:10,.0f} "
              f"{m['cpu'] / m['wall']:6.2f} {m['peak'] / 1e6:12,.0f}")
    print()
    by = {(model, name): m for model, name, m in rows}
    for model in sorted({r[0] for r in rows}):
        bp = by.get((model, "batchpred csv"))
        for other in ("naive pandas loop", "dask.dataframe"):
            if bp and (model, other) in by:
                print(f"{model}: batchpred csv is {by[(model, other)]['wall'] / bp['wall']:.2f}x "
                      f"{other}")
        resumed = by.get((model, "batchpred killed+resumed"))
        if resumed:
            extra = resumed["wall"] / resumed["clean_wall"] - 1
            print(f"{model}: killed half-way + resumed costs {extra:+.1%} over a clean run "
                  f"({resumed['wall']:.1f} s vs {resumed['clean_wall']:.1f} s)")
    print(json.dumps({f"{m}/{c}": {k: round(v, 2) for k, v in d.items()} for m, c, d in rows}))


if __name__ == "__main__":
    main()
