"""The monitoring store: records as Parquet in a directory or at any fsspec URL.

Layout (Hive-style partitions)::

    <store>/deployment=<id>/kind=<kind>/date=<YYYY-MM-DD>/job-<job id>.parquet
    <store>/deployment=<id>/kind=predictions/date=<day>/job-<job id>~<model>.parquet
    <store>/deployment=<id>/kind=<kind>/date=<day>/compacted-<digest>.parquet
    <store>/deployment=<id>/state/<name>.json     (the stages' last statuses)
    <store>/baselines/<fingerprint>.json          (the baselines records were counted on)

Exactly once: a job's records for a day go to one file named after the job, so
publishing them again (a resumed job, a retried flow task) writes the same file
with the same rows (a challenger's prediction log goes to a file of its own beside
the champion's, named after its model). Every file appears whole or not at all (written aside and
renamed, or uploaded as one object), and names starting with ``_`` or ``.``
(files being written) are never read. Compaction merges a day's files into one
file, whose metadata names the files it supersedes; a reader drops superseded
files, so a compaction stopped half-way counts nothing twice.

A file that cannot be read (corrupt, truncated, foreign, another schema version)
is skipped with a warning naming it; it never stops a stage.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch.errors import ConfigError
from batch.monitoring.baseline import Baseline
from batch.monitoring.exactsum import decode, encode, to_float
from batch.monitoring.records import COMPACTED, SCHEMAS, SEGMENTS, check_schema
from batch.settings import home_dir
from connectors.atomic_file import open_atomic, write_atomic
from connectors.storage import (
    StorageOptions,
    is_local,
    open_filesystem,
    storage_errors,
    write_whole,
)

_F = TypeVar("_F")  # a day's file as a reader loads it: a table, or an opened file
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SUPERSEDES = b"batchpred.supersedes"  # Parquet metadata: the files a compaction replaces


def default_store(home: Path | None = None) -> str:
    return str((home or home_dir()) / "monitoring")


@dataclass
class Records:
    """Records read from the store, and what was skipped on the way."""

    table: pa.Table
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # left by a compaction cut short


class MonitoringStore:
    """Records of any number of deployments under one root (a directory or URL)."""

    def __init__(self, uri: str, options: StorageOptions | None = None) -> None:
        self.uri = uri
        self.options = options or StorageOptions()
        with self._errors("open the monitoring store"):
            self.fs, self.root = open_filesystem(uri, self.options)
        self.root = self.root.rstrip("/")

    # -- writing -----------------------------------------------------------------------
    def publish(self, deployment_id: str, job_id: str, tables: dict[str, pa.Table]) -> list[str]:
        """Write a job's records, one file per kind and day; returns the paths written.

        Raises:
            ConfigError: a deployment or job id that cannot name a file.
            ConnectorError: the store cannot be written.
        """
        _check_id(deployment_id, "deployment id")
        _check_id(job_id, "job id")
        written = []
        for kind, table in tables.items():
            if not table.num_rows:
                continue
            if table.schema != SCHEMAS[kind]:
                table = table.cast(SCHEMAS[kind])  # e.g. dictionary-encoded who-columns
            for day, rows in _by_day(table):
                path = self._path(deployment_id, kind, day, f"job-{job_id}.parquet")
                self._write(path, _parquet(rows))
                written.append(path)
        return written

    def publish_parts(self, deployment_id: str, job_id: str, kind: str,
                      parts: Iterable[pa.Table], *, part: str | None = None) -> list[str]:
        """Write a job's ``kind`` records given piece by piece (a chunk's at a time), one
        file per day as :meth:`publish` does, holding one piece in memory, not the job's;
        ``part`` (letters and digits) names a file of its own beside the job's (a
        challenger's prediction log). Returns the paths written.

        Raises:
            ConfigError: a deployment or job id that cannot name a file.
            ConnectorError: the store cannot be written. Each file appears whole or
                not at all, as the call ends; calling again writes the same files.
        """
        _check_id(deployment_id, "deployment id")
        _check_id(job_id, "job id")
        if part is not None and not part.isalnum():
            raise ConfigError(f"part {part!r} cannot name monitoring records: use letters "
                              "and digits")
        name = f"job-{job_id}.parquet" if part is None else f"job-{job_id}~{part}.parquet"
        writers: dict[str, pq.ParquetWriter] = {}
        with self._errors("write to the monitoring store"), ExitStack() as files:
            for table in parts:
                if not table.num_rows:
                    continue
                if table.column_names != SCHEMAS[kind].names:
                    raise ValueError(f"not a {kind} record table: {table.column_names}")
                for day, rows in _by_day(table):
                    if day not in writers:
                        path = self._path(deployment_id, kind, day, name)
                        sink = files.enter_context(
                            open_atomic(Path(path)) if is_local(self.fs)
                            else write_whole(self.fs, path))
                        # no Arrow schema kept: a column dictionary-encoded in memory
                        # reads back as its plain type
                        writers[day] = pq.ParquetWriter(sink, rows.schema, **_WRITE,
                                                        store_schema=False)
                        files.callback(writers[day].close)  # before its file, on an error
                    writer = writers[day]
                    writer.write_table(rows if rows.schema == writer.schema else
                                       rows.cast(writer.schema))
            for writer in writers.values():  # the files appear as the block exits
                writer.close()
        return [self._path(deployment_id, kind, day, name) for day in sorted(writers)]

    def save_baseline(self, baseline: Baseline) -> None:
        """Keep a copy of ``baseline`` (once per fingerprint), so stages need no package."""
        path = posixpath.join(self.root, "baselines", f"{baseline.fingerprint}.json")
        with self._errors("write a baseline to the monitoring store"):
            if self.fs.exists(path):
                return
        self._write(path, baseline.model_dump_json().encode())

    def baseline(self, fingerprint: str) -> Baseline | None:
        path = posixpath.join(self.root, "baselines", f"{fingerprint}.json")
        with self._errors("read a baseline from the monitoring store"):
            if not self.fs.exists(path):
                return None
            data = self.fs.cat_file(path)
        return Baseline.model_validate_json(data)

    def save_state(self, deployment_id: str, name: str, state: dict[str, Any]) -> None:
        _check_id(deployment_id, "deployment id")
        path = posixpath.join(self._deployment(deployment_id), "state", f"{name}.json")
        self._write(path, json.dumps(state, indent=2, sort_keys=True).encode())

    def state(self, deployment_id: str, name: str) -> dict[str, Any] | None:
        _check_id(deployment_id, "deployment id")
        path = posixpath.join(self._deployment(deployment_id), "state", f"{name}.json")
        with self._errors("read a state from the monitoring store"):
            if not self.fs.exists(path):
                return None
            data = self.fs.cat_file(path)
        try:
            loaded = json.loads(data)
        except ValueError:
            return None  # a state cut short: as if none was kept
        return loaded if isinstance(loaded, dict) else None

    # -- reading -----------------------------------------------------------------------
    def deployments(self) -> list[str]:
        with self._errors("list the monitoring store"):
            if not self.fs.exists(self.root):
                return []
            names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.root,
                                                                          detail=False)]
        return sorted(n.split("=", 1)[1] for n in names if n.startswith("deployment="))

    def read(self, deployment_id: str, kind: str, *, since: datetime | None = None,
             until: datetime | None = None, job_id: str | None = None,
             columns: Sequence[str] | None = None) -> Records:
        """The ``kind`` records of a deployment whose chunk started in [since, until)
        (only ``columns`` of them, when given: a prediction log's other columns are
        most of its size).

        Only the days of the window are listed and read.
        """
        _check_id(deployment_id, "deployment id")
        if columns is not None:
            columns = list(dict.fromkeys([*columns, "schema_version", "ts_start", "job_id"]))
        schema = SCHEMAS[kind]
        found = Records(schema.empty_table() if columns is None else pa.schema(
            [schema.field(name) for name in schema.names if name in columns]).empty_table())
        first = since.astimezone(UTC).date() if since else None
        last = until.astimezone(UTC).date() if until else None
        tables = []
        for day_dir in self._days(deployment_id, kind, since, until):
            day = date.fromisoformat(posixpath.basename(day_dir)[5:])
            inside = (first is None or day > first) and (last is None or day < last)
            for table in self._read_day(day_dir, kind, found, columns):
                # a day inside the window is inside whole: only its ends are filtered
                tables.append(table if inside else _between(table, since, until))
        if tables:
            table = pa.concat_tables(tables)
            if job_id is not None:
                table = table.filter(pc.equal(table.column("job_id"), job_id))
            found.table = table
        return found

    def scan(self, deployment_id: str, kind: str, found: Records, *,
             since: datetime | None = None, until: datetime | None = None,
             columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """The records :meth:`read` returns, a row group at a time (a chunk's, for a
        prediction log), so that a reader of millions of rows holds one group of them;
        ``found`` gets the files read and the warnings (its table stays empty).

        Raises:
            ConnectorError: the store cannot be listed or opened.
        """
        _check_id(deployment_id, "deployment id")
        if columns is not None:
            columns = list(dict.fromkeys([*columns, "schema_version", "ts_start", "job_id"]))
        encoded = [] if columns is None else [c for c in _FEW_VALUES if c in columns]
        first = since.astimezone(UTC).date() if since else None
        last = until.astimezone(UTC).date() if until else None
        for day_dir in self._days(deployment_id, kind, since, until):
            day = date.fromisoformat(posixpath.basename(day_dir)[5:])
            inside = (first is None or day > first) and (last is None or day < last)
            with ExitStack() as opened:
                for path, source in self._open_day(day_dir, found, opened, encoded):
                    present = source.schema_arrow.names
                    wanted = None if columns is None else [c for c in columns if c in present]
                    for group in range(source.num_row_groups):
                        try:
                            with self._errors("read the monitoring store"):
                                table = check_schema(source.read_row_group(
                                    group, columns=wanted), kind, columns)
                        except (pa.ArrowException, ValueError, OSError) as exc:
                            found.warnings.append(f"skipped {self._shown(path)} from row "
                                                  f"group {group}: {_why(exc)}")
                            break
                        table = table.replace_schema_metadata(None)
                        yield table if inside else _between(table, since, until)

    def _open_day(self, day_dir: str, found: Records, opened: ExitStack,
                  encoded: Sequence[str]) -> list[tuple[str, pq.ParquetFile]]:
        """The live files of a day, opened (their footers read)."""
        def open_file(path: str) -> pq.ParquetFile | None:
            try:
                with self._errors("read the monitoring store"):
                    file = opened.enter_context(self.fs.open(path, "rb"))
                    return pq.ParquetFile(file, read_dictionary=encoded)
            except (pa.ArrowException, ValueError, OSError) as exc:
                found.warnings.append(f"skipped {self._shown(path)}: {_why(exc)}")
                return None

        return self._live(day_dir, found, open_file, lambda f: f.schema_arrow.metadata)

    def _live(self, day_dir: str, found: Records, load: Callable[[str], _F | None],
              metadata: Callable[[_F], Mapping[bytes, bytes] | None]) -> list[tuple[str, _F]]:
        """A day's record files, each loaded (``load``: None when it cannot be, which it
        notes in ``found``), without those a compaction superseded (the ``SUPERSEDES`` of
        another file's ``metadata``), which ``found`` lists; ``found`` counts the rest."""
        with self._errors("list the monitoring store"):
            names = sorted(self.fs.ls(day_dir, detail=False))
        loaded: dict[str, tuple[str, _F]] = {}
        superseded: set[str] = set()
        for path in names:
            base = posixpath.basename(path)
            if base.startswith(("_", ".")) or not base.endswith(".parquet"):
                continue
            item = load(path)
            if item is None:
                continue
            loaded[base] = (path, item)
            meta = (metadata(item) or {}).get(SUPERSEDES)
            if meta:
                superseded.update(json.loads(meta))
        live = []
        for base, (path, item) in loaded.items():
            if base in superseded:
                found.superseded.append(posixpath.join(day_dir, base))
                continue
            found.files += 1
            live.append((path, item))
        return live

    def _days(self, deployment_id: str, kind: str, since: datetime | None,
              until: datetime | None) -> list[str]:
        base = posixpath.join(self._deployment(deployment_id), f"kind={kind}")
        with self._errors("list the monitoring store"):
            if not self.fs.exists(base):
                return []
            entries = self.fs.ls(base, detail=False)
        days = []
        first = since.astimezone(UTC).date() if since else None
        last = until.astimezone(UTC).date() if until else None
        for entry in sorted(entries):
            name = posixpath.basename(entry.rstrip("/"))
            if not name.startswith("date="):
                continue
            try:
                day = date.fromisoformat(name[5:])
            except ValueError:
                continue
            if (first and day < first) or (last and day > last):
                continue
            days.append(entry.rstrip("/"))
        return days

    def _read_day(self, day_dir: str, kind: str, found: Records,
                  columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        for _, table in self._live(day_dir, found,
                                   lambda path: self._load(path, kind, found, columns),
                                   lambda table: table.schema.metadata):
            yield table.replace_schema_metadata(None)

    def _load(self, path: str, kind: str, found: Records,
              columns: Sequence[str] | None = None) -> pa.Table | None:
        try:
            with self._errors("read the monitoring store"):
                data = self.fs.cat_file(path)
            # a subset read keeps the who-columns encoded: one string per file, not per row
            encoded = [] if columns is None else [c for c in _FEW_VALUES if c in columns]
            source = pq.ParquetFile(io.BytesIO(data), read_dictionary=encoded)
            present = source.schema_arrow.names
            wanted = None if columns is None else [c for c in columns if c in present]
            table = source.read(columns=wanted)
            metadata = table.schema.metadata
            table = check_schema(table, kind, columns)
            return table.replace_schema_metadata(metadata)
        except (pa.ArrowException, ValueError, OSError) as exc:  # corrupt, cut, foreign
            found.warnings.append(f"skipped {self._shown(path)}: {_why(exc)}")
            return None

    def prune(self, deployment_id: str, kind: str, *, before: date) -> list[str]:
        """Remove the ``kind`` records of days before ``before``; the folders removed.

        Raises:
            ConnectorError: the store cannot be written.
        """
        removed = []
        for day_dir in self._days(deployment_id, kind, None, None):
            if date.fromisoformat(posixpath.basename(day_dir)[5:]) < before:
                with self._errors("remove records from the monitoring store"):
                    self.fs.rm(day_dir, recursive=True)
                removed.append(day_dir)
        return removed

    # -- compaction ----------------------------------------------------------------------
    def compact(self, deployment_id: str | None = None, *, before: date | None = None,
                min_files: int = 2) -> list[tuple[str, int]]:
        """Merge each day's record files into one (per deployment and kind).

        ``before``: only days before this one (default: every day). Chunk records
        of one job and hour become one row (counts and exact sums added), so
        reading a month of hourly jobs reads a file per day. Returns the files
        written and how many files each replaced.
        """
        done = []
        for deployment in [deployment_id] if deployment_id else self.deployments():
            for kind in COMPACTED:
                for day_dir in self._days(deployment, kind, None, None):
                    day = date.fromisoformat(posixpath.basename(day_dir)[5:])
                    if before is not None and day >= before:
                        continue
                    result = self._compact_day(day_dir, kind, min_files)
                    if result is not None:
                        done.append(result)
        return done

    def _compact_day(self, day_dir: str, kind: str, min_files: int) -> tuple[str, int] | None:
        with self._errors("list the monitoring store"):
            names = sorted(posixpath.basename(p) for p in self.fs.ls(day_dir, detail=False))
        current = [n for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))]
        found = Records(SCHEMAS[kind].empty_table())
        tables = list(self._read_day(day_dir, kind, found))
        live = found.files
        if live < min_files or not tables:
            with self._errors("remove compacted files from the monitoring store"):
                for path in found.superseded:  # what a compaction cut short left behind
                    self.fs.rm(path)
            return None
        merged = merge_rows(pa.concat_tables(tables), kind)
        digest = hashlib.sha256("\n".join(current).encode()).hexdigest()[:16]
        target = f"compacted-{digest}.parquet"
        meta = {SUPERSEDES: json.dumps([n for n in current if n != target]).encode()}
        self._write(posixpath.join(day_dir, target),
                    _parquet(merged.replace_schema_metadata(meta)))
        with self._errors("remove compacted files from the monitoring store"):
            for name in current:
                if name != target:
                    self.fs.rm(posixpath.join(day_dir, name))
        return posixpath.join(day_dir, target), live

    # -- helpers -------------------------------------------------------------------------
    def _deployment(self, deployment_id: str) -> str:
        return posixpath.join(self.root, f"deployment={deployment_id}")

    def _path(self, deployment_id: str, kind: str, day: str, name: str) -> str:
        return posixpath.join(self._deployment(deployment_id), f"kind={kind}", f"date={day}",
                              name)

    def _write(self, path: str, data: bytes) -> None:
        with self._errors("write to the monitoring store"):
            if is_local(self.fs):
                write_atomic(Path(path), data)
                return
            with write_whole(self.fs, path) as out:  # one object: whole or nothing
                out.write(data)

    def _shown(self, path: str) -> str:
        if is_local(self.fs):
            return path
        return f"{self.uri.split('://', 1)[0]}://{path}"

    def _errors(self, doing: str):  # type: ignore[no-untyped-def]
        return storage_errors(self.uri, doing=doing, side="output",
                              hint="check --monitoring-store")


_FEW_VALUES = ("deployment_id", "model_id", "role", "source")


def _between(table: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    """The rows whose chunk started in [since, until)."""
    starts = table.column("ts_start")
    mask = None
    if since is not None:
        mask = pc.greater_equal(starts, pa.scalar(since, starts.type))
    if until is not None:
        before = pc.less(starts, pa.scalar(until, starts.type))
        mask = before if mask is None else pc.and_(mask, before)
    return table if mask is None else table.filter(mask)


def merge_rows(table: pa.Table, kind: str) -> pa.Table:
    """Rows of one job, hour and column (stats) or job and hour (health) merged into one:
    counts and sums add, min and max take the extreme; chunk_index becomes -1."""
    keys = ["deployment_id", "model_id", "role", "source", "job_id", "hour", *SEGMENTS]
    keys += ["fingerprint", "column", "role_of_column"] if kind == "stats" else []
    data = table.to_pydict()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(zip(*(data[k] for k in keys), strict=True)):
        groups.setdefault(key, []).append(i)
    out: dict[str, list[Any]] = {name: [] for name in SCHEMAS[kind].names}
    for rows in groups.values():
        for name in out:
            out[name].append(_merged_value(name, [data[name][i] for i in rows]))
        if kind == "stats":  # the rounded sum, from the exact one
            out["sum"][-1] = to_float(decode(out["sum_exact"][-1]))
    return pa.Table.from_pydict(out, schema=SCHEMAS[kind])


_ADDED = {"rows", "n_missing", "n_out_low", "n_out_high", "n_new", "sum_sq", "rows_in",
          "rows_scored", "rows_failed", "requests", "exec_seconds", "user_errors",
          "server_errors"}
_ADDED_IF_ANY = {"score_seconds"}  # null unless a row has it


def _merged_value(name: str, values: list[Any]) -> Any:
    if name == "chunk_index":
        return -1 if len(values) > 1 else values[0]
    if name in ("counts", "sketch", "latency_counts"):
        return np.sum(np.asarray(values, dtype=np.int64), axis=0).tolist()
    if name in _ADDED:
        return sum(values)
    if name in _ADDED_IF_ANY:
        present = [v for v in values if v is not None]
        return sum(present) if present else None
    if name == "ts_start" or name == "min":
        present = [v for v in values if v is not None]
        return min(present) if present else None
    if name == "ts_end" or name == "max":
        present = [v for v in values if v is not None]
        return max(present) if present else None
    if name == "sum_exact":
        return encode(sum(decode(v) for v in values))
    return values[0]


def _by_day(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """``table``'s rows by the day (UTC, ``YYYY-MM-DD``) of their hour."""
    # the day of each distinct hour (a few), not of each row (millions, for a log)
    hours = pc.unique(table.column("hour"))
    if pa.types.is_dictionary(hours.type):
        hours = hours.dictionary_decode()
    days = pc.strftime(hours, format="%Y-%m-%d").to_pylist()
    if len(set(days)) == 1:
        yield days[0], table
        return
    column = table.column("hour")
    if pa.types.is_dictionary(column.type):
        column = column.cast(hours.type)
    for day in sorted(set(days)):
        those = pa.array([h for h, d in zip(hours.to_pylist(), days, strict=True)
                          if d == day], hours.type)
        yield day, table.filter(pc.is_in(column, value_set=those))


# dictionaries only where values repeat: a dictionary tried on each row group of unique
# ids or floats is work thrown away; min/max statistics only where a reader filters
# (times, who), not on ids and predictions (a fifth of the time to write a log)
_MOSTLY_UNIQUE = ("association_id", "row", "seq", "prediction", "probabilities", "actual_value",
                  "timestamp")
_WRITE: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": sorted({name for schema in SCHEMAS.values() for name in schema.names
                              if name not in _MOSTLY_UNIQUE}),
    "write_statistics": sorted({name for schema in SCHEMAS.values() for name in schema.names
                                if name not in (*_MOSTLY_UNIQUE, "label")}),
    "column_encoding": {"prediction": "BYTE_STREAM_SPLIT",
                        "probabilities": "BYTE_STREAM_SPLIT", "row": "DELTA_BINARY_PACKED"},
}


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **_WRITE)
    return sink.getvalue()


def _check_id(value: str, what: str) -> None:
    if not _ID.match(value):
        raise ConfigError(f"{what} {value!r} cannot name monitoring records: use 1-100 "
                          "letters, digits, '.', '_' or '-'")


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def parse_time(text: str, *, option: str) -> datetime:
    """An ISO time (``2026-12-01``, ``2026-12-01T10:00``, with or without a zone: UTC), or
    a time ago: ``24h``, ``7d``, ``90m``.

    Raises:
        ConfigError: neither.
    """
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount),
                 "d": timedelta(days=amount)}[unit]
        return datetime.now(UTC) - delta
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a time: give an ISO time such as "
                          "2026-12-01T10:00 (UTC unless it has a zone) or an age such as "
                          "24h or 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

