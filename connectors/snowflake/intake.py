"""Reading a Snowflake table or query result as a stream of Arrow record batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
from snowflake.connector.errors import Error

from connectors.base import IntakeRequest, Progress
from connectors.chunks import one_batch, rechunk
from connectors.errors import ConnectorConfigError, InputFormatError
from connectors.snowflake.options import IntakeOptions, parse_options
from connectors.snowflake.session import Session
from connectors.snowflake.types import description_schema
from connectors.snowflake.uri import Location, parse_uri


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` without the connector's per-field metadata (logicalType, scale...)."""
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def _conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` with exactly ``schema`` (a chunk may differ in width, unit or metadata).

    Raises:
        InputFormatError: a chunk's columns cannot be cast to the first chunk's.
    """
    try:
        return table.cast(schema)
    except (pa.ArrowException, ValueError) as exc:  # invalid or unsupported cast
        raise InputFormatError(f"{where}: a result chunk has columns {table.schema} "
                               f"that do not fit the first chunk's {schema}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SnowflakePartition:
    """One of the result's own batches, readable on its own (e.g. on a Dask worker).

    Picklable: it holds the connector's ``ResultBatch`` (inline rows or a
    presigned URL), not a connection.
    """

    index: int
    rows: int | None
    result: Any  # snowflake.connector.result_batch.ResultBatch
    schema: pa.Schema
    offset: int = 0  # rows of the batch to leave out (done before a resume)

    def to_arrow(self) -> pa.Table:
        """This partition's rows (after ``offset``), with the intake's schema."""
        try:
            table = self.result.to_arrow(force_microsecond_precision=True)
        except Error as exc:
            raise InputFormatError(f"result batch {self.index}: cannot be read: {exc}") from exc
        table = _conform(table, self.schema, f"partition {self.index}")
        return table.slice(self.offset) if self.offset else table

    def read(self) -> pa.RecordBatch:
        """:meth:`to_arrow` as one record batch (what a scoring worker reads)."""
        return one_batch(self.to_arrow())

    def after(self, rows: int) -> SnowflakePartition:
        """This partition without its first ``rows`` rows."""
        return replace(self, offset=self.offset + rows)


class SnowflakeIntake:
    """Streams a table (``snowflake://acct/db/schema/table``) or a query's result.

    The query runs when the intake opens, so bad credentials, a bad query or a
    missing table fail at once. The result streams with
    ``cursor.fetch_arrow_batches()``, re-chunked to ``chunk_rows`` whatever
    sizes Snowflake sends (one batch for a small result, many for a large one).

    Resume: ``skip_rows`` drops that many rows from the start of the result. A
    repeated query returns rows in the same order only when it says so: give
    the ``query`` an ``ORDER BY`` on a unique key. A table intake reads
    ``SELECT * FROM table`` without an order (Snowflake has no row order to
    offer), so its resume is exact only while the table and its storage are
    unchanged.

    ``text_columns`` is ignored: Snowflake's column types are exact already.

    Raises (on open):
        ConnectorConfigError: bad URI or options; neither or both of table and query.
        AuthenticationError, ConnectionFailedError: cannot log in / reach Snowflake.
        QueryError: the query was rejected (the message echoes its first line).
        SourceNotFoundError: the table, schema or database does not exist.
    """

    def __init__(self, request: IntakeRequest) -> None:
        self.uri = request.uri
        self._request = request
        self._location = parse_uri(request.uri)
        self._options = parse_options(IntakeOptions, request.options, side="input")
        self._sql = _statement(self._location, self._options)
        self._session = Session(self._location, self._options)
        try:
            self._cursor = self._session.execute(self._sql)
        except BaseException:
            self._session.close()
            raise
        self._tables: Iterator[pa.Table] | None = None
        self._first: pa.Table | None = None
        self._schema: pa.Schema | None = None
        self._rows = 0

    @property
    def schema(self) -> pa.Schema:
        """The result's columns: from its first chunk, or its description when empty."""
        if self._schema is None:
            first = self._peek()
            self._schema = (_plain(first.schema) if first is not None
                            else description_schema(self._cursor.description))
        return self._schema

    def _peek(self) -> pa.Table | None:
        if self._tables is None:
            self._tables = self._fetch()
            self._first = next(self._tables, None)
        return self._first

    def _fetch(self) -> Iterator[pa.Table]:
        try:
            # microseconds for every chunk: per-chunk precision would vary the schema
            yield from self._cursor.fetch_arrow_batches(force_microsecond_precision=True)
        except Error as exc:
            raise self._session.translate(exc, self._sql) from exc

    def _record_batches(self) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        tables = self._tables
        first, self._first = self._first, None
        if first is not None:
            yield from _conform(first, schema, self.uri).to_batches()
        for table in tables or ():
            yield from _conform(table, schema, self.uri).to_batches()

    def _skipped(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Count rows as they are consumed; drop the first ``skip_rows``."""
        skip = self._request.skip_rows
        for batch in batches:
            start = min(max(skip - self._rows, 0), batch.num_rows)
            self._rows += batch.num_rows
            if start < batch.num_rows:
                yield batch.slice(start) if start else batch

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the result after ``skip_rows``, in batches of exactly ``chunk_rows``
        (the last may be shorter). Can be iterated once."""
        return rechunk(self._skipped(self._record_batches()), self._request.chunk_rows)

    def partitions(self) -> list[SnowflakePartition]:
        """The result's own batches, each readable on its own with ``to_arrow()``.

        Independent of :meth:`batches` (``skip_rows`` does not apply); meant for
        reading a large result in parallel. Empty for a result without batches.
        """
        schema = self.schema
        results = self._cursor.get_result_batches() or []
        return [SnowflakePartition(i, getattr(r, "rowcount", None), r, schema)
                for i, r in enumerate(results)]

    def progress(self) -> Progress:
        """Rows consumed from the result so far (skipped ones included) of its total."""
        total = self._cursor.rowcount
        return Progress(rows=self._rows,
                        rows_total=total if isinstance(total, int) and total >= 0 else None)

    def close(self) -> None:
        try:
            self._cursor.close()
        finally:
            self._session.close()


def _statement(location: Location, options: IntakeOptions) -> str:
    """The SQL to read: the ``query`` option, or the URI's whole table.

    Raises:
        ConnectorConfigError: both a table and a query, or neither.
    """
    if options.query and location.table is not None:
        raise ConnectorConfigError(f"{location.uri}: give either a table in the URI or the "
                                   "query option, not both")
    if options.query:
        return options.query
    if location.table is None:
        raise ConnectorConfigError(f"{location.uri}: no table and no query: use snowflake://"
                                   "account/database/schema/table or the query option")
    return f"SELECT * FROM {location.table_sql}"
