"""SnowflakeIntake against fakesnow's server: tables, queries, chunking, resume, partitions."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from connectors import ConnectorConfigError, IntakeRequest, SourceNotFoundError, open_intake
from connectors.errors import QueryError
from connectors.snowflake import SnowflakeIntake

SQL = Callable[..., list[tuple]]
Endpoint = Any  # conftest.Endpoint: host, port, options(**extra)
# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")


def open_(uri: str, endpoint: Endpoint, *, chunk_rows: int = 100_000, skip_rows: int = 0,
          **options: str) -> SnowflakeIntake:
    intake = open_intake(IntakeRequest(uri, chunk_rows=chunk_rows, skip_rows=skip_rows,
                                       options=endpoint.options(**options)))
    assert isinstance(intake, SnowflakeIntake)
    return intake


def read(intake: SnowflakeIntake) -> list[pa.RecordBatch]:
    try:
        return list(intake.batches())
    finally:
        intake.close()


@pytest.fixture
def loans(sql: SQL) -> list[tuple]:
    """LOANS: 1000 rows, one result batch from fakesnow."""
    sql("CREATE TABLE LOANS (ID NUMBER(38,0), AMOUNT FLOAT, PURPOSE VARCHAR)")
    rows = [(i, i * 1.5, ["car", "home", None][i % 3]) for i in range(1000)]
    sql("INSERT INTO LOANS SELECT range, range * 1.5, CASE range % 3 WHEN 0 THEN 'car' "
        "WHEN 1 THEN 'home' END FROM range(1000)")
    return rows


def test_table_intake_yields_every_row_in_chunks(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    intake = open_(f"{base_uri}/loans", endpoint, chunk_rows=128)
    assert intake.schema == pa.schema({"ID": pa.int64(), "AMOUNT": pa.float64(),
                                       "PURPOSE": pa.string()})
    batches = read(intake)
    # one result batch of 1000 rows -> chunks of exactly 128, the last shorter
    assert [b.num_rows for b in batches] == [128] * 7 + [104]
    got = sorted(tuple(r.values()) for b in batches for r in b.to_pylist())
    assert got == loans
    assert intake.progress().rows == intake.progress().rows_total == 1000


def test_query_intake_with_schema_only_uri(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    intake = open_(base_uri, endpoint, chunk_rows=10,
                   query="SELECT ID, AMOUNT * 2 AS DOUBLED FROM LOANS WHERE ID < 25 ORDER BY ID")
    batches = read(intake)
    assert [b.num_rows for b in batches] == [10, 10, 5]
    table = pa.Table.from_batches(batches)
    assert table.column("ID").to_pylist() == list(range(25))
    assert table.column("DOUBLED").to_pylist() == [i * 3.0 for i in range(25)]


def test_many_small_result_batches_are_combined_to_chunk_size(
        sql: SQL, connection: Any, base_uri: str, endpoint: Endpoint) -> None:
    sql("CREATE TABLE BIG AS SELECT range AS ID FROM range(300000)")
    query = "SELECT ID FROM BIG ORDER BY ID"
    # the shape real Snowflake sends: the result arrives as many smaller batches
    tables = list(connection.cursor().execute(query).fetch_arrow_batches())
    pieces = [b.num_rows for t in tables for b in t.to_batches()]
    assert len(pieces) > 1 and max(pieces) < 250_000

    batches = read(open_(base_uri, endpoint, chunk_rows=250_000, query=query))
    assert [b.num_rows for b in batches] == [250_000, 50_000]
    assert pa.Table.from_batches(batches).column("ID").to_pylist() == list(range(300_000))


def test_skip_rows_resumes_after_that_many_rows(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    query = "SELECT ID FROM LOANS ORDER BY ID"
    intake = open_(base_uri, endpoint, chunk_rows=300, skip_rows=250, query=query)
    batches = read(intake)
    assert [b.num_rows for b in batches] == [300, 300, 150]
    assert pa.Table.from_batches(batches).column("ID").to_pylist() == list(range(250, 1000))
    assert intake.progress().rows == 1000

    assert read(open_(base_uri, endpoint, skip_rows=5000, query=query)) == []


def test_partitions_are_picklable_and_read_on_their_own(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    intake = open_(f"{base_uri}/LOANS", endpoint, chunk_rows=400)
    partitions = intake.partitions()
    assert partitions and sum(p.rows or 0 for p in partitions) == 1000
    copies = [pickle.loads(pickle.dumps(p)) for p in partitions]
    intake.close()  # the partitions need no connection
    table = pa.concat_tables([p.to_arrow() for p in copies])
    assert table.schema == intake.schema
    assert sorted(tuple(r.values()) for r in table.to_pylist()) == loans


def test_a_partition_reads_as_one_batch_and_can_skip_rows_done(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    query = "SELECT ID, PURPOSE FROM LOANS ORDER BY ID"
    intake = open_(base_uri, endpoint, chunk_rows=400, query=query)
    (first, *_) = intake.partitions()
    batch = pickle.loads(pickle.dumps(first)).read()  # as a scoring worker reads it
    assert isinstance(batch, pa.RecordBatch) and batch.schema == intake.schema
    assert batch.num_rows == first.rows
    rest = first.after(250).read()
    assert rest.num_rows == first.rows - 250
    assert rest.column("ID").to_pylist() == batch.column("ID").to_pylist()[250:]
    intake.close()


def test_empty_result_still_has_a_schema(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    intake = open_(base_uri, endpoint, query="SELECT ID, PURPOSE FROM LOANS WHERE ID < 0")
    assert intake.schema == pa.schema({"ID": pa.int64(), "PURPOSE": pa.string()})
    assert read(intake) == []


def test_credentials_from_connections_toml(
        loans: list[tuple], base_uri: str, endpoint: Endpoint, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNOWFLAKE_PASSWORD")
    toml = tmp_path / "connections.toml"
    toml.write_text(f'[stand_in]\naccount = "fakesnow"\nuser = "fake"\npassword = "snow"\n'
                    f'host = "{endpoint.host}"\nport = {endpoint.port}\nprotocol = "http"\n')
    toml.chmod(0o600)
    options = {"connection_name": "stand_in", "connections_file": str(toml)}
    intake = SnowflakeIntake(IntakeRequest(f"{base_uri}/LOANS", options=options))
    assert sum(b.num_rows for b in read(intake)) == 1000


def test_missing_table_is_source_not_found(base_uri: str, endpoint: Endpoint) -> None:
    with pytest.raises(SourceNotFoundError, match="NO_SUCH_TABLE"):
        open_(f"{base_uri}/no_such_table", endpoint)


def test_syntax_error_echoes_the_query(
        loans: list[tuple], base_uri: str, endpoint: Endpoint) -> None:
    with pytest.raises(QueryError) as info:
        open_(base_uri, endpoint, query="SELEC ID FROM LOANS\nWHERE ID > 3")
    message = str(info.value)
    assert message.startswith(f"{base_uri}: Snowflake rejected the query 'SELEC ID FROM LOANS':")


@pytest.mark.parametrize(("uri_tail", "options", "match"), [
    ("/T", {"query": "SELECT 1"}, "not both"),
    ("", {}, "no table and no query"),
    ("/T", {"colour": "red"}, r"'colour'.*known options: .*connection_name"),
    ("/T", {"password": "hunter2"}, "never pass a password"),
])
def test_bad_requests_are_config_errors(
        base_uri: str, endpoint: Endpoint, uri_tail: str, options: dict[str, str],
        match: str) -> None:
    request = IntakeRequest(base_uri + uri_tail, options={**endpoint.options(), **options})
    with pytest.raises(ConnectorConfigError, match=match) as info:
        open_intake(request)
    assert "hunter2" not in str(info.value)


def test_password_in_the_uri_is_refused_without_echoing_it(endpoint: Endpoint) -> None:
    with pytest.raises(ConnectorConfigError, match="never put secrets") as info:
        open_intake(IntakeRequest("snowflake://bob:hunter2@acct/DB/S/T"))
    assert "hunter2" not in str(info.value)
