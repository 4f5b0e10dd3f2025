"""What a user sees when Snowflake cannot be used: refused logins, unreachable endpoints."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest

from connectors import IntakeRequest, OutputRequest, open_intake, open_output
from connectors.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorConfigError,
    ConnectorError,
)

Endpoint = Any  # conftest.Endpoint: host, port, options(**extra)
# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
SECRET = "wrong-horse-battery"


def test_wrong_password_names_account_and_user_and_hides_the_password(
        password_endpoint: Endpoint, base_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SECRET)
    options = password_endpoint.options(user="alice")
    with pytest.raises(AuthenticationError) as info:
        open_intake(IntakeRequest(f"{base_uri}/T", options=options))
    message = str(info.value)
    assert "account 'fakesnow' user 'alice'" in message
    assert "Incorrect username or password" in message
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert all(SECRET not in str(e) and SECRET not in repr(e) for e in chain)
    assert isinstance(info.value, PermissionError)


def test_right_password_through_the_checking_server_works(
        password_endpoint: Endpoint, base_uri: str, sql: Any) -> None:
    sql("CREATE TABLE T AS SELECT 1 AS X")
    intake = open_intake(IntakeRequest(f"{base_uri}/T", options=password_endpoint.options()))
    try:
        assert [b.to_pylist() for b in intake.batches()] == [[{"X": 1}]]
    finally:
        intake.close()


def test_output_login_is_refused_the_same_way(
        password_endpoint: Endpoint, base_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SECRET)
    out = open_output(OutputRequest(f"{base_uri}/T", options=password_endpoint.options()))
    with pytest.raises(AuthenticationError, match="user 'fake'"):
        out.start(pa.schema({"X": pa.int64()}))


def test_unreachable_endpoint_fails_fast_after_bounded_retries(
        closed_port: int, base_uri: str) -> None:
    options = {"host": "127.0.0.1", "port": str(closed_port), "protocol": "http",
               "user": "fake", "login_timeout": "1", "connect_retries": "1"}
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as info:
        open_intake(IntakeRequest(f"{base_uri}/T", options=options))
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"cannot reach http://127.0.0.1:{closed_port} after 2 attempt(s)" in message
    assert "account 'fakesnow' user 'fake'" in message
    assert isinstance(info.value, ConnectionError)


def test_unknown_connection_name_is_a_config_error(
        endpoint: Endpoint, base_uri: str) -> None:
    options = endpoint.options(connection_name="no_such_connection")
    with pytest.raises(ConnectorConfigError, match="no_such_connection.*check connection_name"):
        open_intake(IntakeRequest(f"{base_uri}/T", options=options))


@pytest.mark.parametrize(("options", "match"), [
    ({"mode": "upsert"}, "needs key_columns"),
    ({"mode": "insert", "key_columns": "ID"}, "key_columns apply to"),
    ({"mode": "insert", "replace": "true"}, "replace=true applies to mode=create"),
    ({"mode": "merge"}, r"option 'mode'.*known options"),
])
def test_bad_output_options(base_uri: str, options: dict[str, str], match: str) -> None:
    with pytest.raises(ConnectorConfigError, match=match) as info:
        open_output(OutputRequest(f"{base_uri}/T", options=options))
    assert isinstance(info.value, ValueError)


def test_output_needs_a_table_and_a_mappable_type(base_uri: str, endpoint: Endpoint) -> None:
    with pytest.raises(ConnectorConfigError, match="names no table"):
        open_output(OutputRequest(base_uri))
    out = open_output(OutputRequest(f"{base_uri}/T", options=endpoint.options(mode="create")))
    with pytest.raises(ConnectorError, match=r"column 'tags' has Arrow type list<item: string>"):
        out.start(pa.schema({"tags": pa.list_(pa.string())}))
