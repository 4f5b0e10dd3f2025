"""File formats (CSV, Parquet, JSON lines) and their options.

Readers and writers stream: pyarrow's CSV and JSON streaming readers, Parquet
row-group iteration, and incremental writers, so memory does not grow with the
input.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq
from pydantic import ConfigDict, Field, ValidationError

from connectors.error_rows import without_json_row, without_row
from connectors.errors import ConnectorConfigError, InputFormatError, config_error
from connectors.storage import StorageOptions

Format = Literal["csv", "parquet", "jsonl"]
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
BLOCK_SIZE = 4 << 20


class FileOptions(StorageOptions):
    """Options for file intake and output (``--input-option KEY=VALUE``).

    The storage options (endpoint, profile, region...) come from :class:`StorageOptions`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Format | None = Field(default=None, description="csv, parquet or jsonl; "
                                  "default from the file extension.")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="CSV field delimiter (default ',' or tab for .tsv).")
    quotechar: str = Field(default='"', min_length=1, max_length=1, description="CSV quote.")
    encoding: str = Field(default="utf-8", description="CSV text encoding.")
    compression: Literal["infer", "gzip", "none"] = Field(
        default="infer", description="gzip from a .gz suffix unless given.")
    layout: Literal["file", "parts"] = Field(
        default="file", description="Output: one file, or a directory of part files "
        "(also chosen by a URI ending in '/' or an existing directory).")
    newlines_in_values: bool = Field(
        default=False, description="CSV: quoted values may span lines. Off, a value with a "
        "line break means a broken quote and fails the read instead of swallowing rows.")


def parse_options(options: Mapping[str, str], *, side: str) -> FileOptions:
    """Validate ``KEY=VALUE`` options.

    Raises:
        ConnectorConfigError: naming the first bad key (``side`` says whose: input or
            output) and listing the known ones; values are never echoed.
    """
    try:
        return FileOptions.model_validate(dict(options))
    except ValidationError as exc:
        # the chain is safe: StorageOptions hides the input in its errors
        raise config_error(exc, f"{side} option '{{field}}'",
                           known_options=FileOptions.model_fields) from exc


def split_compression(path: str, options: FileOptions) -> tuple[str, bool]:
    """The path without ``.gz`` and whether it is gzip-compressed."""
    gz = path.lower().endswith(".gz")
    stem = path[:-3] if gz else path
    if options.compression == "gzip":
        return stem, True
    if options.compression == "none":
        return path, False
    return stem, gz


def detect_format(path: str, options: FileOptions) -> Format:
    """The ``format`` option, else the format the extension names.

    Raises:
        ConnectorConfigError: no option and an extension that names no format.
    """
    if options.format:
        return options.format
    stem, _ = split_compression(path, options)
    for ext, fmt in _EXTENSIONS.items():
        if stem.lower().endswith(ext):
            return fmt
    raise ConnectorConfigError(
        f"{path}: cannot tell the format from the extension; pass --input-format/"
        "--output-format (csv, parquet or jsonl)"
    )


def delimiter_for(path: str, options: FileOptions) -> str:
    """The CSV delimiter of ``path``: the ``delimiter`` option, else a tab for ``.tsv``
    files and a comma for any other (the one place this default lives)."""
    if options.delimiter:
        return options.delimiter
    return "\t" if ".tsv" in path.lower() else ","


def csv_reader(
    stream: IO[bytes], path: str, options: FileOptions, text_columns: Sequence[str]
) -> Any:
    """A streaming CSV reader; columns typed null by the first block are read as text."""
    read = pcsv.ReadOptions(block_size=BLOCK_SIZE, encoding=options.encoding)
    parse = pcsv.ParseOptions(delimiter=delimiter_for(path, options), quote_char=options.quotechar,
                              newlines_in_values=options.newlines_in_values)
    types = {c: pa.string() for c in text_columns}
    convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    return pcsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)


def check_csv_batch(
    batch: pa.RecordBatch, path: str, rows_before: int, *, newlines_ok: bool = False
) -> None:
    """Fail on what the CSV parser lets through silently.

    A text value with a line break (when values may not span lines) means an
    unterminated quote that swallowed the rows after it; bytes that are not
    UTF-8 make pyarrow type a column as binary.
    """
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            raise InputFormatError(
                f"{path}: bytes that are not valid UTF-8 in column '{name}'; pass --encoding "
                "with the file's encoding (for example --encoding latin-1)"
            )
        if not newlines_ok and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            hits = pc.match_substring(col, "\n")
            if pc.any(hits).as_py():
                first = pc.index(hits, True).as_py()
                row = rows_before + first + 1
                raise InputFormatError(
                    f"{path}: column '{name}' at data row {row:,} has a quote that is never "
                    "closed (the value runs across lines); fix the quoting, or pass "
                    "--input-option newlines_in_values=true if values really span lines"
                )


def json_reader(stream: IO[bytes]) -> Any:
    return pjson.open_json(stream, read_options=pjson.ReadOptions(block_size=BLOCK_SIZE))


_COLUMN_NO = re.compile(r"In CSV column #(\d+): ")


def translate_arrow_error(
    exc: Exception, path: str, header: Sequence[str] = (), *, line: int | None = None
) -> InputFormatError:
    """Turn a pyarrow parse error into a message that names the file, the line (when the
    caller found it: see :mod:`connectors.error_rows`) and the fix, without the raw row."""
    msg = str(exc).strip()
    at = f" at line {line:,}" if line is not None else ""
    m = _COLUMN_NO.search(msg)
    column = ""
    if m:
        idx = int(m.group(1))
        column = f"column '{header[idx]}'" if idx < len(header) else f"column #{idx}"
        msg = _COLUMN_NO.sub("", msg)
    if "Empty CSV file" in msg or msg.startswith("Empty"):
        return InputFormatError(f"{path}: the file is empty (no header, no rows)")
    if "invalid UTF8" in msg or "UTF-8" in msg or "decode" in msg.lower():
        where = f" in {column}" if column else ""
        return InputFormatError(
            f"{path}: bytes that are not valid UTF-8{where}; pass --encoding with the file's "
            "encoding (for example --encoding latin-1)"
        )
    if "CSV parse error" in msg:
        return InputFormatError(
            f"{path}: {without_row(msg)}{at}; check the delimiter (--delimiter) and quoting "
            "(--quotechar)"
        )
    if "JSON parse error" in msg or "JSON" in msg:
        return InputFormatError(f"{path}: {without_json_row(msg)}{at}")
    if "conversion error" in msg:
        where = f"{column}: " if column else ""
        return InputFormatError(
            f"{path}: {where}{msg}; the column's type was inferred from the first rows"
        )
    return InputFormatError(f"{path}: cannot read{at}: {without_row(msg)}")


def part_suffix(fmt: Format, gz: bool) -> str:
    ext = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl"}[fmt]
    return ext + (".gz" if gz and fmt != "parquet" else "")


def _gzip(data: bytes, gz: bool) -> bytes:
    # mtime=0: the same rows always give the same bytes, so a resumed job's output
    # is identical to an uninterrupted one's
    return gzip.compress(data, compresslevel=6, mtime=0) if gz else data


def _csv_options(options: FileOptions, header: bool) -> pcsv.WriteOptions:
    return pcsv.WriteOptions(include_header=header, delimiter=options.delimiter or ",",
                             quoting_style="needed")


def encode_header(schema: pa.Schema, options: FileOptions, *, gz: bool) -> bytes:
    """The CSV header line for ``schema``."""
    buf = pa.BufferOutputStream()
    pcsv.write_csv(schema.empty_table(), buf, write_options=_csv_options(options, True))
    return _gzip(buf.getvalue().to_pybytes(), gz)


def encode_chunk(
    batch: pa.RecordBatch, fmt: Format, options: FileOptions, *, gz: bool, header: bool
) -> bytes:
    """One chunk as self-contained bytes (a gzip member, a Parquet file with one row group)."""
    if fmt == "parquet":
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_batches([batch]), buf, compression="snappy",
                       row_group_size=max(1, batch.num_rows))
        return buf.getvalue().to_pybytes()  # type: ignore[no-any-return]
    if fmt == "jsonl":
        # row by row, but exact: floats keep their shortest round-trip spelling
        lines = [json.dumps(row, default=str, allow_nan=False) for row in batch.to_pylist()]
        return _gzip("".join(line + "\n" for line in lines).encode("utf-8"), gz)
    buf = pa.BufferOutputStream()
    if batch.num_rows or header:
        pcsv.write_csv(batch, buf, write_options=_csv_options(options, header))
    return _gzip(buf.getvalue().to_pybytes(), gz)
