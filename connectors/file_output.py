"""File output that stages chunks durably and publishes them all at once.

Staging lives beside the destination under a name readers skip, keyed by the
job id so a resumed job finds it again:

- one local CSV / JSON-lines file (gzip too): chunks are appended to
  ``.<name>.<job>.staging/data`` and fsynced; a receipt is the end offset, so a
  resume truncates whatever a crash half-wrote. Commit renames it into place.
- one Parquet file, or one file on a remote store: each chunk is a part file in
  the staging directory; commit merges them beside the destination and moves
  the result into place.
- a directory (URI ending in ``/``, an existing directory or option
  ``layout=parts``): parts ``part-00000.<ext>`` are staged under
  ``<dir>/_temporary/<job>/``, moved into place on commit, and ``_SUCCESS`` (a
  JSON list of the parts) is written last.

Every chunk is encoded on its own (CSV without header, gzip as one member per
chunk, Parquet one row group per chunk), so a resumed job writes the same
bytes as one that never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from connectors.base import OutputRequest, Receipt
from connectors.errors import OutputError
from connectors.files import filesystem
from connectors.formats import (
    FileOptions,
    Format,
    detect_format,
    encode_chunk,
    encode_header,
    parse_options,
    part_suffix,
    split_compression,
)

SUCCESS = "_SUCCESS"


@dataclass(frozen=True, slots=True)
class ChunkEncoder:
    """Encodes one chunk for a file output; runs in scoring workers to spread the cost."""

    format: Format
    options: FileOptions
    gz: bool
    header: bool

    def __call__(self, batch: pa.RecordBatch) -> bytes:
        return encode_chunk(batch, self.format, self.options, gz=self.gz, header=self.header)
_JOB_ID = re.compile(r"[^A-Za-z0-9._-]")


class FileOutput:
    """One file or a directory of parts on any fsspec filesystem."""

    def __init__(self, request: OutputRequest) -> None:
        self.uri = request.uri
        options = parse_options(request.options, side="output")
        self._fs, path = filesystem(request.uri)
        delimiter = options.delimiter or ("\t" if ".tsv" in path.lower() else ",")
        self._options = options.model_copy(update={"delimiter": delimiter})
        self._local = isinstance(self._fs, LocalFileSystem)
        self._dir_layout = (request.uri.endswith("/") or self._options.layout == "parts"
                            or (self._fs.exists(path) and self._fs.isdir(path)))
        self._path = path.rstrip("/")
        self._format = detect_format(self._path if not self._dir_layout else
                                     f"x.{self._options.format or 'csv'}", self._options)
        _, self._gz = split_compression(self._path, self._options)
        if self._dir_layout:
            self._gz = self._options.compression == "gzip"
        job = _JOB_ID.sub("_", request.job_id)
        parent, name = posixpath.split(self._path)
        if self._dir_layout:
            self._staging = posixpath.join(self._path, "_temporary", job)
        else:
            self._staging = posixpath.join(parent, f".{name}.{job}.staging")
        self._append = self._local and not self._dir_layout and self._format != "parquet"
        self._overwrite = request.overwrite
        self._schema: pa.Schema | None = None
        self._receipts: list[Receipt] = []
        self._check_destination()

    def _check_destination(self) -> None:
        if self._overwrite or not self._fs.exists(self._path):
            return
        if self._dir_layout and not self._data_files():
            return
        raise OutputError(f"{self.uri}: already exists; pass --overwrite to replace it")

    def _data_files(self) -> list[str]:
        return [p for p in self._fs.ls(self._path, detail=False)
                if not posixpath.basename(p).startswith(("_", "."))]

    # -- staging -----------------------------------------------------------------

    def start(self, schema: pa.Schema, *, resume: Sequence[Receipt] = ()) -> None:
        self._schema = schema
        try:
            if not resume:
                self._discard_staging()
            self._fs.makedirs(self._staging, exist_ok=True)
            self._receipts = list(resume)
            self._drop_after(len(resume))
        except OSError as exc:
            raise OutputError(f"{self.uri}: cannot prepare the output: {exc}") from exc

    def _data(self) -> str:
        return posixpath.join(self._staging, "data")

    def _part(self, index: int) -> str:
        return posixpath.join(self._staging, f"part-{index:05d}{self._suffix()}")

    def _suffix(self) -> str:
        return part_suffix(self._format, self._gz)

    def _drop_after(self, kept: int) -> None:
        """Forget anything staged after the first ``kept`` chunks."""
        if self._append:
            end = self._receipts[-1]["offset"] if self._receipts else 0
            data = self._data()
            if not os.path.exists(data) or os.path.getsize(data) < end:
                if kept:
                    raise OutputError(f"{self.uri}: staged data {data} is missing or shorter "
                                      "than the job manifest says; start the job afresh")
                end = 0
            with open(data, "ab") as f:
                f.truncate(end)
            if kept:
                self._verify_last(data)
            return
        for path in self._fs.ls(self._staging, detail=False):
            name = posixpath.basename(path)
            if name.startswith("part-") and int(name[5:10]) >= kept:
                self._fs.rm(path)
        for receipt in self._receipts:
            part = posixpath.join(self._staging, receipt["part"])
            if not self._fs.exists(part) or self._fs.size(part) != receipt["size"]:
                raise OutputError(f"{self.uri}: staged part {part} is missing or damaged; "
                                  "start the job afresh")

    def _verify_last(self, data: str) -> None:
        last = self._receipts[-1]
        start = self._receipts[-2]["offset"] if len(self._receipts) > 1 else last["start"]
        with open(data, "rb") as f:
            f.seek(start)
            if zlib.crc32(f.read(last["offset"] - start)) != last["crc32"]:
                raise OutputError(f"{self.uri}: staged data {data} does not match the job "
                                  "manifest's checksum; start the job afresh")

    def encoder(self) -> ChunkEncoder:
        """Turns a chunk into the bytes :meth:`write_encoded` stages (picklable)."""
        header = self._dir_layout and self._format == "csv"
        return ChunkEncoder(self._format, self._options, self._gz, header)

    def write(self, index: int, batch: pa.RecordBatch) -> Receipt:
        return self.write_encoded(index, self.encoder()(batch), batch.num_rows)

    def write_encoded(self, index: int, body: bytes, rows: int) -> Receipt:
        """Stage chunk ``index`` already encoded by :meth:`encoder` (in any process)."""
        if self._schema is None:
            raise OutputError(f"{self.uri}: write() before start()")
        if index != len(self._receipts):
            raise OutputError(f"{self.uri}: chunk {index} out of order "
                              f"(expected {len(self._receipts)})")
        try:
            receipt = self._append_chunk(body) if self._append else self._part_chunk(index, body)
        except OSError as exc:
            raise OutputError(f"{self.uri}: cannot write chunk {index}: {exc}") from exc
        receipt = {**receipt, "rows": rows, "crc32": zlib.crc32(body)}
        self._receipts.append(receipt)
        return receipt

    def _append_chunk(self, body: bytes) -> dict[str, Any]:
        data = self._data()
        with open(data, "ab") as f:
            start = f.tell()
            if start == 0 and self._format == "csv":
                f.write(encode_header(self._schema, self._options, gz=self._gz))
                start = f.tell()
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
            return {"start": start, "offset": f.tell()}

    def _part_chunk(self, index: int, body: bytes) -> dict[str, Any]:
        part = self._part(index)
        with self._fs.open(part, "wb") as f:
            f.write(body)
            if self._local:
                f.flush()
                os.fsync(f.fileno())
        return {"part": posixpath.basename(part), "size": len(body)}

    # -- publishing --------------------------------------------------------------

    def commit(self) -> None:
        if self._schema is None:
            raise OutputError(f"{self.uri}: commit() before start()")
        try:
            if self._dir_layout:
                self._publish_parts()
            elif self._append:
                self._publish_appended()
            else:
                self._publish_merged()
        except OSError as exc:
            raise OutputError(f"{self.uri}: cannot publish the output: {exc}; the staged "
                              "chunks are kept, run the job again with --resume") from exc
        self._discard_staging()

    def _publish_appended(self) -> None:
        data = self._data()
        if not self._receipts:  # no rows: the file is just the header
            with open(data, "wb") as f:
                if self._format == "csv":
                    f.write(encode_header(self._schema, self._options, gz=self._gz))
        os.replace(data, self._path)

    def _publish_merged(self) -> None:
        parent, name = posixpath.split(self._path)
        tmp = posixpath.join(parent, f".{name}.merging")
        with self._fs.open(tmp, "wb") as out:
            if self._format == "parquet":
                self._merge_parquet(out)
            else:
                if self._format == "csv":
                    out.write(encode_header(self._schema, self._options, gz=self._gz))
                for receipt in self._receipts:
                    with self._fs.open(posixpath.join(self._staging, receipt["part"])) as f:
                        while block := f.read(8 << 20):
                            out.write(block)
        self._fs.mv(tmp, self._path)

    def _merge_parquet(self, out: Any) -> None:
        assert self._schema is not None
        with pq.ParquetWriter(out, self._schema, compression="snappy") as writer:
            for receipt in self._receipts:
                with self._fs.open(posixpath.join(self._staging, receipt["part"])) as f:
                    part = pq.ParquetFile(f)
                    for i in range(part.num_row_groups):
                        writer.write_table(part.read_row_group(i),
                                           row_group_size=max(1, receipt["rows"]))
            if not self._receipts:
                writer.write_table(self._schema.empty_table())

    def _publish_parts(self) -> None:
        if self._overwrite:
            for old in self._data_files():
                self._fs.rm(old, recursive=True)
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(posixpath.join(self._path, SUCCESS))
        parts = []
        for receipt in self._receipts:
            self._fs.mv(posixpath.join(self._staging, receipt["part"]),
                        posixpath.join(self._path, receipt["part"]))
            parts.append({k: receipt[k] for k in ("part", "rows", "size", "crc32")})
        if not parts:
            empty = self._part(0)
            body = encode_chunk(pa.RecordBatch.from_pylist([], schema=self._schema),
                                self._format, self._options, gz=self._gz, header=True)
            with self._fs.open(posixpath.join(self._path, posixpath.basename(empty)), "wb") as f:
                f.write(body)
        with self._fs.open(posixpath.join(self._path, SUCCESS), "w") as f:
            f.write(json.dumps({"parts": parts}, indent=1))

    def suspend(self) -> None:
        """Keep the staged chunks; a resumed job continues from them."""

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._discard_staging()

    def _discard_staging(self) -> None:
        if self._fs.exists(self._staging):
            self._fs.rm(self._staging, recursive=True)
        if self._dir_layout:
            temporary = posixpath.join(self._path, "_temporary")
            with contextlib.suppress(OSError):
                if self._fs.exists(temporary) and not self._fs.ls(temporary, detail=False):
                    self._fs.rm(temporary, recursive=True)
