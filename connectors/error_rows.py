"""Where in the file a parse error is: the line of the offending row.

pyarrow's parse errors count rows from the start of the block (or byte range)
being parsed, or not at all, and quote the raw row (with the lines after it).
These helpers find the row's line in the whole file, on error only, so the
message can name it and leave the raw text out.
"""

from __future__ import annotations

import re
from typing import IO

_SNIPPET = re.compile(r"(?:got \d+|column #?\d+[^:]*): (.+)", re.DOTALL)
_JSON_ROW = re.compile(r" in row (\d+)")
_ROW_NO = re.compile(r"Row #\d+: ")
SCAN = 1 << 20


def snippet(message: str) -> bytes | None:
    """The first line of the raw row a CSV parse error quotes (None: it quotes none)."""
    found = _SNIPPET.search(message)
    if not found:
        return None
    first = found.group(1).split("\n", 1)[0].strip()
    return first.encode() if len(first) >= 3 else None


def without_row(message: str) -> str:
    """``message`` without the raw row it quotes (and the lines after it), and without
    pyarrow's row number (counted within the block, not the file)."""
    found = _SNIPPET.search(message)
    short = message[:found.start(1) - 2] if found else message
    return _ROW_NO.sub("", short)


def json_row(message: str) -> int | None:
    """The row (0-based, within the block) a JSON parse error names."""
    found = _JSON_ROW.search(message)
    return int(found.group(1)) if found else None


def without_json_row(message: str) -> str:
    return _JSON_ROW.sub("", message).rstrip(". ")


def line_in(data: bytes, text: bytes, newline: bytes = b"\n") -> int | None:
    """The 1-based line of ``data`` where ``text`` starts (None: not found)."""
    at = data.find(text)
    return None if at < 0 else data.count(newline, 0, at) + 1


def line_in_stream(stream: IO[bytes], text: bytes, newline: bytes = b"\n") -> int | None:
    """:func:`line_in` over a stream read in blocks (for a whole file)."""
    lines = 0
    tail = b""
    while block := stream.read(SCAN):
        data = tail + block
        at = data.find(text)
        if at >= 0:
            return lines + data.count(newline, 0, at) + 1
        keep = len(text) - 1
        cut = len(data) - keep if keep > 0 else len(data)
        lines += data.count(newline, 0, cut)
        tail = data[cut:]
    return None


def lines_before(stream: IO[bytes], end: int, newline: bytes = b"\n") -> int:
    """How many line ends the first ``end`` bytes of ``stream`` hold."""
    count = 0
    left = end
    while left > 0 and (block := stream.read(min(SCAN, left))):
        count += block.count(newline)
        left -= len(block)
    return count
