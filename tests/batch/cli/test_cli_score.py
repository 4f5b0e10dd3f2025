"""``batchpred score`` end to end on real files: the first test runs the installed script
in a subprocess, the others (formats, bad values, no rows) the command in this process."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

FEATURES = ["age", "income", "loan_amount", "term_months", "credit_score", "employment_years",
            "purpose", "home_ownership", "state"]


def frame(table: pa.Table) -> pd.DataFrame:
    """The rows as pandas.read_csv would give them (missing text is NaN)."""
    buf = pa.BufferOutputStream()
    pcsv.write_csv(table.select(FEATURES), buf)
    return pd.read_csv(pa.BufferReader(buf.getvalue()))


def reference(credit, table: pa.Table) -> np.ndarray:  # type: ignore[no-untyped-def]
    return credit.estimator.predict_proba(frame(table))


def test_score_csv_to_csv_matches_the_model(credit, batchpred, tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    res = batchpred("score", "--model", str(credit.package), "--input", str(credit.csv),
              "--output", str(out), "--passthrough", "loan_id", "--chunk-rows", "600",
              "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("scored 2,500 rows (0 failed) in ")
    assert "rows/s -> " in res.stdout
    scored = pcsv.read_csv(out)
    assert scored.column_names == [
        "loan_id", "is_default_no_PREDICTION", "is_default_yes_PREDICTION",
        "is_default_PREDICTION", "THRESHOLD", "POSITIVE_CLASS", "prediction_status",
    ]
    ref = reference(credit, credit.table)
    got = np.column_stack([scored.column("is_default_no_PREDICTION").to_numpy(),
                           scored.column("is_default_yes_PREDICTION").to_numpy()])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    expected_labels = credit.estimator.predict(frame(credit.table))
    assert scored.column("is_default_PREDICTION").to_pylist() == list(expected_labels)
    assert scored.column("loan_id").to_pylist() == credit.table.column("loan_id").to_pylist()
    assert set(scored.column("prediction_status").to_pylist()) == {"OK"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "scored.csv"] or sorted(
        p.name for p in tmp_path.iterdir()) == ["scored.csv"]


@pytest.mark.parametrize(("src", "dst"), [("parquet", "jsonl"), ("jsonl.gz", "parquet"),
                                          ("csv.gz", "csv.gz")])
def test_formats_and_gzip(credit, batchpred_here, tmp_path: Path, src: str, dst: str) -> None:
    table = credit.table.slice(0, 700)
    source = tmp_path / f"in.{src}"
    if src == "parquet":
        pq.write_table(table, source)
    elif src == "jsonl.gz":
        source.write_bytes(gzip.compress(
            "\n".join(__import__("json").dumps(r) for r in table.to_pylist()).encode()))
    else:
        buf = pa.BufferOutputStream()
        pcsv.write_csv(table, buf)
        source.write_bytes(gzip.compress(buf.getvalue().to_pybytes()))
    out = tmp_path / f"out.{dst}"
    res = batchpred_here("score", "--model", str(credit.package), "--input", str(source),
                         "--output", str(out), "--passthrough-all", "--workers", "0")
    assert res.returncode == 0, res.stderr
    if dst == "parquet":
        scored = pq.read_table(out)
    elif dst == "jsonl":
        scored = pa.Table.from_pylist([__import__("json").loads(x) for x in out.read_text()
                                       .splitlines()])
    else:
        scored = pcsv.read_csv(pa.BufferReader(gzip.decompress(out.read_bytes())))
    assert scored.column_names[: len(table.column_names)] == table.column_names
    np.testing.assert_allclose(scored.column("is_default_yes_PREDICTION").to_numpy(),
                               reference(credit, table)[:, 1], rtol=0, atol=1e-9)


def test_bad_values_are_per_row_statuses(credit, batchpred_here, tmp_path: Path) -> None:
    text = credit.csv.read_text().splitlines()
    header = text[0].split(",")
    col = header.index('"income"')
    rows = [line.split(",") for line in text[1:201]]
    rows[3][col] = "abc"
    rows[7][col] = "12k"
    source = tmp_path / "mixed.csv"
    source.write_text("\n".join([text[0]] + [",".join(r) for r in rows]) + "\n")
    out = tmp_path / "out.csv"
    res = batchpred_here("score", "--model", str(credit.package), "--input", str(source),
                         "--output", str(out), "--passthrough", "loan_id")
    assert res.returncode == 0, res.stderr
    assert "(2 failed)" in res.stdout
    scored = pcsv.read_csv(out)
    status = scored.column("prediction_status").to_pylist()
    assert status[3] == "column 'income' has 'abc' (expected a number)"
    assert status[7] == "column 'income' has '12k' (expected a number)"
    assert status.count("OK") == 198
    probs = scored.column("is_default_yes_PREDICTION").to_pylist()
    assert probs[3] is None and probs[7] is None
    good = [i for i in range(200) if i not in (3, 7)]
    ref = reference(credit, credit.table.slice(0, 200).take(good))[:, 1]
    np.testing.assert_allclose(np.array([probs[i] for i in good]), ref, rtol=0, atol=1e-9)


def test_header_only_input_gives_header_only_output(credit, batchpred_here,
                                                    tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text(credit.csv.read_text().splitlines()[0] + "\n")
    out = tmp_path / "out.csv"
    res = batchpred_here("score", "--model", str(credit.package), "--input", str(source),
                         "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("scored 0 rows")
    assert pcsv.read_csv(out).num_rows == 0
    assert "is_default_yes_PREDICTION" in out.read_text()
