"""Applying a staging table to its target, once per job.

``insert``, ``update`` and ``upsert`` run in ONE transaction with the job's row
in ``BATCHPRED_COMMITS`` (the commit ledger, in the target's schema)::

    BEGIN
    INSERT INTO target ...        -- insert
    UPDATE target ... FROM ...    -- update, upsert
    INSERT ... WHERE NOT EXISTS   -- upsert
    INSERT INTO BATCHPRED_COMMITS ...
    COMMIT

so the target shows all of the job's rows or none, and a job id already in the
ledger is never applied again. ``create`` publishes with one
``CREATE [OR REPLACE] TABLE ... AS SELECT`` (DDL commits on its own in
Snowflake, so it cannot share the transaction; the ledger row follows it, and a
crash between the two makes a repeated commit fail on the existing table, or
with ``replace=true`` replace it again, rather than add rows twice).

Rows go in chunk order (``ORDER BY BATCHPRED_CHUNK, BATCHPRED_ROW``).
``update``/``upsert`` merge on the key columns: ``UPDATE ... FROM`` the staged
rows, then (upsert) ``INSERT`` those whose key the target lacks. That is
MERGE's effect; MERGE itself is not used because fakesnow's server cannot run
it inside an explicit transaction (its emulation builds a temporary table,
which DuckDB refuses there), and the two statements behave the same in
Snowflake. For each key the last row staged wins (later chunks win); a NULL key
matches nothing, so ``upsert`` inserts such rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from connectors.errors import ConnectorError, OutputError
from connectors.snowflake.options import WriteMode
from connectors.snowflake.session import Session
from connectors.snowflake.staging import CHUNK, ROW
from connectors.snowflake.uri import quote

LEDGER = "BATCHPRED_COMMITS"
_LEDGER_DDL = (f"CREATE TABLE IF NOT EXISTS {LEDGER} (JOB_ID VARCHAR, TARGET VARCHAR, "
               "MODE VARCHAR, ROWS_WRITTEN NUMBER(38,0), COMMITTED_AT TIMESTAMP_NTZ)")


def committed(session: Session, job_id: str, target: str) -> bool:
    """Whether the ledger holds ``job_id`` for ``target`` (no ledger: False)."""
    exists = session.rows(
        f"SELECT COUNT(*) FROM {session.location.database.sql}.information_schema.tables "
        "WHERE table_schema = %s AND table_name = %s", (session.location.schema.text, LEDGER))
    if not int(exists[0][0]):
        return False
    found = session.rows(f"SELECT COUNT(*) FROM {LEDGER} WHERE JOB_ID = %s AND TARGET = %s",
                         (job_id, target))
    return bool(int(found[0][0]))


_LEDGER_ROW = (f"INSERT INTO {LEDGER} (JOB_ID, TARGET, MODE, ROWS_WRITTEN, COMMITTED_AT) "
               "SELECT %s, %s, %s, %s, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ")


def _select(staging: str, columns: Sequence[str]) -> str:
    cols = ", ".join(f"C{i} AS {quote(c)}" for i, c in enumerate(columns))
    return f"SELECT {cols} FROM {staging}"


def _merge(mode: WriteMode, target: str, staging: str, columns: Sequence[str], *,
           keys: Sequence[str]) -> list[str]:
    key_cs = ", ".join(f"C{columns.index(k)}" for k in keys)
    latest = (f"({_select(staging, columns)} QUALIFY ROW_NUMBER() OVER "
              f"(PARTITION BY {key_cs} ORDER BY {CHUNK} DESC, {ROW} DESC) = 1) AS s")
    match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    statements = []
    rest = [c for c in columns if c not in keys]
    if rest:
        sets = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in rest)
        statements.append(f"UPDATE {target} AS t SET {sets} FROM {latest} WHERE {match}")
    if mode == "upsert":
        names = ", ".join(quote(c) for c in columns)
        values = ", ".join(f"s.{quote(c)}" for c in columns)
        statements.append(f"INSERT INTO {target} ({names}) SELECT {values} FROM {latest} "
                          f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})")
    return statements


def apply_sql(mode: WriteMode, target: str, staging: str, columns: Sequence[str], *,
              keys: Sequence[str] = (), replace: bool = False) -> list[str]:
    """The statements that apply ``staging`` to ``target`` (in one transaction).

    ``columns`` are the target's names for the staging columns C0, C1, ...;
    ``keys`` (update/upsert) are among them.
    """
    order = f" ORDER BY {CHUNK}, {ROW}"
    if mode == "create":
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        return [f"{verb} {target} AS {_select(staging, columns)}{order}"]
    if mode == "insert":
        names = ", ".join(quote(c) for c in columns)
        cs = ", ".join(f"C{i}" for i in range(len(columns)))
        return [f"INSERT INTO {target} ({names}) SELECT {cs} FROM {staging}{order}"]
    return _merge(mode, target, staging, columns, keys=keys)


def _transaction(session: Session, statements: Sequence[tuple[str, Any]]) -> None:
    """Run ``statements`` between BEGIN and COMMIT; on failure roll back and re-raise."""
    session.execute("BEGIN")
    try:
        for sql, params in statements:
            session.execute(sql, params)
        session.execute("COMMIT")
    except ConnectorError:
        with contextlib.suppress(ConnectorError):
            session.execute("ROLLBACK")
        raise


def publish(session: Session, *, job_id: str, target: str, mode: WriteMode,
            apply: Sequence[str], rows: int) -> None:
    """Run ``apply`` and record ``job_id`` in the ledger, as one unit where Snowflake allows.

    Raises:
        OutputError: the apply failed and was rolled back (the target is as it
            was, the staged rows are kept: commit again or abort); or, for
            ``create``, the table was made but the ledger row could not be written.
    """
    where = f"{session.location.uri}: commit of job '{job_id}'"
    record = (_LEDGER_ROW, (job_id, target, mode, rows))
    try:
        session.execute(_LEDGER_DDL)
        if mode != "create":
            _transaction(session, [*((sql, None) for sql in apply), record])
            return
        session.execute(apply[0])  # DDL: commits on its own
    except ConnectorError as exc:
        raise OutputError(f"{where} failed; the target is unchanged and the staged rows are "
                          f"kept (commit again or abort): {exc}") from exc
    try:
        _transaction(session, [record])
    except ConnectorError as exc:
        raise OutputError(f"{where}: the table was created but the job could not be recorded "
                          f"in {LEDGER}; do not commit it again: {exc}") from exc
