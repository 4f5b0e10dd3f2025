"""Optional capabilities are declared Protocols: each connector class that has one passes
``isinstance`` (and mypy's structural check), a class without it does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from connectors import (
    ByteRange,
    EncodingOutput,
    InputFormatError,
    IntakeRequest,
    OutputRequest,
    Part,
    Partition,
    PartitionedIntake,
    RangedIntake,
)
from connectors.file_output import FileOutput
from connectors.files import FileIntake
from connectors.formats import FileOptions
from connectors.ranges import CsvRange
from connectors.row_groups import RowGroup
from connectors.snowflake import SnowflakeIntake, SnowflakeOutput, SnowflakePartition

if TYPE_CHECKING:
    from conftest import Endpoint  # the fixture's type; several conftest modules exist

# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
SCHEMA = pa.schema({"id": pa.int64()})


def test_the_connector_classes_satisfy_their_protocols_statically() -> None:
    """mypy checks these assignments against the protocols' signatures."""
    ranged: type[RangedIntake] = FileIntake
    partitioned: list[type[PartitionedIntake]] = [FileIntake, SnowflakeIntake]
    encoding: type[EncodingOutput] = FileOutput
    ranges: type[ByteRange] = CsvRange
    parts: list[type[Partition]] = [RowGroup, SnowflakePartition]
    assert all([ranged, partitioned, encoding, ranges, parts])


def test_file_intake_offers_byte_ranges_and_partitions(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id\n1\n2\n")
    intake = FileIntake(IntakeRequest(str(tmp_path / "t.csv")))
    assert isinstance(intake, RangedIntake) and isinstance(intake, PartitionedIntake)
    assert not isinstance(intake, EncodingOutput)
    intake.close()


def test_a_capability_check_does_not_read_the_input(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    intake = FileIntake(IntakeRequest(str(tmp_path / "empty.csv")))
    assert isinstance(intake, RangedIntake)  # did not touch the (unreadable) schema
    with pytest.raises(InputFormatError, match="empty"):
        _ = intake.schema


def test_snowflake_intake_offers_partitions_not_byte_ranges(
        snowflake_env: None, sql: Callable[..., list[tuple]], base_uri: str,
        endpoint: Endpoint) -> None:
    sql("CREATE TABLE T (ID NUMBER(38,0))")
    intake = SnowflakeIntake(IntakeRequest(f"{base_uri}/T", options=endpoint.options()))
    try:
        assert isinstance(intake, PartitionedIntake)
        assert not isinstance(intake, RangedIntake)
    finally:
        intake.close()


def test_file_output_encodes_in_the_workers_and_snowflake_output_does_not(
        tmp_path: Path) -> None:
    assert isinstance(FileOutput(OutputRequest(str(tmp_path / "out.csv"))), EncodingOutput)
    snowflake = SnowflakeOutput(OutputRequest("snowflake://acct/DB/S/T"))  # connects in start
    assert not isinstance(snowflake, EncodingOutput)
    assert not isinstance(snowflake, PartitionedIntake)


def test_parts_are_byte_ranges_or_partitions() -> None:
    options = FileOptions()
    csv_range = CsvRange("t.csv", 3, 10, SCHEMA, options)
    row_group = RowGroup("t.parquet", 0, 5, SCHEMA, options)
    result_batch = SnowflakePartition(0, 5, None, SCHEMA)
    assert all(isinstance(p, Part) for p in (csv_range, row_group, result_batch))
    assert isinstance(csv_range, ByteRange) and not isinstance(csv_range, Partition)
    assert isinstance(row_group, Partition) and not isinstance(row_group, ByteRange)
    assert isinstance(result_batch, Partition) and not isinstance(result_batch, ByteRange)
    assert isinstance(row_group.after(2), RowGroup) and row_group.after(2).offset == 2
