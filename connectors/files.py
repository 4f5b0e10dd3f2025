"""Files on any fsspec filesystem: local paths, ``file://``, ``s3://``, ``gs://``...

Intake reads one file, a directory/prefix (all parts in sorted order) or a
glob, as CSV, Parquet or JSON lines, gzip accepted, streaming. Output writes
one file beside its final name and renames it into place on commit, so a
failed job leaves nothing where results are read.
"""

from __future__ import annotations

import csv
import posixpath
from collections.abc import Iterator
from glob import has_magic
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from connectors.base import IntakeRequest, Progress
from connectors.chunks import rechunk
from connectors.errors import (
    ConnectorError,
    InputFormatError,
    SourceNotFoundError,
    UnknownSchemeError,
)
from connectors.formats import (
    check_csv_batch,
    csv_reader,
    detect_format,
    json_reader,
    parse_options,
    split_compression,
    translate_arrow_error,
)
from connectors.ranges import CsvRange, plan_ranges

_HINTS = {"s3": "pip install s3fs", "gs": "pip install gcsfs", "gcs": "pip install gcsfs"}


def filesystem(uri: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """``url_to_fs`` with an install hint when the protocol's package is missing."""
    try:
        return url_to_fs(uri, **storage_options)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        scheme = uri.partition("://")[0]
        hint = _HINTS.get(scheme)
        if hint or "Protocol not known" in str(exc):
            extra = f"; install it with: {hint}" if hint else ""
            raise UnknownSchemeError(f"{uri}: no filesystem for '{scheme}://'{extra}") from exc
        raise


def _default_delimiter(path: str) -> str:
    return "\t" if ".tsv" in path.lower() else ","


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path.rstrip("/"))
    return not name.startswith((".", "_"))


class FileIntake:
    """Streams record batches from one or more files of one format."""

    def __init__(self, request: IntakeRequest) -> None:
        self.uri = request.uri
        self._request = request
        self._options = parse_options(request.options, side="input")
        self._fs, path = filesystem(request.uri)
        self._paths = self._expand(path)
        self._sizes = [self._fs.size(p) or 0 for p in self._paths]
        self._format = detect_format(self._paths[0], self._options)
        self._done_bytes = 0
        self._raw: Any = None
        self._rows = 0
        self._rows_total: int | None = None
        self._schema: pa.Schema | None = None
        self._open: Any = None  # (path, reader) opened by .schema, reused by .batches()

    def _expand(self, path: str) -> list[str]:
        if has_magic(path):
            paths = sorted(p for p in self._fs.glob(path) if _is_data_file(p))
        elif self._fs.isdir(path):
            paths = sorted(
                p for p in self._fs.find(path) if _is_data_file(p) and not self._fs.isdir(p)
            )
        elif self._fs.exists(path):
            paths = [path]
        else:
            raise SourceNotFoundError(f"{self.uri}: no such file")
        if not paths:
            raise SourceNotFoundError(f"{self.uri}: no files match")
        return paths

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._open = (self._paths[0], self._reader(self._paths[0]))
            self._schema = self._open[1].schema
        return self._schema

    def _stream(self, path: str) -> Any:
        self._raw = self._fs.open(path, "rb")
        _, gz = split_compression(path, self._options)
        return pa.CompressedInputStream(self._raw, "gzip") if gz else self._raw

    def _reader(self, path: str) -> Any:
        try:
            if self._format == "parquet":
                file = pq.ParquetFile(self._fs.open(path, "rb"))
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
        except pa.ArrowInvalid as exc:
            raise translate_arrow_error(exc, path, self._header(path)) from exc
        except (OSError, ValueError) as exc:
            if isinstance(exc, ConnectorError):
                raise
            raise InputFormatError(f"{path}: cannot read as {self._format}: {exc}") from exc

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
        delimiter = self._options.delimiter or _default_delimiter(path)
        return next(csv.reader(first, delimiter=delimiter), []) if first else []

    def _file_batches(self, path: str, reader: Any) -> Iterator[pa.RecordBatch]:
        header = reader.schema.names
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise translate_arrow_error(exc, path, header) from exc
            if self._format == "csv":
                check_csv_batch(batch, path, self._rows,
                                newlines_ok=self._options.newlines_in_values)
            if self._schema is not None and batch.schema != self._schema:
                batch = self._conform(batch, path)
            self._rows += batch.num_rows
            yield batch

    def _conform(self, batch: pa.RecordBatch, path: str) -> pa.RecordBatch:
        try:
            return batch.select(self._schema.names).cast(self._schema)
        except (KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise InputFormatError(
                f"{path}: columns {batch.schema.names} do not match the first file's "
                f"{self._schema.names}: {exc}"
            ) from exc

    def batches(self) -> Iterator[pa.RecordBatch]:
        _ = self.schema
        skip = self._request.skip_rows

        def all_files() -> Iterator[pa.RecordBatch]:
            nonlocal skip
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
                if self._raw is not None:
                    self._raw.close()
                    self._raw = None

        yield from rechunk(all_files(), self._request.chunk_rows)

    def partitions(self, target_bytes: int) -> list[CsvRange] | None:
        """Line-aligned byte ranges that workers can parse on their own, or None.

        Only plain CSV whose values do not span lines splits; the rest streams.
        """
        if (self._format != "csv" or self._options.newlines_in_values
                or any(split_compression(p, self._options)[1] for p in self._paths)):
            return None
        schema = self.schema
        options = self._options.model_copy(
            update={"delimiter": self._options.delimiter or _default_delimiter(self._paths[0])})
        ranges = []
        for path, size in zip(self._paths, self._sizes, strict=True):
            uri = self._fs.unstrip_protocol(path)
            for start, end in plan_ranges(self._fs, path, size, target_bytes):
                ranges.append(CsvRange(uri, start, end, schema, options))
        return ranges

    def _parquet_rows(self, path: str) -> int | None:
        if self._format != "parquet":
            return None
        with self._fs.open(path, "rb") as f:
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
        self._it = file.iter_batches(batch_size=rows)

    def read_next_batch(self) -> pa.RecordBatch:
        return next(self._it)
