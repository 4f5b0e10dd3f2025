"""Byte-range partitions of CSV files, read in whichever process scores them.

A large CSV file is cut at line breaks into ranges of about ``target`` bytes.
Each range carries everything needed to parse it on its own (the URI, the
column names and types fixed from the file's start, the format options), so
scoring workers parse in parallel and the rows never travel between
processes. Cuts depend only on the file and ``target``, so a resumed job sees
the same ranges. Only plain (not gzip) CSV whose values do not span lines can
be cut this way; other inputs stream.

The options in a range include the storage options (endpoint, profile,
region...), so a worker process reaches the store as the intake did; a range
is fetched with one ranged request of exactly its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

from connectors.error_rows import line_in, lines_before, snippet
from connectors.formats import FileOptions, check_csv_batch, translate_arrow_error
from connectors.storage import open_filesystem, storage_errors

SCAN = 1 << 16


@dataclass(frozen=True, slots=True)
class CsvRange:
    """Rows of one CSV file between two byte offsets (``start`` at a line start).

    Picklable: it travels to scoring workers, which call :meth:`read`.
    """

    uri: str
    start: int
    end: int
    schema: pa.Schema
    options: FileOptions
    newline: bytes = b"\n"  # what ends a line: b"\r" in a file of old-Mac line ends

    @property
    def size(self) -> int:
        return self.end - self.start

    def where(self) -> str:
        return f"{self.uri} (bytes {self.start:,}-{self.end:,})"

    def read(self) -> pa.RecordBatch:
        """Parse the range with the file's column names and types.

        Raises:
            InputFormatError: unparsable rows; the message names the byte range.
            SourceNotFoundError, AccessDeniedError, ConnectionFailedError, ReadError:
                the store failed to serve the range (see :mod:`connectors.storage`).
        """
        fs, path = open_filesystem(self.uri, self.options)
        with storage_errors(self.uri, doing=f"reading bytes {self.start:,}-{self.end:,}",
                            side="input"):
            data = fs.cat_file(path, start=self.start, end=self.end)
        names = self.schema.names
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=names, use_threads=False,
                                              encoding=self.options.encoding,
                                              block_size=max(1 << 20, self.size + 1)),
                parse_options=pcsv.ParseOptions(delimiter=self.options.delimiter or ",",
                                                quote_char=self.options.quotechar),
                convert_options=pcsv.ConvertOptions(
                    column_types={f.name: f.type for f in self.schema},
                    strings_can_be_null=True),
            )
        except pa.ArrowInvalid as exc:
            shown = self.uri.removeprefix("file://")
            raise translate_arrow_error(exc, shown, names, line=self._line(fs, path, data,
                                                                         str(exc))) from exc
        batches = table.combine_chunks().to_batches()
        batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=self.schema)
        # one row per line means no value spans lines: skip the per-value search for one
        lines = data.count(self.newline) + (1 if data and not data.endswith(self.newline) else 0)
        check_csv_batch(batch, self.where(), 0, newlines_ok=batch.num_rows == lines)
        return batch

    def _line(self, fs: Any, path: str, data: bytes, message: str) -> int | None:
        """The file line of the row a parse error quotes: the lines before this range
        (counted now, on error only) and the row's line within it."""
        text = snippet(message)
        within = line_in(data, text, self.newline) if text else None
        if within is None:
            return None
        with fs.open(path, "rb") as f:
            return lines_before(f, self.start, self.newline) + within


def header_end(fs: Any, path: str) -> tuple[int, bytes] | None:
    """Offset just past the header line and what ends lines in the file (``\n``, which
    CRLF lines end with too, or a lone ``\r``); None when there is no line break."""
    with fs.open(path, "rb", block_size=SCAN) as f:
        offset = 0
        while block := f.read(SCAN):
            n, r = block.find(b"\n"), block.find(b"\r")
            if r >= 0 and (n < 0 or r < n):  # a CR first: CRLF, or CR alone
                after = block[r + 1:r + 2] or f.read(1)
                if after != b"\n":
                    return offset + r + 1, b"\r"
                return offset + r + 2, b"\n"
            if n >= 0:
                return offset + n + 1, b"\n"
            offset += len(block)
    return None


def plan_ranges(fs: Any, path: str, size: int, target: int
                ) -> tuple[list[tuple[int, int]], bytes]:
    """Cut ``path`` after its header into line-aligned ranges of about ``target`` bytes;
    also what ends its lines."""
    found = header_end(fs, path)
    if found is None or found[0] >= size:
        return [], b"\n"
    start, newline = found
    cuts = [start]
    # small read-ahead: each cut costs one small ranged read, not a large block
    with fs.open(path, "rb", block_size=SCAN) as f:
        pos = start + target
        while pos < size:
            f.seek(pos)
            block = f.read(SCAN)
            while block and newline not in block:
                more = f.read(SCAN)
                if not more:
                    break
                block += more
            i = block.find(newline)
            if i < 0:
                break
            cut = pos + i + 1
            if cut >= size:
                break
            cuts.append(cut)
            pos = cut + target
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True)), newline
