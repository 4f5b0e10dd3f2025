"""A job's staging table: each chunk bulk-loaded into it until the job commits.

Why this path: each chunk is written as a Parquet file, ``PUT`` to the staging
table's own stage (``@%TABLE``) and loaded with ``COPY INTO ... MATCH_BY_COLUMN_NAME``.
That is Snowflake's bulk path, and the one fakesnow's server also runs (``PUT``
over HTTP, ``COPY INTO`` from a table stage with a path). The connector's
``write_pandas`` would do the same through a quoted ``@"stage"`` reference,
which fakesnow's server rejects; the table stage needs no ``CREATE STAGE``
privilege and disappears with the table.

Layout: columns ``C0 .. Cn-1`` hold the output's columns by position (so any
output name, however cased or punctuated, loads by a plain upper-case name),
then ``BATCHPRED_CHUNK`` and ``BATCHPRED_ROW`` (chunk index and row within the
chunk: what resume trims by and what commit orders by). The table is
TRANSIENT: no fail-safe storage for rows that live only until the commit.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import Receipt
from connectors.errors import OutputError
from connectors.snowflake.session import Session
from connectors.snowflake.types import snowflake_type, staging_type

CHUNK, ROW = "BATCHPRED_CHUNK", "BATCHPRED_ROW"


def staging_name(job_id: str, target: str) -> str:
    """``BATCHPRED_STAGE_<JOB>_<HASH>``: the same for every attempt of a job on a target.

    The job id is upper-cased with anything but letters, digits and ``_``
    replaced, so the name never needs quotes (fakesnow's server rejects a
    quoted stage reference); the hash keeps two ids that clean up alike apart.
    """
    clean = re.sub(r"[^A-Z0-9_]", "_", job_id.upper())[:80]
    digest = hashlib.sha256(f"{job_id}\0{target}".encode()).hexdigest()[:8].upper()
    return f"BATCHPRED_STAGE_{clean}_{digest}"


@dataclass(frozen=True, slots=True)
class Layout:
    """The staging table's columns for an output schema."""

    names: tuple[str, ...]  # the output's column names, by position
    types: tuple[str, ...]  # their Snowflake types
    arrow: pa.Schema  # the Parquet files' schema: C0.., BATCHPRED_CHUNK, BATCHPRED_ROW

    @classmethod
    def of(cls, schema: pa.Schema) -> Layout:
        """Raises OutputError for a column type with no Snowflake mapping."""
        types = tuple(snowflake_type(f) for f in schema)
        fields = [pa.field(f"C{i}", staging_type(f.type)) for i, f in enumerate(schema)]
        fields += [pa.field(CHUNK, pa.int64()), pa.field(ROW, pa.int64())]
        return cls(tuple(schema.names), types, pa.schema(fields))

    @property
    def ddl(self) -> str:
        cols = [f"C{i} {t}" for i, t in enumerate(self.types)]
        return ", ".join([*cols, f"{CHUNK} NUMBER(38,0)", f"{ROW} NUMBER(38,0)"])

    def parquet_batch(self, index: int, batch: pa.RecordBatch) -> pa.RecordBatch:
        # truncating casts only: nanoseconds to microseconds, date64 to days
        arrays = [batch.column(i).cast(self.arrow.field(i).type, safe=False)
                  for i in range(batch.num_columns)]
        n = batch.num_rows
        arrays += [pa.array(np.full(n, index, dtype=np.int64)),
                   pa.array(np.arange(n, dtype=np.int64))]
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow)


class StagingTable:
    """One job's staging table, reached through ``session``'s current schema."""

    def __init__(self, session: Session, name: str, layout: Layout, workdir: Path) -> None:
        self.name, self.layout = name, layout
        self._session, self._workdir = session, workdir

    def exists(self) -> bool:
        return bool(self._columns())

    def _columns(self) -> list[tuple[str, str]]:
        loc = self._session.location
        return [(str(n), str(t)) for n, t in self._session.rows(
            f"SELECT column_name, data_type FROM {loc.database.sql}.information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (loc.schema.text, self.name))]

    def create(self) -> None:
        """A fresh, empty table (an earlier attempt's, without receipts, is replaced)."""
        self._session.execute(f"CREATE OR REPLACE TRANSIENT TABLE {self.name} ({self.layout.ddl})")

    def keep(self, receipts: Sequence[Receipt]) -> None:
        """Keep chunks ``0..k-1`` (checked against their receipts), drop the rest.

        Raises:
            OutputError: the table is gone or has other columns, a receipt is
                not for chunk ``i`` of this table, or its row count differs.
        """
        have = self._columns()
        if not have:
            raise OutputError(f"{self._session.location.uri}: cannot resume: staging table "
                              f"{self.name} is gone (committed or aborted); run the job afresh")
        want = [f"C{i}" for i in range(len(self.layout.names))] + [CHUNK, ROW]
        if [n for n, _ in have] != want:
            raise OutputError(f"{self._session.location.uri}: cannot resume: staging table "
                              f"{self.name} has other columns than this output; abort the job")
        counts = {int(c): int(n) for c, n in self._session.rows(
            f"SELECT {CHUNK}, COUNT(*) FROM {self.name} GROUP BY {CHUNK}")}
        for i, receipt in enumerate(receipts):
            if receipt.get("table") != self.name or receipt.get("chunk") != i:
                raise OutputError(f"resume receipt {i} ({dict(receipt)}) is not for chunk {i} "
                                  f"of staging table {self.name}")
            if counts.get(i, 0) != receipt.get("rows"):
                raise OutputError(
                    f"{self._session.location.uri}: chunk {i} should hold {receipt.get('rows')} "
                    f"staged rows but {self.name} holds {counts.get(i, 0)}; abort the job")
        if any(c >= len(receipts) for c in counts):
            self._session.execute(f"DELETE FROM {self.name} WHERE {CHUNK} >= {len(receipts)}")

    def load(self, index: int, batch: pa.RecordBatch) -> Receipt:
        """Bulk-load chunk ``index``; when this returns, its rows are in the table.

        Raises:
            OutputError: the upload or the load failed or loaded another row count.
        """
        receipt: dict[str, object] = {"table": self.name, "chunk": index, "rows": batch.num_rows}
        if batch.num_rows == 0:
            return receipt
        # a fresh name per attempt: a stale upload of this chunk can never be loaded
        file = f"chunk_{index:08d}_{uuid.uuid4().hex[:12]}.parquet"
        path = self._workdir / file
        pq.write_table(pa.Table.from_batches([self.layout.parquet_batch(index, batch)]), path)
        try:
            local = str(path.resolve()).replace("\\", "/").replace("'", "\\'")
            self._session.rows(f"PUT 'file://{local}' @%{self.name} "
                               "AUTO_COMPRESS=FALSE OVERWRITE=TRUE")
            result = self._session.rows(
                f"COPY INTO {self.name} FROM @%{self.name}/{file} FILE_FORMAT=(TYPE=PARQUET) "
                "MATCH_BY_COLUMN_NAME=CASE_SENSITIVE PURGE=TRUE")
        finally:
            path.unlink(missing_ok=True)
        loaded = sum(int(r[3]) for r in result if len(r) > 3 and r[1] == "LOADED")
        if loaded != batch.num_rows:
            raise OutputError(f"{self._session.location.uri}: chunk {index}: COPY INTO "
                              f"{self.name} loaded {loaded} of {batch.num_rows} rows: {result}")
        receipt["file"] = file
        return receipt

    def rows(self) -> int:
        return int(self._session.rows(f"SELECT COUNT(*) FROM {self.name}")[0][0])

    def drop(self) -> None:
        self._session.execute(f"DROP TABLE IF EXISTS {self.name}")
