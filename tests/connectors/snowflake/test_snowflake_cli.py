"""``batchpred score`` from a Snowflake table and into one, through the real connector
(the round trip in this process; the error lines as the installed script prints them)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import batchpred_cli
import joblib
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET, credit_table, train_model
from batch.models.builder import PackageSpec, create_package


@pytest.fixture(scope="session")
def credit_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sfcredit")
    train = credit_table(2000, seed=5)
    pcsv.write_csv(train, root / "train.csv")
    joblib.dump(train_model(train), root / "model.joblib")
    return create_package(root / "pkg", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "train.csv"), target=TARGET,
        positive_class="yes", name="credit-risk")).path


def _score(*args: str, home: Path, here: bool = False) -> subprocess.CompletedProcess[str]:
    """``batchpred score --quiet ARGS``: the installed script, or with ``here`` in this
    process."""
    run = batchpred_cli.invoke if here else batchpred_cli.run
    return run("score", "--quiet", *args, home=home)


def _opts(flag: str, endpoint) -> list[str]:  # type: ignore[no-untyped-def]
    return [x for k, v in endpoint.options().items() for x in (flag, f"{k}={v}")]


def test_file_to_snowflake_to_file(credit_package: Path, endpoint, base_uri: str, sql,
                                   tmp_path: Path) -> None:
    source = tmp_path / "loans.csv"
    pcsv.write_csv(credit_table(1500, seed=6).drop_columns([TARGET]), source)
    table = f"{base_uri}/SCORED"
    res = _score("--model", str(credit_package), "--input", str(source), "--output", table,
                 "--passthrough-all", "--chunk-rows", "400", "--workers", "2",
                 "--output-option", "mode=create", *_opts("--output-option", endpoint),
                 home=tmp_path / "home", here=True)
    assert res.returncode == 0, res.stderr
    assert sql("SELECT COUNT(*) FROM SCORED")[0][0] == 1500
    assert sql('SELECT COUNT(DISTINCT "loan_id") FROM SCORED')[0][0] == 1500
    back = tmp_path / "back.csv"
    res = _score("--model", str(credit_package), "--input", base_uri, "--input-query",
                 'SELECT * EXCLUDE ("is_default_no_PREDICTION", "is_default_yes_PREDICTION", '
                 '"is_default_PREDICTION", "THRESHOLD", "POSITIVE_CLASS", "prediction_status") '
                 'FROM SCORED ORDER BY "loan_id"',
                 "--output", str(back), "--passthrough", "loan_id",
                 *_opts("--input-option", endpoint), home=tmp_path / "home", here=True)
    assert res.returncode == 0, res.stderr
    first = pcsv.read_csv(back)
    assert first.num_rows == 1500
    assert first.column("loan_id").to_pylist() == list(range(1, 1501))
    stored = sql('SELECT "is_default_yes_PREDICTION" FROM SCORED ORDER BY "loan_id"')
    assert [round(r[0], 12) for r in stored] == [
        round(v, 12) for v in first.column("is_default_yes_PREDICTION").to_pylist()]


def test_bad_query_is_one_clear_line(credit_package: Path, endpoint, base_uri: str,
                                     tmp_path: Path) -> None:
    res = _score("--model", str(credit_package), "--input", base_uri, "--input-query",
                 "SELEC * FROM nowhere\nWHERE 1", "--output", str(tmp_path / "o.csv"),
                 *_opts("--input-option", endpoint), home=tmp_path / "home")
    assert res.returncode == 1
    lines = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1 and "SELEC * FROM nowhere" in lines[0], res.stderr
    # nothing else: no driver warning (a retry notice) before the error line
    assert [x for x in res.stderr.splitlines() if not x.startswith("job ")] == lines
    assert not (tmp_path / "o.csv").exists()


def test_retries_are_not_printed_before_the_one_error_line(credit_package: Path,
                                                           tmp_path: Path) -> None:
    """An unreachable account is retried; the retries are logged, not printed (they
    printed a line each before the error once): the job line, then one error line."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = batchpred_cli.run(
        "score", "--quiet", "--model", str(credit_package), "--input",
        "snowflake://acct/DB/PUBLIC/LOANS", "--output", str(tmp_path / "o.csv"),
        *[x for k, v in {"host": "127.0.0.1", "port": port, "protocol": "http", "user": "u",
                         "login_timeout": 1, "connect_retries": 1}.items()
          for x in ("--input-option", f"{k}={v}")],
        home=tmp_path / "home", SNOWFLAKE_PASSWORD="not-a-real-one")
    assert res.returncode == 1
    lines = [x for x in res.stderr.splitlines() if not x.startswith("job ")]
    assert len(lines) == 1 and lines[0].startswith("error: snowflake account 'acct' user "
                                                   "'u': cannot reach"), res.stderr
    assert "not-a-real-one" not in res.stderr
