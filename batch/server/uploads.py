"""A model package sent as an archive: unpacked safely into a folder of its own.

``POST /deployments/{id}`` takes a package as a ``.tar``, ``.tar.gz`` or ``.zip``
body: its files at the top, or in one folder at the top. Members that would land
outside the folder (absolute paths, ``..``), links and devices are refused, and
the unpacked size is bounded.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zipfile
from pathlib import Path

from batch.models.manifest import MANIFEST_NAME
from batch.models.package import ModelPackage, open_package
from batch.server.errors import PayloadFormatError, PayloadTooLargeError


def unpack_package(body: bytes, dest: Path, *, max_bytes: int) -> ModelPackage:
    """The package in archive ``body``, unpacked under ``dest``.

    Raises:
        PayloadFormatError: not an archive, an unsafe member, or no ``model.yaml``.
        PayloadTooLargeError: it unpacks past ``max_bytes``.
        PackageError: the package itself is invalid.
    """
    if not body:
        raise PayloadFormatError("the body is empty: send the package as a .tar.gz or .zip")
    members = _zip(body) if body[:2] == b"PK" else _tar(body)
    total = 0
    for name, data in members:
        total += len(data)
        if total > max_bytes:
            raise PayloadTooLargeError(f"the package unpacks past the payload limit of "
                                       f"{max_bytes:,} bytes")
        target = dest / _safe(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return open_package(_root(dest))


def _safe(name: str) -> str:
    clean = posixpath.normpath(name.replace("\\", "/"))
    if clean.startswith(("/", "../")) or clean in ("..", ".") or ":" in clean.split("/")[0]:
        raise PayloadFormatError(f"archive member {name!r} would land outside the package")
    return clean


def _zip(body: bytes) -> list[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist()
                    if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise PayloadFormatError(f"not a readable zip archive: {exc}") from exc


def _tar(body: bytes) -> list[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
            out = []
            for member in archive.getmembers():
                if member.isdir():
                    continue
                if not member.isfile():
                    raise PayloadFormatError(f"archive member {member.name!r} is a link or "
                                             "a device; send plain files")
                handle = archive.extractfile(member)
                out.append((member.name, handle.read() if handle is not None else b""))
            return out
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PayloadFormatError("not a .tar, .tar.gz or .zip archive of a package") from exc


def _root(dest: Path) -> Path:
    """The folder holding ``model.yaml``: ``dest``, or its one folder."""
    if (dest / MANIFEST_NAME).exists():
        return dest
    folders = [p for p in dest.iterdir() if p.is_dir()]
    if len(folders) == 1 and (folders[0] / MANIFEST_NAME).exists():
        return folders[0]
    raise PayloadFormatError(f"the archive holds no {MANIFEST_NAME} at its top (or in one "
                             "folder there)")
