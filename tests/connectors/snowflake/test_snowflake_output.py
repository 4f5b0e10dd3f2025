"""SnowflakeOutput against fakesnow's server: modes, types, staging, resume, exactly once.

Every check reads the target back with plain SQL over its own connection.
"""

from __future__ import annotations

import datetime
import decimal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pytest

from connectors import (
    IntakeRequest,
    OutputError,
    OutputExistsError,
    OutputRequest,
    Receipt,
    open_intake,
    open_output,
)
from connectors.snowflake import SnowflakeOutput

SQL = Callable[..., list[tuple]]
Endpoint = Any  # conftest.Endpoint: host, port, options(**extra)
# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

SCORES = pa.table({
    "ID": pa.array(range(1, 11), pa.int64()),
    "SCORE": pa.array([i / 10 for i in range(1, 11)], pa.float64()),
})


def output(uri: str, endpoint: Endpoint, *, job_id: str = "job-1", overwrite: bool = False,
           **options: str) -> SnowflakeOutput:
    out = open_output(OutputRequest(uri, options=endpoint.options(**options), job_id=job_id,
                                    overwrite=overwrite))
    assert isinstance(out, SnowflakeOutput)
    return out


def write(out: SnowflakeOutput, table: pa.Table, *, chunk: int = 4, first: int = 0,
          resume: Sequence[Receipt] | None = None) -> list[Receipt]:
    """start (unless resuming mid-way), then write ``table`` as chunks first, first+1, ..."""
    if resume is not None:
        out.start(table.schema, resume=resume)
    batches = table.to_batches(max_chunksize=chunk)
    return [out.write(first + i, b) for i, b in enumerate(batches)]


def rows(sql: SQL, table: str, order: str = "ID") -> list[tuple]:
    return sql(f"SELECT * FROM {table} ORDER BY {order}")


def staging_tables(sql: SQL) -> list[str]:
    return [r[0] for r in sql("SELECT table_name FROM information_schema.tables "
                              "WHERE table_name LIKE 'BATCHPRED_STAGE%'")]


@pytest.fixture
def scores_table(sql: SQL) -> None:
    sql("CREATE TABLE SCORES (ID NUMBER(38,0), SCORE FLOAT, NOTE VARCHAR)")
    sql("INSERT INTO SCORES VALUES (1, 0.0, 'old'), (100, 1.0, 'keep')")


def test_insert_appends_in_one_commit(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/scores", endpoint)
    receipts = write(out, SCORES, resume=())
    assert [r["chunk"] for r in receipts] == [0, 1, 2]
    assert [r["rows"] for r in receipts] == [4, 4, 2]
    assert len(rows(sql, "SCORES")) == 2  # nothing visible before commit
    out.commit()
    got = sorted((r[0], r[1]) for r in rows(sql, "SCORES"))
    assert got == sorted([(1, 0.0), (100, 1.0)] + [(r["ID"], r["SCORE"])
                                                   for r in SCORES.to_pylist()])
    assert staging_tables(sql) == []


def test_create_makes_a_new_table_and_refuses_an_existing_one(
        sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/fresh", endpoint, mode="create")
    write(out, SCORES, resume=())
    out.commit()
    assert rows(sql, "FRESH") == [(r["ID"], r["SCORE"]) for r in SCORES.to_pylist()]

    again = output(f"{base_uri}/fresh", endpoint, mode="create", job_id="job-2")
    with pytest.raises(OutputExistsError, match=r"FRESH already exists.*replace=true"):
        again.start(SCORES.schema)
    again.abort()


def test_create_with_replace_replaces(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/scores", endpoint, mode="create", replace="true")
    write(out, SCORES.slice(0, 3), resume=())
    out.commit()
    assert rows(sql, "SCORES") == [(1, 0.1), (2, 0.2), (3, 0.3)]  # NOTE column gone too

    overwrite = output(f"{base_uri}/scores", endpoint, overwrite=True, job_id="job-2")
    write(overwrite, SCORES.slice(9), resume=())
    overwrite.commit()
    assert rows(sql, "SCORES") == [(10, 1.0)]


def test_upsert_merges_on_key_columns_last_write_wins(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    batch = pa.table({"ID": pa.array([1, 2, 3, 2], pa.int64()),
                      "SCORE": pa.array([0.5, 0.2, 0.3, 0.9])})
    out = output(f"{base_uri}/scores", endpoint, mode="upsert", key_columns="ID")
    write(out, batch, chunk=2, resume=())  # key 2 in chunk 0 and again in chunk 1
    out.commit()
    assert rows(sql, "SCORES") == [(1, 0.5, "old"), (2, 0.9, None), (3, 0.3, None),
                                   (100, 1.0, "keep")]


def test_update_changes_matching_rows_only(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    batch = pa.table({"ID": pa.array([100, 7], pa.int64()), "NOTE": pa.array(["new", "nope"])})
    out = output(f"{base_uri}/scores", endpoint, mode="update", key_columns="ID")
    write(out, batch, resume=())
    out.commit()
    assert rows(sql, "SCORES") == [(1, 0.0, "old"), (100, 1.0, "new")]


def test_types_and_quoted_names_round_trip(
        sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    n = 6
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "is_default_yes_PREDICTION": pa.array([0.25, None, 0.5, 0.75, 1.0, 0.0]),
        "small int": pa.array([1, 2, None, 4, 5, 6], pa.int8()),
        "label": pa.array(["yes", "no", None, "ja", "nej", "oui"]),
        "category": pa.array(["a", "b", "a", None, "b", "a"]).dictionary_encode(),
        "flag": pa.array([True, False, None, True, False, True]),
        # fakesnow's server returns a NULL timestamp as 1970-01-01, so no NULLs here
        "ts": pa.array([datetime.datetime(2024, 1, i + 1, 12, 30, 15, 123456) for i in range(n)],
                       pa.timestamp("ns")),
        "day": pa.array([datetime.date(2024, 2, i + 1) for i in range(n)], pa.date32()),
        "amount": pa.array([decimal.Decimal(f"{i}.{i}5") for i in range(n)],
                           pa.decimal128(12, 2)),
    })
    uri = f"{base_uri}/%22Typed Preds%22"  # a quoted table name, kept exactly
    out = output(uri, endpoint, mode="create")
    write(out, table, chunk=4, resume=())
    out.commit()

    types = sql("SELECT column_name, data_type, numeric_precision, numeric_scale FROM "
                "information_schema.columns WHERE table_name = 'Typed Preds' "
                "ORDER BY ordinal_position")
    assert [(r[0], r[1]) for r in types] == [
        ("id", "NUMBER"), ("is_default_yes_PREDICTION", "FLOAT"), ("small int", "NUMBER"),
        ("label", "TEXT"), ("category", "TEXT"), ("flag", "BOOLEAN"),
        ("ts", "TIMESTAMP_NTZ"), ("day", "DATE"), ("amount", "NUMBER")]
    assert (types[0][2], types[0][3]) == (38, 0) and (types[-1][2], types[-1][3]) == (12, 2)

    intake = open_intake(IntakeRequest(uri, options=endpoint.options()))
    back = pa.Table.from_batches(list(intake.batches()), schema=intake.schema)
    intake.close()
    assert back.schema.names == table.schema.names
    expected = table.cast(pa.schema({**dict(zip(table.schema.names, table.schema.types,
                                                strict=True)),
                                     "small int": pa.int64(), "category": pa.string(),
                                     "ts": pa.timestamp("us")}))
    assert back.sort_by("id").to_pylist() == expected.to_pylist()


def test_incompatible_target_fails_in_start_before_any_load(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    text_score = pa.schema({"ID": pa.int64(), "SCORE": pa.string()})
    out = output(f"{base_uri}/scores", endpoint)
    with pytest.raises(OutputError,
                       match=r"'SCORE' holds string but column 'SCORE' of .*SCORES is FLOAT"):
        out.start(text_score)
    missing = pa.schema({"id": pa.int64(), "risk": pa.float64()})
    with pytest.raises(OutputError, match=r"column 'risk' is missing from table .*SCORES"):
        output(f"{base_uri}/scores", endpoint).start(missing)
    float_into_int = pa.schema({"ID": pa.float64()})
    with pytest.raises(OutputError, match="column 'ID' holds double"):
        output(f"{base_uri}/scores", endpoint).start(float_into_int)
    with pytest.raises(OutputError, match="does not exist.*mode=create"):
        output(f"{base_uri}/nowhere", endpoint).start(SCORES.schema)
    assert staging_tables(sql) == []
    assert len(rows(sql, "SCORES")) == 2


def test_abort_drops_the_staging_and_leaves_the_target(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/scores", endpoint)
    write(out, SCORES, resume=())
    assert len(staging_tables(sql)) == 1
    out.abort()
    assert staging_tables(sql) == []
    assert len(rows(sql, "SCORES")) == 2


def test_suspend_and_resume_stages_each_row_exactly_once(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    first = output(f"{base_uri}/scores", endpoint, job_id="resumable")
    receipts = write(first, SCORES.slice(0, 8), chunk=2, resume=())  # chunks 0..3
    first.suspend()  # as if the process died after recording only chunks 0 and 1
    assert len(rows(sql, "SCORES")) == 2

    second = output(f"{base_uri}/scores", endpoint, job_id="resumable")
    write(second, SCORES.slice(4), chunk=2, first=2, resume=receipts[:2])  # chunks 2..4
    second.commit()
    ids = [r[0] for r in rows(sql, "SCORES")]
    assert ids == [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dropped_connection_mid_write_leaves_the_job_resumable(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint,
        another_fakesnow: Callable[[], Any]) -> None:
    with another_fakesnow() as doomed:
        doomed_endpoint = type(endpoint)(doomed["host"], doomed["port"])
        out = output(f"{base_uri}/scores", doomed_endpoint, job_id="flaky",
                     network_timeout="2", connect_retries="0")
        batches = SCORES.to_batches(max_chunksize=4)
        out.start(SCORES.schema)
        receipts = [out.write(0, batches[0]), out.write(1, batches[1])]
    # the server is gone: the next chunk cannot be staged
    with pytest.raises(OutputError, match="lost the connection"):
        out.write(2, batches[2])
    # the connector's own cancel timer fires at network_timeout and tries to cancel
    # the failed statement on the dead server, which raises in its thread: let it
    # finish here, where that warning is expected
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.join(timeout=10)
    out.suspend()
    assert len(rows(sql, "SCORES")) == 2

    resumed = output(f"{base_uri}/scores", endpoint, job_id="flaky")
    resumed.start(SCORES.schema, resume=receipts)
    resumed.write(2, batches[2])
    resumed.commit()
    assert sorted(r[0] for r in rows(sql, "SCORES")) == sorted([1, 100, *range(1, 11)])


def test_repeated_commit_adds_nothing(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/scores", endpoint, job_id="once")
    write(out, SCORES, resume=())
    out.commit()
    out.commit()
    again = output(f"{base_uri}/scores", endpoint, job_id="once")  # a rerun of the same job
    write(again, SCORES, resume=())
    again.commit()
    assert len(rows(sql, "SCORES")) == 12
    assert sql("SELECT JOB_ID, ROWS_WRITTEN FROM BATCHPRED_COMMITS") == [("once", 10)]
    assert staging_tables(sql) == []


def test_resume_with_receipts_that_do_not_match_is_refused(
        scores_table: None, sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/scores", endpoint, job_id="mismatch")
    receipts = write(out, SCORES, resume=())
    out.suspend()
    forged = [dict(receipts[0], rows=3)]
    with pytest.raises(OutputError, match="chunk 0 should hold 3 staged rows"):
        output(f"{base_uri}/scores", endpoint, job_id="mismatch").start(
            SCORES.schema, resume=forged)
    with pytest.raises(OutputError, match="cannot resume"):
        output(f"{base_uri}/scores", endpoint, job_id="other").start(
            SCORES.schema, resume=receipts)


def test_an_empty_job_creates_an_empty_table(
        sql: SQL, base_uri: str, endpoint: Endpoint) -> None:
    out = output(f"{base_uri}/EMPTY", endpoint, mode="create")
    out.start(SCORES.schema)
    out.commit()
    assert sql("SELECT COUNT(*) FROM EMPTY") == [(0,)]
