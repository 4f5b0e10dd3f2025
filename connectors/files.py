"""Files on any fsspec filesystem: local paths, ``file://``, ``s3://``, ``gs://``...

Intake reads one file, a directory/prefix (all parts in sorted order, skipping
names that start with ``_`` or ``.`` at any level below it, such as
``_SUCCESS`` and ``_temporary/``) or a glob, as CSV, Parquet or JSON lines,
gzip accepted. It streams: objects are opened with a bounded read-ahead block
and pyarrow parses them block by block, so no object is downloaded whole. Large
plain CSV files split into byte ranges (:mod:`connectors.ranges`) that scoring
workers read themselves, with the same storage options.
"""

from __future__ import annotations

import contextlib
import csv
import posixpath
from collections.abc import Iterator
from glob import has_magic
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import IntakeRequest, Progress
from connectors.chunks import rechunk
from connectors.error_rows import json_row, line_in_stream, snippet
from connectors.errors import ConnectorError, InputFormatError, SourceNotFoundError
from connectors.formats import (
    BLOCK_SIZE,
    check_csv_batch,
    csv_reader,
    delimiter_for,
    detect_format,
    json_reader,
    parse_options,
    split_compression,
    translate_arrow_error,
)
from connectors.ranges import CsvRange, plan_ranges
from connectors.row_groups import RowGroup, plan_row_groups
from connectors.storage import is_store_error, open_filesystem, storage_errors

READ_BLOCK = 8 << 20  # read-ahead per request on object stores: memory stays flat


def _check_unique(names: list[str], where: str) -> None:
    """Raises InputFormatError: a header names a column more than once."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise InputFormatError(f"{where}: the header names column {name!r} twice "
                                   f"(columns {seen[name] + 1} and {i + 1}); rename one")
        seen[name] = i


def _is_data_file(root: str, path: str) -> bool:
    """Whether ``path`` is data: no name below ``root`` (or its own name) is hidden."""
    rel = posixpath.relpath(path.rstrip("/"), root.rstrip("/")) if root else ""
    parts = [p for p in rel.split("/") if p not in ("", ".")] or [posixpath.basename(path)]
    return not any(p.startswith((".", "_")) for p in parts)


class FileIntake:
    """Streams record batches from one or more files of one format.

    Raises (from the constructor, ``schema`` and ``batches``):
        ConnectorConfigError: bad options, or no format from option or extension
            (its subclasses: credentials in the URI, an unknown scheme).
        SourceNotFoundError, BucketNotFoundError: nothing at the URI.
        AccessDeniedError, AuthenticationError: the store refused the read.
        ConnectionFailedError: the store could not be reached after retries.
        InputFormatError: the data cannot be parsed; names the file.
    """

    def __init__(self, request: IntakeRequest) -> None:
        self.uri = request.uri
        self._request = request
        self._options = parse_options(request.options, side="input")
        self._fs, path = open_filesystem(request.uri, self._options)
        with storage_errors(self.uri, doing="listing the input", side="input"):
            files = self._expand(path)
        self._paths = list(files)
        self._sizes = list(files.values())
        self._format = detect_format(self._paths[0], self._options)
        self._done_bytes = 0
        self._raw: Any = None
        self._rows = 0
        self._rows_total: int | None = None
        self._schema: pa.Schema | None = None
        self._open: Any = None  # (path, reader) opened by .schema, reused by .batches()

    def _expand(self, path: str) -> dict[str, int]:
        """Data files under ``path`` in sorted order, with their sizes (one listing)."""
        if has_magic(path):
            found = self._fs.glob(path, detail=True)
            root = ""
        else:
            info = self._fs.info(path)
            if info["type"] != "directory":
                return {path: info.get("size") or 0}
            found, root = self._fs.find(path, detail=True), path
        files = {p: i.get("size") or 0 for p, i in sorted(found.items())
                 if i["type"] == "file" and _is_data_file(root, p)}
        if not files:
            raise SourceNotFoundError(f"{self.uri}: no files match")
        return files

    def _where(self, path: str) -> str:
        return self._fs.unstrip_protocol(path) if "://" in self.uri else path

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._open = (self._paths[0], self._reader(self._paths[0]))
            self._schema = self._open[1].schema
        return self._schema

    def _stream(self, path: str) -> Any:
        self._raw = self._fs.open(path, "rb", block_size=READ_BLOCK)
        _, gz = split_compression(path, self._options)
        return pa.CompressedInputStream(self._raw, "gzip") if gz else self._raw

    def _reader(self, path: str) -> Any:
        where = self._where(path)
        with storage_errors(where, doing="opening the input", side="input"):
            try:
                reader = self._open_reader(path)
            except pa.ArrowInvalid as exc:
                self._explain(path, where)
                raise translate_arrow_error(exc, where, self._header(path),
                                            line=self._error_line(path, str(exc), 0)) from exc
            except (OSError, ValueError) as exc:
                if isinstance(exc, ConnectorError) or is_store_error(exc):
                    raise
                self._explain(path, where)
                raise InputFormatError(f"{where}: cannot read as {self._format}: {exc}") from exc
        _check_unique(reader.schema.names, where)
        return reader

    def _explain(self, path: str, where: str) -> None:
        """Raise the error that says what the file really is, when its first bytes say
        it: Parquet or gzip under a text name, or one long line with no line break."""
        if self._format == "parquet":
            return
        try:
            with self._fs.open(path, "rb") as f:
                head = f.read(4)
            size = self._fs.size(path)
        except OSError:
            return
        _, gz = split_compression(path, self._options)
        if head == b"PAR1":
            raise InputFormatError(f"{where}: this looks like Parquet, not {self._format}: "
                                   "pass --input-format parquet (or name it .parquet)")
        if head[:2] == b"\x1f\x8b" and not gz:
            raise InputFormatError(f"{where}: this looks gzip-compressed: name it "
                                   f"{posixpath.basename(path)}.gz or pass --input-option "
                                   "compression=gzip")
        if size and self._format == "csv" and not gz:
            with self._fs.open(path, "rb") as f:
                start = f.read(BLOCK_SIZE)
            if b"\n" not in start and b"\r" not in start:
                raise InputFormatError(f"{where}: no line break in its first "
                                       f"{len(start):,} bytes ({size:,} in all): a CSV file's "
                                       "header line ends with one; is this a CSV file?")

    def _open_reader(self, path: str) -> Any:
        if self._format == "parquet":
            # no pre-buffering: it holds a whole row group's column chunks (seen: 280 MB
            # for a 500k-row group) where streaming needs one batch at a time
            handle = self._fs.open(path, "rb", block_size=READ_BLOCK)
            file = pq.ParquetFile(handle, pre_buffer=False)
            names = set(file.schema_arrow.names)
            wanted = [c for c in self._request.dictionary_columns if c in names]
            if wanted:
                file = pq.ParquetFile(handle, pre_buffer=False, metadata=file.metadata,
                                      read_dictionary=wanted)
            self._rows_total = sum(
                pq.ParquetFile(self._fs.open(p, "rb")).metadata.num_rows for p in self._paths
            ) if len(self._paths) > 1 else file.metadata.num_rows
            return _ParquetReader(file, self._request.chunk_rows)
        if self._format == "jsonl":
            return json_reader(self._stream(path))
        text = list(self._request.text_columns)
        reader = csv_reader(self._stream(path), path, self._options, text)
        nulls = [f.name for f in reader.schema if pa.types.is_null(f.type)]
        if nulls:  # an all-empty first block says nothing of the type: read as text
            self._raw.close()
            reader = csv_reader(self._stream(path), path, self._options, text + nulls)
        return reader

    def _header(self, path: str) -> list[str]:
        """Column names from the first line, for errors raised before a schema exists."""
        if self._format != "csv":
            return []
        try:
            stream = self._stream(path)
            head = stream.read(1 << 16)
            self._raw.close()
        except (OSError, ValueError):
            return []
        first = head.decode(self._options.encoding, errors="replace").splitlines()[:1]
        delimiter = delimiter_for(path, self._options)
        return next(csv.reader(first, delimiter=delimiter), []) if first else []

    def _next_batch(self, path: str, reader: Any, done: int) -> pa.RecordBatch | None:
        """The next batch of ``path``, ``done`` rows of it read so far."""
        where = self._where(path)
        with storage_errors(where, doing="reading the input", side="input"):
            try:
                return reader.read_next_batch()  # type: ignore[no-any-return]
            except StopIteration:
                return None
            except pa.ArrowInvalid as exc:
                line = self._error_line(path, str(exc), done)
                raise translate_arrow_error(exc, where, reader.schema.names, line=line) from exc
            except OSError as exc:  # a broken gzip stream, a truncated file
                if isinstance(exc, ConnectorError) or is_store_error(exc):
                    raise
                raise InputFormatError(f"{where}: cannot read as {self._format}: {exc}") from exc

    def _error_line(self, path: str, message: str, done: int) -> int | None:
        """The file line of the row a parse error is about (found on error only): JSON
        errors count rows within the block, CSV errors quote the row."""
        if self._format == "jsonl":
            row = json_row(message)
            return None if row is None else done + row + 1
        text = snippet(message)
        if text is None:
            return None
        with contextlib.suppress(OSError, ValueError), self._fs.open(path, "rb") as raw:
            _, gz = split_compression(path, self._options)
            stream = pa.CompressedInputStream(raw, "gzip") if gz else raw
            return line_in_stream(stream, text)
        return None

    def _file_batches(self, path: str, reader: Any) -> Iterator[pa.RecordBatch]:
        done = 0
        while (batch := self._next_batch(path, reader, done)) is not None:
            done += batch.num_rows
            if self._format == "csv":
                check_csv_batch(batch, self._where(path), self._rows,
                                newlines_ok=self._options.newlines_in_values)
            if self._schema is not None and batch.schema != self._schema:
                batch = self._conform(batch, path)
            self._rows += batch.num_rows
            yield batch

    def _conform(self, batch: pa.RecordBatch, path: str) -> pa.RecordBatch:
        schema = self.schema
        try:
            return batch.select(schema.names).cast(schema)
        except (KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise InputFormatError(
                f"{self._where(path)}: columns {batch.schema.names} do not match the first file's "
                f"{schema.names}: {exc}"
            ) from exc

    def batches(self) -> Iterator[pa.RecordBatch]:
        _ = self.schema
        yield from rechunk(self._all_files(self._request.skip_rows), self._request.chunk_rows)

    def _all_files(self, skip: int) -> Iterator[pa.RecordBatch]:
        for i, path in enumerate(self._paths):
            rows = self._parquet_rows(path) if skip else None
            if rows is not None and rows <= skip:  # a whole part already done
                skip -= rows
                self._done_bytes += self._sizes[i]
                continue
            first = i == 0 and self._open is not None
            reader = self._open[1] if first else self._reader(path)
            for batch in self._file_batches(path, reader):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                yield batch.slice(skip) if skip else batch
                skip = 0
            self._done_bytes += self._sizes[i]
            self.close()

    def byte_ranges(self, target_bytes: int) -> list[CsvRange] | None:
        """Line-aligned byte ranges that workers can parse on their own, or None.

        Only plain CSV whose values do not span lines splits; the rest streams.
        Each range carries the options, so workers reach the store the same way.
        """
        if (self._format != "csv" or self._options.newlines_in_values
                or any(split_compression(p, self._options)[1] for p in self._paths)):
            return None
        schema = self.schema
        options = self._options.model_copy(
            update={"delimiter": delimiter_for(self._paths[0], self._options)})
        ranges: list[CsvRange] = []
        for path, size in zip(self._paths, self._sizes, strict=True):
            uri = self._fs.unstrip_protocol(path)
            with storage_errors(uri, doing="planning byte ranges", side="input"):
                cuts, newline = plan_ranges(self._fs, path, size, target_bytes)
            ranges.extend(CsvRange(uri, start, end, schema, options, newline)
                          for start, end in cuts)
        return ranges

    def partitions(self) -> list[RowGroup]:
        """Parquet row groups that workers can read on their own; empty when the input
        is not Parquet or has a row group above ``MAX_GROUP_ROWS`` rows (it streams)."""
        if self._format != "parquet" or any(
                split_compression(p, self._options)[1] for p in self._paths):
            return []
        return plan_row_groups(self._fs, self._paths, self.schema, self._options)

    def _parquet_rows(self, path: str) -> int | None:
        if self._format != "parquet":
            return None
        with storage_errors(self._where(path), doing="reading Parquet metadata", side="input"), \
                self._fs.open(path, "rb") as f:
            return pq.ParquetFile(f).metadata.num_rows  # type: ignore[no-any-return]

    def progress(self) -> Progress:
        current = 0
        if self._raw is not None:
            try:
                current = self._raw.tell()
            except (OSError, ValueError):
                current = 0
        return Progress(
            rows=self._rows,
            rows_total=self._rows_total,
            bytes=self._done_bytes + current,
            bytes_total=sum(self._sizes) or None,
        )

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


class _ParquetReader:
    def __init__(self, file: pq.ParquetFile, rows: int) -> None:
        self.schema = file.schema_arrow
        # decoded in this thread: scoring workers have the other cores, and a decoding
        # pool of its own made a 5M-row job slower (6.3 s against 6.0 s) and bigger
        self._it = file.iter_batches(batch_size=rows, use_threads=False)

    def read_next_batch(self) -> pa.RecordBatch:
        return next(self._it)
