"""Writing batches to a Snowflake table: staged per job, published in one commit."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from connectors.base import OutputRequest, Receipt
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    OutputError,
    OutputExistsError,
)
from connectors.snowflake import publish
from connectors.snowflake.options import OutputOptions, parse_options
from connectors.snowflake.session import Session
from connectors.snowflake.staging import Layout, StagingTable, staging_name
from connectors.snowflake.types import TargetColumn, match_columns
from connectors.snowflake.uri import Location, parse_uri

log = logging.getLogger(__name__)


def _options(request: OutputRequest, location: Location) -> OutputOptions:
    """The validated options, ``--overwrite`` folded in.

    Raises:
        ConnectorConfigError: a bad option, options that do not go together, or a
            URI without a table.
    """
    options = parse_options(OutputOptions, request.options, side="output")
    if request.overwrite:  # --overwrite: replace the table (create it, unless a mode is given)
        mode = options.mode if "mode" in request.options else "create"
        options = options.model_copy(update={"replace": True, "mode": mode})
    problem = None
    if location.table is None:
        problem = "the URI names no table (snowflake://account/database/schema/table)"
    elif options.mode in ("update", "upsert") and not options.key_columns:
        problem = f"mode={options.mode} needs key_columns (comma-separated)"
    elif options.key_columns and options.mode not in ("update", "upsert"):
        problem = "key_columns apply to mode=update or mode=upsert only"
    elif options.replace and options.mode != "create":
        problem = "replace=true applies to mode=create only"
    if problem:
        raise ConnectorConfigError(f"{request.uri}: {problem}")
    return options


class SnowflakeOutput:
    """Stages chunks in a job-specific table, then applies them to the target at once.

    Modes (option ``mode``): ``insert`` appends (default); ``create`` makes a new
    table (an existing one is an error unless ``replace=true``); ``update`` and
    ``upsert`` merge on ``key_columns`` (upsert also adds rows with new keys).
    Columns map by name (exactly, else case-insensitively when unambiguous) and
    types are checked in ``start``, before any row is loaded. A new table's
    names are the batches' names, quoted, so they read back exactly as written.

    Lifecycle (see ``connectors.base.Output``): ``write`` bulk-loads chunk i
    into ``BATCHPRED_STAGE_<JOB>_<HASH>`` and returns its receipt; ``commit``
    applies the staged rows in one transaction and drops the staging table;
    ``suspend`` keeps it for a resume with the receipts; ``abort`` drops it. A
    job id already committed to this target (in ``BATCHPRED_COMMITS``) is not
    applied again. Details: :mod:`connectors.snowflake.staging`, :mod:`.publish`.
    """

    @staticmethod
    def check_options(options: Mapping[str, str]) -> None:
        parse_options(OutputOptions, options, side="output")

    def __init__(self, request: OutputRequest) -> None:
        self.uri = request.uri
        self._location = parse_uri(request.uri)
        self._options = _options(request, self._location)
        self._job_id = request.job_id
        self._target = self._location.table_sql
        self._session: Session | None = None
        self._staging: StagingTable | None = None
        self._workdir: Path | None = None
        self._columns: list[str] = []  # the target's name for each output column
        self._keys: list[str] = []  # the target's names of the key columns
        self._staging_name = staging_name(self._job_id, self._target)
        self._schema: pa.Schema | None = None
        self._next = 0
        self._done = False  # this job is in the ledger: nothing (more) to apply

    def start(self, schema: pa.Schema, *, resume: Sequence[Receipt] = ()) -> None:
        """Check the target against ``schema`` and prepare the staging table.

        Raises:
            ConnectorConfigError: a key column is not an output column, or
                ``mode=update`` has no column besides the keys.
            OutputExistsError: ``mode=create`` on an existing table without ``replace``.
            OutputError: a column has no Snowflake type, is missing from the
                target or has an incompatible type; resume receipts that do not
                match what is staged. All before any row is loaded.
            AuthenticationError, ConnectionFailedError: cannot log in.
        """
        layout = Layout.of(schema)
        missing = [k for k in self._options.key_columns if k not in schema.names]
        if missing:
            raise ConnectorConfigError(f"{self.uri}: key column '{missing[0]}' (option "
                                       f"key_columns) is not among the output columns "
                                       f"{schema.names}")
        if self._options.mode == "update" and len(self._options.key_columns) == len(schema):
            raise ConnectorConfigError(f"{self.uri}: mode=update needs an output column "
                                       "besides the key_columns")
        self._session = Session(self._location, self._options, rejected=OutputError,
                                lost=OutputError)
        self._schema, self._next = schema, len(resume)
        self._done = publish.committed(self._session, self._job_id, self._target)
        if self._done:
            log.warning("%s: job '%s' is already committed here; nothing will be applied",
                        self.uri, self._job_id)
            self._session.execute(f"DROP TABLE IF EXISTS {self._staging_name}")  # a leftover
            return
        self._columns = self._check_target(schema)
        self._keys = [self._columns[schema.names.index(k)] for k in self._options.key_columns]
        self._workdir = Path(tempfile.mkdtemp(prefix="batchpred-snowflake-"))
        self._staging = StagingTable(self._session, self._staging_name, layout, self._workdir)
        if resume:
            self._staging.keep(resume)
        else:
            self._staging.create()

    def _check_target(self, schema: pa.Schema) -> list[str]:
        assert self._session is not None
        loc = self._location
        found = self._session.rows(
            "SELECT column_name, data_type, numeric_scale FROM "
            f"{loc.database.sql}.information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position", (loc.schema.text, str(loc.table)))
        target = [TargetColumn(str(n), str(t), None if s is None else int(s)) for n, t, s in found]
        table = f"{loc.database}.{loc.schema}.{loc.table}"
        if self._options.mode == "create":
            if target and not self._options.replace:
                raise OutputExistsError(f"{self.uri}: table {table} already exists; pass "
                                        "replace=true (or --overwrite) to replace it, or "
                                        "mode=insert to append")
            return list(schema.names)
        if not target:
            raise OutputError(f"{self.uri}: table {table} does not exist (or is not visible "
                              "to this role); use mode=create to create it")
        mapping = match_columns(schema, target, table=table)
        return [mapping[n] for n in schema.names]

    def write(self, index: int, batch: pa.RecordBatch) -> Receipt:
        """Stage chunk ``index`` (0, 1, 2, ... in order); durable when this returns.

        Raises:
            OutputError: out-of-order index, other columns than ``start``'s, or
                the load failed (nothing of this chunk counts; write it again
                or suspend and resume from the receipts so far).
        """
        if self._schema is None:
            raise OutputError(f"{self.uri}: write() before start()")
        if index != self._next:
            raise OutputError(f"{self.uri}: chunk {index} written out of order "
                              f"(expected chunk {self._next})")
        if batch.schema.names != self._schema.names:
            raise OutputError(f"{self.uri}: chunk {index} has columns {batch.schema.names}, "
                              f"expected {self._schema.names}")
        if self._done or self._staging is None:
            receipt: Receipt = {"chunk": index, "rows": batch.num_rows, "committed": True}
        else:
            receipt = self._staging.load(index, batch)
        self._next += 1
        return receipt

    def commit(self) -> None:
        """Apply every staged chunk to the target at once, then drop the staging table.

        A second commit of the same job (this object or a new one) is a no-op.

        Raises:
            OutputError: nothing started, the staging table is gone, or the
                apply failed (rolled back: target unchanged, staged rows kept).
        """
        if self._session is None:
            if self._done:
                return
            raise OutputError(f"{self.uri}: commit() before start()")
        session, staging = self._session, self._staging
        if not self._done and staging is not None:
            if publish.committed(session, self._job_id, self._target):
                log.warning("%s: job '%s' was already committed", self.uri, self._job_id)
            elif not staging.exists():
                raise OutputError(f"{self.uri}: nothing staged for job '{self._job_id}' "
                                  f"(staging table {staging.name} is gone)")
            else:
                apply = publish.apply_sql(
                    self._options.mode, self._target, staging.name, self._columns,
                    keys=self._keys, replace=self._options.replace)
                publish.publish(session, job_id=self._job_id, target=self._target,
                                mode=self._options.mode, apply=apply, rows=staging.rows())
            staging.drop()
        self._done = True
        self._release()

    def suspend(self) -> None:
        """Close the connection; the staging table stays for a resume."""
        self._release()

    def abort(self) -> None:
        """Drop the staging table, over a fresh connection if the job's one is gone.

        Best effort: the target is untouched either way, so a failure to drop is
        logged (with the table's name, to drop by hand), not raised.
        """
        session, self._session = self._session, None
        self._release()
        if self._done or (session is None and self._schema is None):
            return  # committed, or never started: nothing staged
        drop = f"DROP TABLE IF EXISTS {self._staging_name}"
        try:
            if session is not None:
                try:
                    session.execute(drop)
                    return
                except ConnectorError:
                    pass  # the connection may be what failed: try a fresh one
                finally:
                    session.close()
            fresh = Session(self._location, self._options, rejected=OutputError)
            try:
                fresh.execute(drop)
            finally:
                fresh.close()
        except ConnectorError as exc:
            log.warning("%s: could not drop staging table %s (drop it by hand): %s",
                        self.uri, self._staging_name, exc)

    def _release(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
