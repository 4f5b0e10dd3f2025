"""Loader kinds, looked up lazily by name (like fsspec's protocol table).

Third parties add kinds through the ``batchpred.loaders`` entry-point group
(``xgboost = "mypkg.loader:XGBLoader"``) or :func:`register_loader`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from batch.errors import ConfigError, PackageError
from batch.models.loaders.base import Loader

ENTRY_POINT_GROUP = "batchpred.loaders"

_KNOWN: dict[str, str] = {
    "onnx": "batch.models.loaders.onnx:OnnxLoader",
    "python": "batch.models.loaders.hooks:HooksLoader",
    "sklearn": "batch.models.loaders.sklearn:SklearnLoader",
}
_registered: dict[str, str] = {}


def register_loader(kind: str, target: str, *, replace: bool = False) -> None:
    """Map ``kind`` to ``"module:Class"``; a taken kind raises unless ``replace``."""
    if not replace and kind in available_kinds():
        raise ConfigError(f"loader kind {kind!r} is already registered; pass replace=True")
    _registered[kind] = target


def available_kinds() -> list[str]:
    kinds = set(_KNOWN) | set(_registered)
    kinds |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(kinds)


def get_loader(kind: str) -> Loader:
    """Instantiate the loader for ``kind``.

    Raises:
        PackageError: no such kind, or its module cannot be imported.
    """
    target = _registered.get(kind) or _KNOWN.get(kind)
    if target is None:
        eps = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
        target = eps.get(kind)
    if target is None:
        raise PackageError(
            f"unknown artifact kind {kind!r}; known kinds: {', '.join(available_kinds())}"
        )
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PackageError(f"artifact kind {kind!r}: cannot import {target}: {exc}") from exc
    loader: Loader = cls()
    return loader
