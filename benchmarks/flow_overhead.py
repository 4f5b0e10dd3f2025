"""What Prefect and Dask cost: the batch-score flow against the engine alone.

    python benchmarks/flow_overhead.py [--skip-small] [--skip-large] [--skip-submit]

Three measurements, each printed as a table with its baseline from the same run:

1. small: the flow (``flows.score``) against ``batch.run_job`` on the same
   100k-row CSV, in one process whose temporary Prefect server is already up
   (median of 6 runs each, after a warm-up run);
2. large: the 5M-row benchmark input of ``throughput.py`` (logistic model),
   each as a fresh process: ``batchpred score`` (local processes), ``batchpred
   score --executor dask`` (a LocalCluster of 2 workers) and ``batchpred run
   job.yaml`` (the flow, with its own temporary Prefect server);
3. submit: the time from ``batchpred submit`` to the flow run starting on a
   running ``batchpred worker`` (5 submissions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import throughput  # noqa: E402  (the 5M-row data, packages and measure())


def _credit_package(root: Path, rows: int) -> tuple[Path, Path]:
    """A credit-risk package and ``rows`` rows to score, under ``root``."""
    import joblib
    import pyarrow.csv as pcsv

    from batch.cli.sample_data import TARGET, credit_table, train_model
    from batch.models.builder import PackageSpec, create_package

    root.mkdir(parents=True, exist_ok=True)
    train = credit_table(20_000, seed=1)
    pcsv.write_csv(train, root / "train.csv")
    joblib.dump(train_model(train), root / "model.joblib")
    package = create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk"))
    pcsv.write_csv(credit_table(rows).drop_columns([TARGET]), root / "score.csv")
    return package.path, root / "score.csv"


def small(home: Path) -> None:
    os.environ["BATCHPRED_HOME"] = str(home)
    import flows  # noqa: F401  (the embedded Prefect settings, before prefect loads)
    from batch.engine.run import run_job
    from batch.engine.spec import JobSpec
    from flows.api import prefect_api
    from flows.scoring import batch_score

    package, src = _credit_package(home / "data", 100_000)

    def spec(i: int, kind: str) -> JobSpec:
        return JobSpec(model=str(package), input=str(src), output=str(home / f"{kind}.csv"),
                       overwrite=True, job_id=f"{kind}-{i}", passthrough=("loan_id",))

    started = time.perf_counter()
    with prefect_api():
        server = time.perf_counter() - started
        direct, flow = [], []
        for i in range(7):
            t = time.perf_counter()
            run_job(spec(i, "direct"))
            direct.append(time.perf_counter() - t)
            t = time.perf_counter()
            batch_score(spec(i, "flow"))
            flow.append(time.perf_counter() - t)
    d, f = statistics.median(direct[1:]), statistics.median(flow[1:])
    print(f"\n100k rows, one process (temporary Prefect server up in {server:.1f} s, not "
          "counted):")
    print(f"  {'batch.run_job (baseline)':34s} {d:6.2f} s")
    print(f"  {'batch-score flow':34s} {f:6.2f} s   overhead {f - d:+.2f} s ({f / d:.1f}x)")


def large(home: Path) -> None:
    csv_path = throughput.CACHE / "data-5000000.csv"
    if not csv_path.exists():
        raise SystemExit("run benchmarks/throughput.py first (it generates the 5M-row input)")
    pkg = throughput.build_packages(throughput.CACHE / "data-5000000.parquet")["logistic"]
    out = throughput.CACHE / "out"
    out.mkdir(exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    job = home / "job.yaml"
    job.write_text(json.dumps({"model": str(pkg), "input": str(csv_path),
                               "output": str(out / "flow.csv"), "passthrough": ["id"],
                               "overwrite": True}))
    env = {"BATCHPRED_HOME": str(home)}
    runs = [
        ("batchpred score (baseline)", throughput.batchpred_cmd(pkg, csv_path, out / "l.csv")),
        ("batchpred score --executor dask", throughput.batchpred_cmd(
            pkg, csv_path, out / "d.csv", "--executor", "dask", "--workers", "2")),
        ("batchpred run job.yaml (flow)", [sys.executable, "-m", "flows.cli", "run", str(job)]),
    ]
    print("\n5M rows (logistic, 949 MB CSV), each a fresh process:")
    base = None
    for name, cmd in runs:
        m = throughput.measure(cmd, env)
        base = base or m["wall"]
        print(f"  {name:34s} {m['wall']:6.1f} s   {m['wall'] / base:4.2f}x   cores "
              f"{m['cpu'] / m['wall']:.2f}   peak RSS {m['peak'] / 1e6:,.0f} MB", flush=True)


def submit(home: Path) -> None:
    import yaml

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["BATCHPRED_HOME"] = str(home)
    package, src = _credit_package(home / "data", 10_000)  # creates the home
    job = home / "job.yaml"
    job.write_text(yaml.safe_dump({"model": str(package), "input": str(src),
                                   "output": str(home / "out.csv"), "overwrite": True,
                                   "workers": 0}))
    log_path = home / "worker.log"
    started = time.time()
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "flows.cli", "worker"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        while "serving submissions" not in log_path.read_text():
            if worker.poll() is not None:
                raise SystemExit(f"the worker stopped:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        ready = time.time() - started
        rows = [_one_submission(job, f"sub-{i}", env, home) for i in range(5)]
    finally:
        worker.terminate()
        worker.wait(60)
    print(f"\nsubmit -> run start on a running worker (ready after {ready:.1f} s):")
    print(f"  {'':4s}{'submit command s':>18s}{'submit -> start s':>19s}{'submit -> end s':>17s}")
    for i, (cmd, start, end) in enumerate(rows):
        print(f"  {i:<4d}{cmd:18.2f}{start:19.2f}{end:17.2f}")
    print(f"  median submit -> start: {statistics.median(r[1] for r in rows):.2f} s")


def _one_submission(job: Path, job_id: str, env: dict[str, str],
                    home: Path) -> tuple[float, float, float]:
    from flows.api import use_api
    from flows.runs import job_flow_runs

    api = json.loads((home / "prefect" / "worker.json").read_text())["api_url"]
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "flows.cli", "submit", str(job), "--job-id",
                           job_id], env=env, capture_output=True, text=True, check=False)
    command = time.time() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    with use_api(api):
        while True:
            runs = job_flow_runs(job_id)
            if runs and runs[0].state and runs[0].state.is_final():
                break
            time.sleep(0.2)
    run = runs[0]
    assert run.start_time is not None and run.end_time is not None
    return command, run.start_time.timestamp() - t0, run.end_time.timestamp() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-submit", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="batchpred-flow-bench-"))
    print(f"{os.cpu_count()} cores; homes under {root}")
    if not args.skip_large:
        large(root / "large")
    if not args.skip_small:
        small(root / "small")
    if not args.skip_submit:
        submit(root / "submit")


if __name__ == "__main__":
    main()
