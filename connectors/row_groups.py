"""Row groups of Parquet files, read in whichever process scores them.

A Parquet input whose row groups are all of moderate size (at most
:data:`MAX_GROUP_ROWS` rows) is planned as one part per row group, so scoring
workers read, decode and score row groups in parallel and the rows never pass
through the job's own process. Inputs with larger row groups stream, since a
worker would have to hold a whole row group at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.chunks import one_batch
from connectors.errors import InputFormatError
from connectors.formats import FileOptions, translate_arrow_error
from connectors.storage import open_filesystem, storage_errors

MAX_GROUP_ROWS = 250_000


@dataclass(frozen=True, slots=True)
class RowGroup:
    """One row group of one Parquet file (after ``offset`` rows). Picklable."""

    uri: str
    group: int
    rows: int
    schema: pa.Schema
    options: FileOptions
    offset: int = 0

    def where(self) -> str:
        return f"{self.uri} (row group {self.group})"

    def read(self) -> pa.RecordBatch:
        """The row group's rows with the intake's schema.

        Raises:
            InputFormatError: the row group cannot be decoded, or its columns do
                not fit the schema of the input's first file.
            SourceNotFoundError, AccessDeniedError, ConnectionFailedError, ReadError:
                the store failed to serve it (see :mod:`connectors.storage`).
        """
        fs, path = open_filesystem(self.uri, self.options)
        with storage_errors(self.uri, doing=f"reading row group {self.group}", side="input"), \
                fs.open(path, "rb") as f:
            try:
                table = pq.ParquetFile(f, pre_buffer=False).read_row_group(self.group)
            except pa.ArrowInvalid as exc:
                raise translate_arrow_error(exc, self.where(), self.schema.names) from exc
        try:
            table = table.select(self.schema.names).cast(self.schema)
        except (KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise InputFormatError(f"{self.where()}: columns {table.schema.names} do not match "
                                   f"the first file's {self.schema.names}: {exc}") from exc
        if self.offset:
            table = table.slice(self.offset)
        return one_batch(table)

    def after(self, rows: int) -> RowGroup:
        """This row group without its first ``rows`` rows."""
        return replace(self, offset=self.offset + rows)


def plan_row_groups(fs: Any, paths: list[str], schema: pa.Schema,
                    options: FileOptions) -> list[RowGroup]:
    """A part per row group of ``paths``; empty when a row group is too large."""
    parts: list[RowGroup] = []
    for path in paths:
        uri = fs.unstrip_protocol(path)
        with storage_errors(uri, doing="reading Parquet metadata", side="input"), \
                fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            if rows > MAX_GROUP_ROWS:
                return []
            if rows:
                parts.append(RowGroup(uri, group, rows, schema, options))
    return parts
