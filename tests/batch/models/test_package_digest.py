"""The package digest: a content hash that changes with any file and only then."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from batch.models import ModelCache, open_package, package_digest


@pytest.fixture
def package_copy(tmp_path: Path, hooks_package) -> Path:
    path = tmp_path / "package"
    shutil.copytree(hooks_package.path, path)
    return path


def test_digest_is_stable(package_copy, hooks_package, tmp_path):
    first = open_package(package_copy).digest
    assert open_package(package_copy).digest == first == package_digest(package_copy)
    assert first == hooks_package.package.digest  # same content elsewhere, same digest
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(package_copy, moved)
    assert open_package(moved).digest == first
    assert len(first) == 64


def test_digest_ignores_bytecode_and_hidden_files(package_copy):
    before = open_package(package_copy)
    ModelCache().get(before)  # importing custom.py may write __pycache__
    (package_copy / "__pycache__").mkdir(exist_ok=True)
    (package_copy / "__pycache__" / "custom.cpython-311.pyc").write_bytes(b"\x00" * 16)
    (package_copy / ".DS_Store").write_bytes(b"junk")
    assert open_package(package_copy).digest == before.digest


def _append(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / name).write_bytes((root / name).read_bytes() + data)


def _flip_last_byte(name: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        data = bytearray((root / name).read_bytes())
        data[-1] ^= 0x01
        (root / name).write_bytes(bytes(data))
    return edit


def _rename(old: str, new: str) -> Callable[[Path], None]:
    return lambda root: (root / old).rename(root / new)


def _add_nested(root: Path) -> None:
    (root / "assets").mkdir()
    (root / "assets" / "vocab.txt").write_text("a\nb\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "manifest edited": _append("model.yaml", b"# a comment\n"),
    "artifact byte flipped": _flip_last_byte("model.joblib"),
    "hook code edited": _append("custom.py", b"\n"),
    "file added": lambda root: (root / "notes.txt").write_text("v2"),
    "nested file added": _add_nested,
    "file renamed": _rename("model.joblib", "model2.joblib"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_digest_changes_with_any_file(package_copy, change):
    before = package_digest(package_copy)
    CHANGES[change](package_copy)
    assert package_digest(package_copy) != before


def test_edited_package_is_a_new_cache_entry(package_copy):
    cache = ModelCache()
    first = open_package(package_copy)
    cache.get(first)
    (package_copy / "README.md").write_text("retrained")
    second = open_package(package_copy)
    cache.get(second)
    assert first.digest != second.digest
    assert cache.loads == {first.digest: 1, second.digest: 1}
