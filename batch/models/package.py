"""A model package on disk: ``model.yaml``, the artifact, and a content digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from batch.errors import PackageError
from batch.models.manifest import MANIFEST_NAME, ModelManifest, read_manifest

_SKIPPED_DIRS = {"__pycache__", ".git"}


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A validated package directory.

    ``digest`` hashes every file in the package, so two packages with the same
    digest score identically and a cache keyed by it never serves a stale model.
    """

    path: Path
    manifest: ModelManifest
    digest: str

    @property
    def short_id(self) -> str:
        return self.digest[:12]

    @property
    def label(self) -> str:
        """How errors name this package."""
        m = self.manifest
        return f"package '{m.name}' v{m.version} ({self.short_id})"

    @property
    def artifact_path(self) -> Path:
        return self.path / self.manifest.artifact.path


def open_package(path: str | Path) -> ModelPackage:
    """Read and validate the package at ``path``.

    Raises:
        PackageError: not a directory, invalid ``model.yaml``, or missing artifact.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise PackageError(f"{path}: not a model package directory")
    manifest = read_manifest(root / MANIFEST_NAME)
    artifact = root / manifest.artifact.path
    if not artifact.exists():
        raise PackageError(
            f"{root / MANIFEST_NAME}: field 'artifact.path': {manifest.artifact.path!r} "
            "does not exist in the package"
        )
    return ModelPackage(path=root, manifest=manifest, digest=package_digest(root))


def package_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for file in sorted(_package_files(root)):
        rel = file.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _package_files(root: Path) -> list[Path]:
    files = []
    for file in root.rglob("*"):
        rel = file.relative_to(root).parts
        if any(p in _SKIPPED_DIRS or p.startswith(".") for p in rel):
            continue
        if file.is_file():
            files.append(file)
    if not any(f.name == MANIFEST_NAME for f in files):
        raise PackageError(f"{root}: no {MANIFEST_NAME}")
    return files
