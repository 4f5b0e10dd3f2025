"""The drift stage from records against Evidently's data-drift preset on the same data.

    python benchmarks/drift.py [--rows 1000000] [--repeat 3] [--skip-evidently]

Generates (once, cached under benchmarks/.cache/drift/<rows>/) a deterministic
reference table and a current table of ``--rows`` rows each: 20 numeric columns
with ~1% missing and 5 string categoricals (as ``throughput.py``), where the
current table drifts on six columns (see ``DRIFTS``). Trains a logistic
pipeline on the first 200k reference rows, packages it with a baseline built
from *every* reference row (the rows Evidently gets as its reference), and
scores the current table once with ``batchpred score`` (monitoring on) in a
fresh home: its records are what the drift stage reads.

Then measures, as whole processes (wall time and peak RSS of the process tree,
best of ``--repeat``): ``batchpred drift DEPLOYMENT --format json`` over a window
covering the job, and Evidently's ``DataDriftPreset`` on the same reference and
current rows (25 columns, loaded from the Parquet files as pandas; its report
rendered as JSON, so no work is left lazy). Evidently runs in its own venv,
``benchmarks/.cache/evidently-venv``, made and filled with pip on first use
(the newest release, else with ``pandas<3``, else ``evidently==0.4.40``). Both
results are checked: each drifted column must be reported drifted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (  # noqa: E402
    CACHE,
    CATEGORICAL,
    NUMERIC,
    SEED,
    TRAIN_ROWS,
    measure,
    target_for,
)

ROOT = CACHE / "drift"
EVIDENTLY_VENV = CACHE / "evidently-venv"
NAME = "drift-bench"  # the package's name: the deployment id of the job's records
LEVELS = [[f"L{j}_{k}" for k in range(4 + 3 * j)] for j in range(5)]
# what changes in the current table (every other column is drawn as in the reference)
DRIFTS = {
    "x00": "mean +0.5 std",
    "x01": "mean -0.4 std",
    "x02": "mean +0.3 std",
    "x03": "20% of rows x3 (tails)",
    "x04": "missing 1% -> 20%",
    "c1": "new level on 15% of rows",
}
# evidently releases to try, in order: (pip requirements, what the attempt is)
EVIDENTLY_ATTEMPTS = [
    (["evidently"], "newest"),
    (["evidently", "pandas<3"], "newest, pandas<3"),
    (["evidently==0.4.40", "pandas<3"], "0.4.40, pandas<3"),
]


def generate(rows: int, path: Path, *, drifted: bool) -> None:
    """Write one table in 500k-row slices (reference: seed SEED, current: SEED + 1)."""
    rng = np.random.default_rng(SEED + int(drifted))
    tmp = path.with_name(f"_{path.name}")
    writer = None
    done = 0
    while done < rows:
        n = min(500_000, rows - done)
        cols: dict[str, pa.Array] = {"id": pa.array(np.arange(done, done + n))}
        for name in NUMERIC:
            values = rng.normal(0, 1, n)
            missing = rng.random(n) < 0.01
            if drifted:
                if name == "x00":
                    values += 0.5
                elif name == "x01":
                    values -= 0.4
                elif name == "x02":
                    values += 0.3
                elif name == "x03":
                    values = np.where(rng.random(n) < 0.2, values * 3, values)
                elif name == "x04":
                    missing = rng.random(n) < 0.20
            cols[name] = pa.array(np.round(values, 4), mask=missing)
        for j, name in enumerate(CATEGORICAL):
            labels = np.array(LEVELS[j], dtype=object)[rng.integers(0, len(LEVELS[j]), n)]
            if drifted and name == "c1":
                labels = np.where(rng.random(n) < 0.15, "L1_new", labels)
            cols[name] = pa.array(labels, type=pa.string())
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(str(tmp), table.schema)
        writer.write_table(table)
        done += n
    assert writer is not None
    writer.close()
    tmp.rename(path)


def build_package(reference: Path, root: Path) -> Path:
    """A logistic pipeline on the first 200k reference rows; its baseline on all of them."""
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from batch.models.builder import PackageSpec, create_package
    from batch.monitoring.baseline import build_baseline, write_baseline

    pkg = root / "pkg"
    if (pkg / "baseline.json").exists():
        return pkg
    table = pq.read_table(reference)
    frame = table.slice(0, TRAIN_ROWS).to_pandas()
    frame["target"] = target_for(frame)
    train = root / "train.parquet"
    frame.to_parquet(train)
    model = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ),
        LogisticRegression(max_iter=300),
    )
    model.fit(frame[NUMERIC + CATEGORICAL], frame["target"])
    joblib.dump(model, root / "logistic.joblib")
    shutil.rmtree(pkg, ignore_errors=True)
    package = create_package(pkg, PackageSpec(
        artifact=root / "logistic.joblib", training_data=str(train), target="target",
        positive_class="yes", name=NAME, association_id="id"))
    # the baseline on every reference row (the permutation importance needs the target)
    full = table.append_column("target", pa.array(target_for(table.to_pandas())))
    print(f"building the baseline on {full.num_rows:,} reference rows ...", flush=True)
    write_baseline(package, build_baseline(package, full))
    return pkg


def score_once(pkg: Path, current: Path, root: Path) -> dict[str, str]:
    """Score the current table once (monitoring on) in a fresh home; when it ran."""
    done = root / "job.json"
    if done.exists():
        return json.loads(done.read_text())  # type: ignore[no-any-return]
    home = root / "home"
    shutil.rmtree(home, ignore_errors=True)
    started = datetime.now(UTC)
    print("scoring the current table (monitoring on) ...", flush=True)
    m = measure([sys.executable, "-m", "flows.cli", "score", "--model", str(pkg), "--input",
                 str(current), "--output", str(root / "out.parquet"), "--overwrite", "--quiet",
                 "--job-id", "drift-job"], {"BATCHPRED_HOME": str(home)})
    stats = sorted((home / "monitoring" / f"deployment={NAME}" / "kind=stats").rglob("*.parquet"))
    if not stats:
        raise RuntimeError(f"the job published no stats records under {home / 'monitoring'}")
    job = {"started": started.isoformat(), "home": str(home), "score_s": f"{m['wall']:.1f}",
           "stats_files": str(len(stats))}
    done.write_text(json.dumps(job))
    return job


def drift_cmd(since: datetime) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "drift", NAME, "--since",
            since.strftime("%Y-%m-%dT%H:%M:%S"), "--format", "json"]


def check_drift(cmd: list[str], env: dict[str, str], rows: int) -> dict[str, float]:
    """Run the stage once more for its document: every drifted column drifted, no other."""
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    doc = json.loads(done.stdout)
    assert doc["rows"] == rows, f"the window has {doc['rows']} rows, not {rows}"
    drifted = {f["name"] for f in doc["features"] if f["drifted"]}
    assert drifted == set(DRIFTS), f"batchpred drifted {sorted(drifted)}, not {sorted(DRIFTS)}"
    print(f"batchpred: {doc['rows']:,} rows, status {doc['status']['colour']}; drifted:")
    for f in doc["features"]:
        if f["name"] in DRIFTS:
            tail = (f.get("tail") or {}).get("wasserstein_std")
            extra = f", tail {tail:.3f} std" if tail is not None else ""
            print(f"  {f['name']:4s} PSI {f['psi']:.4f}{extra}  ({DRIFTS[f['name']]})")
    top = max((f["psi"] for f in doc["features"] if f["name"] not in DRIFTS), default=0.0)
    print(f"  largest PSI of the other {len(doc['features']) - len(DRIFTS)} features: {top:.5f}")
    return {f["name"]: f["psi"] for f in doc["features"]}


# -- Evidently -----------------------------------------------------------------------------

CHECK_IMPORT = """
import importlib.util, evidently
if importlib.util.find_spec("evidently.presets"):
    from evidently import Report
    from evidently.presets import DataDriftPreset
else:
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
print(evidently.__version__)
"""

EVIDENTLY = """
import importlib.util, json, sys, time
started = time.perf_counter()
import pandas as pd
ref_path, cur_path, out_path = sys.argv[1:4]
numeric, categorical = json.loads(sys.argv[4]), json.loads(sys.argv[5])
ref = pd.read_parquet(ref_path, columns=numeric + categorical)
cur = pd.read_parquet(cur_path, columns=numeric + categorical)
loaded = time.perf_counter()
import evidently
scores, drifted = {}, []
if importlib.util.find_spec("evidently.presets"):  # 0.7 and later
    api = "evidently.presets"
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition))
    ran = time.perf_counter()
    text = snapshot.json()
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = metric["value"]
            if metric["value"] >= config["threshold"]:
                drifted.append(config["column"])
else:  # 0.4 to 0.6
    api = "evidently.metric_preset"
    from evidently import ColumnMapping
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur, column_mapping=ColumnMapping(
        numerical_features=numeric, categorical_features=categorical))
    ran = time.perf_counter()
    text = report.json()
    for metric in report.as_dict()["metrics"]:
        for name, col in metric.get("result", {}).get("drift_by_columns", {}).items():
            scores[name] = col["drift_score"]
            if col["drift_detected"]:
                drifted.append(name)
done = time.perf_counter()
json.dump({"version": evidently.__version__, "api": api, "load_s": loaded - started,
           "run_s": ran - loaded, "render_s": done - ran, "json_chars": len(text),
           "scores": scores, "drifted": sorted(drifted)}, open(out_path, "w"))
"""


def evidently_python() -> tuple[Path | None, str]:
    """The venv's python with an importable Evidently (installed on first use), or why not."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists():
        ok = subprocess.run([str(python), "-c", CHECK_IMPORT], capture_output=True, text=True)
        if ok.returncode == 0:
            return python, ok.stdout.strip()
    else:
        made = subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"python -m venv failed: {_last_line(made.stderr)}"
    reason = "no attempt"
    for requirements, what in EVIDENTLY_ATTEMPTS:
        print(f"installing evidently ({what}) into {EVIDENTLY_VENV} ...", flush=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            reason = f"pip install {' '.join(requirements)}: {_last_line(pip.stderr)}"
            continue
        ok = subprocess.run([str(python), "-c", CHECK_IMPORT], capture_output=True, text=True)
        if ok.returncode == 0:
            return python, ok.stdout.strip()
        reason = f"import after pip install {' '.join(requirements)}: {_last_line(ok.stderr)}"
        print(f"  {reason}", flush=True)
    return None, reason


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines()
             if line.strip() and "is ignored: it is neither" not in line]
    return lines[-1].strip()[:300] if lines else "(no output)"


def best(n: int, cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    runs = [measure(cmd, env) for _ in range(max(1, n))]
    return min(runs, key=lambda m: m["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows of the reference table and of the current table")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="run each contender N times and keep the fastest")
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()

    root = ROOT / str(args.rows)
    root.mkdir(parents=True, exist_ok=True)
    reference, current = root / "reference.parquet", root / "current.parquet"
    for path, drifted in ((reference, False), (current, True)):
        if not path.exists():
            print(f"generating {path.name}: {args.rows:,} rows ...", flush=True)
            generate(args.rows, path, drifted=drifted)
    pkg = build_package(reference, root)
    job = score_once(pkg, current, root)
    env = {"BATCHPRED_HOME": job["home"]}
    since = datetime.fromisoformat(job["started"]) - timedelta(hours=1)
    cmd = drift_cmd(since)
    print(f"{args.rows:,} + {args.rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} columns, "
          f"{os.cpu_count()} cores, best of {args.repeat}; records of one job "
          f"({job['stats_files']} stats file(s), scored in {job['score_s']} s)", flush=True)
    check_drift(cmd, env, args.rows)

    results: dict[str, dict[str, float]] = {}
    results["batchpred drift"] = best(args.repeat, cmd, env)
    print(f"  batchpred drift {results['batchpred drift']['wall']:7.2f} s", flush=True)
    evidently_note = "skipped (--skip-evidently)"
    if not args.skip_evidently:
        python, version = evidently_python()
        if python is None:
            evidently_note = f"not installed ({version})"
            print(f"evidently: {evidently_note}", flush=True)
        else:
            out = root / "evidently.json"
            ev_cmd = [str(python), "-c", EVIDENTLY, str(reference), str(current), str(out),
                      json.dumps(NUMERIC), json.dumps(CATEGORICAL)]
            name = f"evidently {version}"
            runs = []
            for _ in range(max(1, args.repeat)):
                runs.append(measure(ev_cmd))
                print(f"  {name} {runs[-1]['wall']:7.2f} s", flush=True)
            results[name] = min(runs, key=lambda m: m["wall"])
            evidently_note = check_evidently(out)
    report(results, evidently_note)


def check_evidently(out: Path) -> str:
    found = json.loads(out.read_text())
    drifted = set(found["drifted"])
    missed = sorted(set(DRIFTS) - drifted)
    extra = sorted(drifted - set(DRIFTS))
    print(f"evidently {found['version']} ({found['api']}), its last run: load "
          f"{found['load_s']:.1f} s, "
          f"preset {found['run_s']:.1f} s, JSON {found['render_s']:.1f} s; drifted:")
    for name in DRIFTS:
        print(f"  {name:4s} score {found['scores'].get(name, float('nan')):.4f}"
              f"{'' if name in drifted else '  (not detected)'}")
    return (f"drifted {len(drifted)} of {len(found['scores'])} columns"
            + (f"; missed {missed}" if missed else "") + (f"; also {extra}" if extra else ""))


def report(results: dict[str, dict[str, float]], evidently_note: str) -> None:
    print()
    print(f"{'contender':28s} {'wall s':>8s} {'cores':>6s} {'peak RSS MB':>12s}")
    for name, m in results.items():
        print(f"{name:28s} {m['wall']:8.2f} {m['cpu'] / m['wall']:6.2f} {m['peak'] / 1e6:12,.0f}")
    print()
    bp = results["batchpred drift"]
    others = [(name, m) for name, m in results.items() if name != "batchpred drift"]
    for name, m in others:
        speed, memory = m["wall"] / bp["wall"], m["peak"] / bp["peak"]
        print(f"batchpred drift is {speed:.1f}x faster and uses {memory:.1f}x less memory than "
              f"{name.split()[0].capitalize()} ({evidently_note})"
              f"{'' if speed >= 20 else ' -- under the 20x aim'}")
    if not others:
        print(f"evidently: {evidently_note}; batchpred's figures alone")
    print(json.dumps({"evidently": evidently_note, **{
        name: {"wall_s": round(m["wall"], 3), "cpu_s": round(m["cpu"], 2),
               "peak_rss_mb": round(m["peak"] / 1e6, 1)} for name, m in results.items()}}))


if __name__ == "__main__":
    main()
