"""Local files replaced whole and durably: a reader sees the old file or the new one.

The one rule for every small record batchpred keeps on a local disk (job records,
deployments, kept ONNX conversions): write a temporary file beside the target,
fsync it, rename it over the target, then fsync the folder so the rename itself
survives a power cut (:func:`write_atomic`; :func:`open_atomic` for a file written
in pieces). A log that only grows (a deployment's history) is appended
to one line at a time instead, each fsynced (:func:`append_line`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), creating its folder.

    Raises:
        OSError: the folder cannot be created or written; ``path`` is unchanged.
    """
    body = data.encode("utf-8") if isinstance(data, str) else data
    with open_atomic(path) as f:
        f.write(body)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through, for what is written in pieces: it replaces
    ``path`` when the block exits cleanly, and is removed when it raises (``path`` is
    then unchanged). Its folder is created.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per writing process
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` (and a newline) to ``path``, durably: flushed and fsynced before this
    returns. A last line that a crash cut short is ended first, so it stays one torn line
    that readers skip instead of swallowing this one.

    Raises:
        OSError: the folder cannot be created or the file written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:  # appends whatever the position; reads from it
        end = f.seek(0, os.SEEK_END)
        torn = end > 0 and f.seek(end - 1) >= 0 and f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + line.encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())
    if end == 0:  # a new file: its folder entry must survive a power cut too
        _sync_folder(path.parent)
