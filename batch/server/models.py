"""The models a server answers for, and their loading.

Packages are opened (manifest read, digest checked) when the server starts;
the models themselves load into this process's :class:`~batch.models.cache.ModelCache`
(the cache batch jobs score with) in a background thread: all of them at start,
or each on its first request with ``lazy``. A request for a model still loading
waits up to :data:`LOAD_WAIT` seconds, then gets :class:`ModelsLoadingError` (503).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from batch.deployments import DeploymentRegistry
from batch.errors import DeploymentError
from batch.models.cache import ModelCache
from batch.models.loaders import Scorer
from batch.models.onnx_fastpath import kept_fast_path, model_path
from batch.models.package import ModelPackage
from batch.scoring.humility import Humility
from batch.server.errors import ModelsLoadingError

LOAD_WAIT = 2.0  # seconds a request waits for its model before a 503
RETRY_AFTER = 2  # seconds, in the 503's Retry-After


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model under the name requests use: a deployment's, or the package's own name.

    ``fast``: the ONNX conversion a batch job checked for this package (kept in the
    home by digest), scored with onnxruntime as batch jobs score it; None: its loader.
    """

    name: str
    package: ModelPackage
    fast: str | None = None
    scorer_note: str | None = None  # what the batch job's check said of the conversion
    humility: Humility | None = None  # the deployment's humility rules, resolved


def with_fast_path(model: ServedModel, onnx_cache: Path) -> ServedModel:
    """``model`` with the ONNX fast path a batch job checked and kept, if any."""
    if model.package.manifest.artifact.kind != "sklearn":
        return model
    kept = kept_fast_path(model.package, onnx_cache)
    if kept is None:
        return model
    fast = str(model_path(onnx_cache, model.package)) if kept.model is not None else None
    return replace(model, fast=fast, scorer_note=kept.note)


def deployed(registry: DeploymentRegistry, name: str) -> ServedModel:
    """Deployment ``name`` as served: its package, with its humility rules resolved.

    Raises:
        DeploymentError: no such deployment, or its package was modified.
        ConfigError: a humility rule does not fit the model (naming the rule).
    """
    from batch.monitoring.humility import humility_of

    package = registry.package(name)
    rules = registry.get(name).settings.humility
    return ServedModel(name, package, humility=humility_of(rules, package))


@dataclass(frozen=True, slots=True)
class Loaded:
    """A model ready to score, and whether it was loaded before this request asked."""

    model: ServedModel
    scorer: Scorer
    cache_hit: bool


class ServedModels:
    """The served models by name, loading each once into ``cache``."""

    def __init__(self, models: Sequence[ServedModel], cache: ModelCache, *,
                 lazy: bool = False) -> None:
        self._models = {m.name: m for m in models}
        self._cache = cache
        self.lazy = lazy
        self._done: dict[str, threading.Event] = {}
        self._failed: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    def model(self, name: str) -> ServedModel:
        """Raises :class:`DeploymentError` naming the served models."""
        found = self._models.get(name)
        if found is None:
            known = ", ".join(self.names) or "none"
            raise DeploymentError(f"no deployment named {name!r} (deployments: {known})")
        return found

    def add(self, model: ServedModel) -> None:
        """Serve ``model`` (replacing one of its name), loading it in the background."""
        with self._lock:
            self._models[model.name] = model
            self._done.pop(model.name, None)
            self._failed.pop(model.name, None)
        self._event(model.name, start=True)

    def remove(self, name: str) -> ServedModel:
        """Stop serving ``name``.

        Raises:
            DeploymentError: not served.
        """
        model = self.model(name)
        with self._lock:
            self._models.pop(name, None)
            self._done.pop(name, None)
            self._failed.pop(name, None)
        return model

    def start_loading(self) -> None:
        """Load every model in a background thread (unless ``lazy``)."""
        if not self.lazy:
            threading.Thread(target=self._load_all, name="model-preload", daemon=True).start()

    @property
    def ready(self) -> bool:
        """Every model loaded (``lazy``: nothing is preloaded, so always ready)."""
        return self.lazy or all(self._loaded(name) for name in self._models)

    def is_loaded(self, name: str) -> bool:
        """Model ``name`` is in the cache, ready to score."""
        model = self.model(name)
        return self._cache.key(model.package, model.fast) in self._cache

    def loaded(self, name: str) -> Loaded:
        """Model ``name`` ready to score.

        Raises:
            DeploymentError: no such model.
            ModelsLoadingError: still loading after :data:`LOAD_WAIT` seconds.
            PackageError, UserCodeError: the model failed to load (so it always will).
        """
        model = self.model(name)
        hit = self._cache.key(model.package, model.fast) in self._cache
        if not hit:
            if not self._event(name, start=self.lazy).wait(LOAD_WAIT):
                raise ModelsLoadingError(f"model {name!r} is loading; retry in a moment",
                                         retry_after=RETRY_AFTER)
            if name in self._failed:
                raise self._failed[name]
        return Loaded(model, self._cache.get(model.package, model.fast), hit)

    def _loaded(self, name: str) -> bool:
        event = self._done.get(name)
        return event is not None and event.is_set() and name not in self._failed

    def _event(self, name: str, *, start: bool) -> threading.Event:
        with self._lock:
            event = self._done.get(name)
            if event is None:
                event = self._done[name] = threading.Event()
                if start:
                    threading.Thread(target=self._load, args=(name,), daemon=True).start()
            return event

    def _load_all(self) -> None:
        for name in self._models:
            self._event(name, start=False)
        for name in self._models:
            self._load(name)

    def _load(self, name: str) -> None:
        try:
            model = self._models[name]
            self._cache.get(model.package, model.fast)
        except Exception as exc:  # kept and raised to each request for this model
            self._failed[name] = exc
        finally:
            self._done[name].set()
