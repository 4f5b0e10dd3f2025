"""Pure parts of the Snowflake connector: URIs, identifiers, staging names, type mapping."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors import ConnectorConfigError, OutputError
from connectors.errors import CredentialsInUriError
from connectors.snowflake.staging import staging_name
from connectors.snowflake.types import TargetColumn, match_columns, snowflake_type
from connectors.snowflake.uri import Name, parse_uri


def test_uri_parts_fold_like_snowflake_identifiers() -> None:
    loc = parse_uri("snowflake://xy12345.eu-west-1/analytics/public/"
                    "%22Scored Loans%22?warehouse=WH&role=SCORER")
    assert loc.account == "xy12345.eu-west-1"
    assert (loc.database, loc.schema, loc.table) == (
        Name("ANALYTICS"), Name("PUBLIC"), Name("Scored Loans"))
    assert loc.table_sql == '"ANALYTICS"."PUBLIC"."Scored Loans"'
    assert (loc.warehouse, loc.role) == ("WH", "SCORER")
    assert parse_uri("snowflake://a/db/s/my-table").table == Name("my-table")
    assert parse_uri("snowflake://a/db/s").table is None
    assert Name('say "hi"').sql == '"say ""hi"""'


@pytest.mark.parametrize(("uri", "match"), [
    ("snowflake://acct/db", "expected snowflake://<account>"),
    ("snowflake://acct/db/s/t/extra", "expected snowflake://<account>"),
    ("snowflake://acct/db/s/t?password=x", "unknown URI parameter 'password'"),
])
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(ConnectorConfigError, match=match) as info:
        parse_uri(uri)
    assert isinstance(info.value, ValueError)


def test_staging_name_is_stable_plain_and_distinct() -> None:
    a = staging_name("job 2024-06-01/a", '"DB"."S"."T"')
    assert a == staging_name("job 2024-06-01/a", '"DB"."S"."T"')
    assert a.startswith("BATCHPRED_STAGE_JOB_2024_06_01_A_") and a.isupper()
    assert a != staging_name("job_2024_06_01_a", '"DB"."S"."T"')
    assert a != staging_name("job 2024-06-01/a", '"DB"."S"."OTHER"')


@pytest.mark.parametrize(("arrow", "snowflake"), [
    (pa.int8(), "NUMBER(38,0)"), (pa.uint64(), "NUMBER(38,0)"), (pa.float32(), "FLOAT"),
    (pa.string(), "VARCHAR"), (pa.large_string(), "VARCHAR"), (pa.bool_(), "BOOLEAN"),
    (pa.timestamp("ns"), "TIMESTAMP_NTZ"), (pa.timestamp("us", "UTC"), "TIMESTAMP_TZ"),
    (pa.date32(), "DATE"), (pa.decimal128(12, 4), "NUMBER(12,4)"), (pa.binary(), "BINARY"),
    (pa.dictionary(pa.int32(), pa.string()), "VARCHAR"), (pa.null(), "VARCHAR"),
])
def test_type_mapping(arrow: pa.DataType, snowflake: str) -> None:
    assert snowflake_type(pa.field("c", arrow)) == snowflake


def test_columns_match_exactly_else_case_insensitively_when_unambiguous() -> None:
    target = [TargetColumn("ID", "NUMBER", 0), TargetColumn("x", "TEXT"),
              TargetColumn("X", "TEXT")]
    schema = pa.schema({"id": pa.int32(), "X": pa.string()})
    assert match_columns(schema, target, table="T") == {"id": "ID", "X": "X"}
    with pytest.raises(OutputError, match=r"column 'y' is missing from table T \(it has: ID"):
        match_columns(pa.schema({"y": pa.string()}), target, table="T")
    with pytest.raises(OutputError, match="column 'id' holds string"):
        match_columns(pa.schema({"id": pa.string()}), target, table="T")


def test_a_password_in_the_uri_is_refused_and_not_echoed() -> None:
    with pytest.raises(CredentialsInUriError, match="never put secrets") as info:
        parse_uri("snowflake://u:p4ss@acct/db/s/t")
    assert "p4ss" not in str(info.value)
