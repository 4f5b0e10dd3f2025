"""Snowflake connector round trip on fakesnow's server, against the plain connector.

    python benchmarks/snowflake_roundtrip.py [--rows 1000000] [--chunk-rows 100000]

Starts fakesnow's server (the real snowflake-connector-python talks HTTP to
it), writes ``--rows`` generated rows through ``SnowflakeOutput`` (chunks of
``--chunk-rows``: Parquet -> PUT -> COPY INTO the staging table, then one
commit) and reads them back through ``SnowflakeIntake`` (streamed, re-chunked).
Baselines in the same run: one Parquet file PUT + COPY INTO a table directly,
and one ``fetch_arrow_all()``, both over a plain connector connection. Prints
rows/s per direction and batchpred's share of the baseline's speed.

fakesnow runs on DuckDB in this process, so the numbers measure the
connector's overhead and the shape of the work, not Snowflake's speed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakesnow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector

from connectors import IntakeRequest, OutputRequest, open_intake, open_output

DATABASE, SCHEMA = "BENCH", "ROUNDTRIP"


def generate(rows: int, seed: int = 7) -> pa.Table:
    """id, a score, a label, a flag and a timestamp: a typical prediction output."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "is_default_yes_PREDICTION": pa.array(rng.random(rows)),
        "label": pa.array(np.array(["no", "yes"], dtype=object)[rng.integers(0, 2, rows)]),
        "flag": pa.array(rng.random(rows) < 0.5),
        "scored_at": pa.array(start + rng.integers(0, 86_400_000_000, rows)),
    })


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = fn()
    return rows, time.perf_counter() - started


def write_batchpred(table: pa.Table, uri: str, options: dict[str, str], chunk: int) -> int:
    out = open_output(OutputRequest(uri, options={**options, "mode": "create"},
                                    job_id="bench-write"))
    out.start(table.schema)
    for i, batch in enumerate(table.to_batches(max_chunksize=chunk)):
        out.write(i, batch)
    out.commit()
    return table.num_rows


def read_batchpred(uri: str, options: dict[str, str], chunk: int) -> int:
    intake = open_intake(IntakeRequest(uri, chunk_rows=chunk, options=options))
    try:
        return sum(b.num_rows for b in intake.batches())
    finally:
        intake.close()


def write_baseline(conn: Any, table: pa.Table, workdir: Path) -> int:
    """One Parquet file, PUT to the table's stage, one COPY INTO: the bare bulk path."""
    cur = conn.cursor()
    cur.execute('CREATE OR REPLACE TABLE BASELINE (ID NUMBER(38,0), P FLOAT, LABEL VARCHAR, '
                'FLAG BOOLEAN, SCORED_AT TIMESTAMP_NTZ)')
    path = workdir / "all.parquet"
    pq.write_table(table.rename_columns(["ID", "P", "LABEL", "FLAG", "SCORED_AT"]), path)
    cur.execute(f"PUT 'file://{path}' @%BASELINE AUTO_COMPRESS=FALSE OVERWRITE=TRUE")
    cur.execute("COPY INTO BASELINE FROM @%BASELINE/all.parquet FILE_FORMAT=(TYPE=PARQUET) "
                "MATCH_BY_COLUMN_NAME=CASE_SENSITIVE PURGE=TRUE")
    return int(cur.execute("SELECT COUNT(*) FROM BASELINE").fetchone()[0])


def read_baseline(conn: Any) -> int:
    return conn.cursor().execute("SELECT * FROM BASELINE").fetch_arrow_all().num_rows


def report(results: list[tuple[str, str, int, float]]) -> None:
    print(f"{'direction':<10} {'path':<34} {'rows':>10} {'seconds':>8} {'rows/s':>12} "
          f"{'vs base':>8}")
    base = {d: r / s for d, p, r, s in results if p.startswith("baseline")}
    for direction, path, rows, seconds in results:
        rate = rows / seconds
        print(f"{direction:<10} {path:<34} {rows:>10,} {seconds:>8.2f} {rate:>12,.0f} "
              f"{rate / base[direction]:>7.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    table = generate(args.rows)
    os.environ.setdefault("SNOWFLAKE_PASSWORD", "snow")  # fakesnow accepts any password
    with fakesnow.server() as kwargs, tempfile.TemporaryDirectory() as tmp:
        options = {"host": kwargs["host"], "port": str(kwargs["port"]), "protocol": "http",
                   "user": "fake"}
        uri = f"snowflake://fakesnow/{DATABASE}/{SCHEMA}/PREDICTIONS"
        conn = snowflake.connector.connect(**kwargs, database=DATABASE, schema=SCHEMA)
        results = []
        for direction, path, fn in [
            ("write", "baseline: one PUT + COPY INTO", lambda: write_baseline(conn, table,
                                                                              Path(tmp))),
            ("write", f"SnowflakeOutput ({args.chunk_rows:,}/chunk)",
             lambda: write_batchpred(table, uri, options, args.chunk_rows)),
            ("read", "baseline: fetch_arrow_all()", lambda: read_baseline(conn)),
            ("read", f"SnowflakeIntake ({args.chunk_rows:,}/chunk)",
             lambda: read_batchpred(uri, options, args.chunk_rows)),
        ]:
            rows, seconds = timed(fn)
            assert rows == args.rows, f"{path}: {rows} rows, expected {args.rows}"
            results.append((direction, path, rows, seconds))
        conn.close()
    report(results)


if __name__ == "__main__":
    main()
