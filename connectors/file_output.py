"""File output that stages chunks durably and publishes them all at once.

Staging lives beside the destination under a name readers skip, keyed by the
job id so a resumed job finds it again:

- one local CSV / JSON-lines file (gzip too): chunks are appended to
  ``.<name>.<job>.staging/data`` and fsynced; a receipt is the end offset, so a
  resume truncates whatever a crash half-wrote. Commit renames it into place.
- one local Parquet file: each chunk is a part file in the staging directory,
  and is also added to one merged file there as it comes; commit finishes that
  file and renames it into place. A resumed job merges the parts at commit.
- one object on a remote store (``s3://bucket/out.csv``): each chunk is a part
  object under the staging prefix; commit streams their concatenation (header
  and parts for CSV, merged row groups for Parquet) into the final key as one
  multipart upload (one PUT when smaller than a part), aborted if anything
  fails, so no partial object ever appears. No temporary key is copied into
  place (a copy of a big object). A process killed during the upload leaves an
  incomplete upload, invisible but stored until a bucket lifecycle rule
  (AbortIncompleteMultipartUpload) removes it; a resumed job uploads afresh.
- a directory (URI ending in ``/``, an existing directory or option
  ``layout=parts``): parts ``part-00000.<ext>`` are staged under
  ``<dir>/_temporary/<job>/``, moved into place on commit, and ``_SUCCESS`` (a
  JSON list of the parts) is written last. On an object store a move is a copy
  and a delete, and there are no directories to create (s3fs would even create
  a missing bucket), so staging on a remote store only ever writes objects.

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
import shutil
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import OutputRequest, Receipt
from connectors.errors import OutputError, OutputExistsError
from connectors.formats import (
    FileOptions,
    Format,
    delimiter_for,
    detect_format,
    encode_chunk,
    encode_header,
    parse_options,
    part_suffix,
    split_compression,
)
from connectors.storage import (
    is_local,
    is_missing_bucket,
    open_filesystem,
    storage_errors,
    write_whole,
)

SUCCESS = "_SUCCESS"
MIN_FREE_BYTES = 16 << 20  # a disk with less than this free cannot take an output
COPY_BLOCK = 8 << 20


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
    """One file or a directory of parts on any fsspec filesystem.

    Raises (from every method):
        ConnectorConfigError: bad options, or no format from option or extension.
        OutputExistsError: the destination exists and ``overwrite`` is not given.
        OutputError: writing failed.
        BucketNotFoundError, AccessDeniedError, AuthenticationError,
        ConnectionFailedError: the store refused or could not be reached
        (see :mod:`connectors.storage`); the message names bucket and key.
    """

    @staticmethod
    def check_options(options: Mapping[str, str]) -> None:
        parse_options(options, side="output")

    def __init__(self, request: OutputRequest) -> None:
        self.uri = request.uri
        options = parse_options(request.options, side="output")
        self._fs, path = open_filesystem(request.uri, options)
        delimiter = delimiter_for(path, options)
        self._options = options.model_copy(update={"delimiter": delimiter})
        self._local = is_local(self._fs)
        self._path = path.rstrip("/")
        if self._local:
            self._check_writable()
        with storage_errors(self.uri, doing="checking the destination", side="output"):
            kind = self._existing()
        self._dir_layout = (request.uri.endswith("/") or self._options.layout == "parts"
                            or kind == "directory")
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
        # one local Parquet file: chunks are also merged as they come (see _merge_chunk)
        self._merging = self._local and not self._dir_layout and self._format == "parquet"
        self._merged: pq.ParquetWriter | None = None
        self._overwrite = request.overwrite
        self._schema: pa.Schema | None = None
        self._receipts: list[Receipt] = []
        if kind is not None and not self._overwrite:
            with storage_errors(self.uri, doing="checking the destination", side="output"):
                self._check_destination()

    def _check_writable(self) -> None:
        """Raises OutputError: the destination's folder cannot hold the output (a file
        where a folder should be, no permission, no space), said before any work."""
        folder = posixpath.dirname(self._path)
        while folder and not os.path.exists(folder):
            folder = posixpath.dirname(folder)
        folder = folder or "."
        if not os.path.isdir(folder):
            raise OutputError(f"{self.uri}: {folder} is a file, not a folder: the output "
                              "cannot be written under it")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{self.uri}: {folder} cannot be written (permission denied); "
                              "choose another --output or fix the folder's permissions")
        free = shutil.disk_usage(folder).free
        if free < MIN_FREE_BYTES:
            raise OutputError(f"{self.uri}: no space left on the disk of {folder} "
                              f"({free:,} bytes free)")

    def _existing(self) -> str | None:
        """``"file"`` or ``"directory"`` when something is at the destination, else None."""
        self._fs.invalidate_cache(self._path)  # a listing cached earlier may be stale
        try:
            return self._fs.info(self._path)["type"]  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            if is_missing_bucket(exc):
                raise  # the bucket is missing: say so now, not at the first write
            return None

    def _check_destination(self) -> None:
        """Raises OutputExistsError: a file, or a directory holding data files, is there."""
        if self._dir_layout and not self._data_files():
            return
        raise OutputExistsError(f"{self.uri}: already exists; pass --overwrite to replace it")

    def _data_files(self) -> list[str]:
        return [p for p in self._fs.ls(self._path, detail=False, refresh=True)
                if not posixpath.basename(p).startswith(("_", "."))]

    def _staged(self) -> dict[str, int]:
        """Path and size of everything in the staging area, from one listing."""
        self._fs.invalidate_cache(self._staging)
        found = self._fs.find(self._staging, detail=True)
        return {p: info.get("size") or 0 for p, info in sorted(found.items())}

    # -- staging -----------------------------------------------------------------

    def start(self, schema: pa.Schema, *, resume: Sequence[Receipt] = ()) -> None:
        self._schema = schema
        with storage_errors(self.uri, doing="preparing the output", side="output"):
            if not resume:
                self._discard_staging()
            if self._local:  # object stores have no directories
                self._fs.makedirs(self._staging, exist_ok=True)
            self._receipts = list(resume)
            self._drop_after(len(resume))
        self._close_merged()
        # a resumed job merges at commit: its earlier merged file has no footer, and
        # merging the kept parts again for every resumption would cost more
        self._merging = self._merging and not resume

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
        staged = self._staged()
        for path in staged:
            name = posixpath.basename(path)
            if name.startswith("part-") and int(name[5:10]) >= kept:
                self._fs.rm(path)
        sizes = {posixpath.basename(p): size for p, size in staged.items()}
        for receipt in self._receipts:
            if sizes.get(receipt["part"]) != receipt["size"]:
                part = posixpath.join(self._staging, receipt["part"])
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
        with storage_errors(self.uri, doing=f"writing chunk {index}", side="output"):
            receipt = self._append_chunk(body) if self._append else self._part_chunk(index, body)
            if self._merging:
                self._merge_chunk(body, rows)
        receipt = {**receipt, "rows": rows, "crc32": zlib.crc32(body)}
        self._receipts.append(receipt)
        return receipt

    def _merged_path(self) -> str:
        return posixpath.join(self._staging, "merged.parquet")

    def _merge_chunk(self, body: bytes, rows: int) -> None:
        """Add a staged Parquet chunk to the one output file as well, so that commit
        only finishes and renames it (merging every part at the end took 27% of a
        5M-row job's time, on one core)."""
        if self._merged is None:
            self._merged = self._parquet_writer(self._merged_path())
        _copy_row_groups(pa.BufferReader(body), self._merged, rows)

    def _parquet_writer(self, out: Any) -> pq.ParquetWriter:
        assert self._schema is not None
        return pq.ParquetWriter(out, self._schema, compression="snappy")

    def _close_merged(self) -> None:
        if self._merged is not None:
            merged, self._merged = self._merged, None
            merged.close()

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
        with write_whole(self._fs, part) as f:
            f.write(body)
            if self._local:
                f.flush()
                os.fsync(f.fileno())
        return {"part": posixpath.basename(part), "size": len(body)}

    # -- publishing --------------------------------------------------------------

    def commit(self) -> None:
        if self._schema is None:
            raise OutputError(f"{self.uri}: commit() before start()")
        with storage_errors(self.uri, doing="publishing the output", side="output",
                            hint="the staged chunks are kept: run the job again with --resume"):
            if self._dir_layout:
                self._publish_parts()
            elif self._append:
                self._publish_appended()
            elif self._merging:
                self._publish_merged_chunks()
            elif self._local:
                self._publish_merged_local()
            else:
                with write_whole(self._fs, self._path) as out:
                    self._merge(out)
        # the output is published: a failed clean-up must not fail the job (the
        # staging area is hidden from readers and a new job with this id replaces it)
        with contextlib.suppress(Exception):  # botocore's errors are not all OSErrors
            self._discard_staging()

    def _publish_appended(self) -> None:
        data = self._data()
        if not self._receipts:  # no rows: the file is just the header
            with open(data, "wb") as f:
                if self._format == "csv":
                    f.write(encode_header(self._schema, self._options, gz=self._gz))
        os.replace(data, self._path)

    def _publish_merged_chunks(self) -> None:
        if self._merged is None:  # no rows
            self._merged = self._parquet_writer(self._merged_path())
            self._merged.write_table(self._schema.empty_table())  # type: ignore[union-attr]
        self._close_merged()
        merged = self._merged_path()
        with open(merged, "rb") as f:
            os.fsync(f.fileno())
        os.replace(merged, self._path)

    def _publish_merged_local(self) -> None:
        parent, name = posixpath.split(self._path)
        tmp = posixpath.join(parent, f".{name}.merging")
        with write_whole(self._fs, tmp) as out:
            self._merge(out)
        self._fs.mv(tmp, self._path)

    def _merge(self, out: Any) -> None:
        """Write the whole output to ``out``: the header and the parts, or one Parquet file."""
        if self._format == "parquet":
            self._merge_parquet(out)
            return
        if self._format == "csv":
            out.write(encode_header(self._schema, self._options, gz=self._gz))
        for receipt in self._receipts:
            part = posixpath.join(self._staging, receipt["part"])
            with self._fs.open(part, "rb", block_size=COPY_BLOCK) as f:
                while block := f.read(COPY_BLOCK):
                    out.write(block)

    def _merge_parquet(self, out: Any) -> None:
        assert self._schema is not None
        with self._parquet_writer(out) as writer:
            for receipt in self._receipts:
                with self._fs.open(posixpath.join(self._staging, receipt["part"])) as f:
                    _copy_row_groups(f, writer, receipt["rows"])
            if not self._receipts:
                writer.write_table(self._schema.empty_table())

    def _publish_parts(self) -> None:
        if self._overwrite:  # _SUCCESS first: readers that wait for it never see a mix
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(posixpath.join(self._path, SUCCESS))
            for old in self._data_files():
                self._fs.rm(old, recursive=True)
        parts = []
        for receipt in self._receipts:
            self._fs.mv(posixpath.join(self._staging, receipt["part"]),
                        posixpath.join(self._path, receipt["part"]))
            parts.append({k: receipt[k] for k in ("part", "rows", "size", "crc32")})
        if not parts:
            empty = self._part(0)
            body = encode_chunk(pa.RecordBatch.from_pylist([], schema=self._schema),
                                self._format, self._options, gz=self._gz, header=True)
            with write_whole(self._fs, posixpath.join(self._path, posixpath.basename(empty))) as f:
                f.write(body)
        with write_whole(self._fs, posixpath.join(self._path, SUCCESS)) as f:
            f.write(json.dumps({"parts": parts}, indent=1).encode())

    def published(self, schema: pa.Schema, receipts: Sequence[Receipt]) -> bool:
        """Whether a commit already put exactly these staged chunks at the destination
        (the job stopped before recording it): a directory's ``_SUCCESS`` lists them, or
        the file has their rows (Parquet) or their bytes (CSV, JSON lines), and nothing
        is left in the staging area to publish."""
        with storage_errors(self.uri, doing="checking the destination", side="output"):
            if self._dir_layout:
                return self._parts_published(receipts)
            self._fs.invalidate_cache(self._path)
            if not self._fs.exists(self._path):
                return False
            if self._append and os.path.exists(self._data()):
                return False  # the rename has not happened
            if self._format == "parquet":
                with self._fs.open(self._path, "rb") as f:
                    rows = pq.ParquetFile(f).metadata.num_rows
                return rows == sum(r["rows"] for r in receipts)  # type: ignore[no-any-return]
            size = self._fs.size(self._path)
            if self._append:
                expected = receipts[-1]["offset"] if receipts else None
            else:
                header = encode_header(schema, self._options, gz=self._gz) if (
                    self._format == "csv") else b""
                expected = len(header) + sum(r["size"] for r in receipts)
            return expected is None or size == expected

    def _parts_published(self, receipts: Sequence[Receipt]) -> bool:
        success = posixpath.join(self._path, SUCCESS)
        self._fs.invalidate_cache(self._path)
        if not self._fs.exists(success):
            return False
        listed = json.loads(self._fs.cat_file(success)).get("parts", [])
        wanted = [{k: r[k] for k in ("part", "rows", "size", "crc32")} for r in receipts]
        return bool(listed == wanted)

    def suspend(self) -> None:
        """Keep the staged chunks; a resumed job continues from them."""
        with contextlib.suppress(Exception):  # the merged file is not needed to resume
            self._close_merged()

    def abort(self) -> None:
        """Drop the staged chunks, best effort: the engine is already raising an error."""
        with contextlib.suppress(Exception):  # botocore's errors are not all OSErrors
            self._close_merged()
            self._discard_staging()

    def staging(self) -> str:
        return self._staging if self._local else self._fs.unstrip_protocol(self._staging)

    def staged_bytes(self) -> int:
        with storage_errors(self.uri, doing="listing the staged chunks", side="output"):
            if not self._fs.exists(self._staging):
                return 0
            return sum(self._staged().values())

    def discard_staging(self) -> None:
        with storage_errors(self.uri, doing="removing the staged chunks", side="output"):
            self._close_merged()
            self._discard_staging()

    def _discard_staging(self) -> None:
        if self._local and self._fs.exists(self._staging):
            self._fs.rm(self._staging, recursive=True)
        elif not self._local and (staged := self._staged()):
            self._fs.rm(list(staged))
        if self._dir_layout:
            temporary = posixpath.join(self._path, "_temporary")
            with contextlib.suppress(Exception):
                if self._fs.exists(temporary) and not self._fs.ls(temporary, detail=False):
                    self._fs.rm(temporary, recursive=True)


def _copy_row_groups(part: Any, writer: pq.ParquetWriter, rows: int) -> None:
    """Append the row groups of the Parquet file ``part`` (a staged chunk) to ``writer``."""
    staged = pq.ParquetFile(part)
    for i in range(staged.num_row_groups):
        writer.write_table(staged.read_row_group(i), row_group_size=max(1, rows))
