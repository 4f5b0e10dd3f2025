"""Deployments: a name that jobs and the HTTP shim use instead of a package path.

A deployment pins a package by digest. Creating one copies the package into
the home's content-addressed store (``packages/<digest>``), so editing the
original directory later cannot change what the deployment scores with.

A deployment holds one champion and up to :data:`MAX_CHALLENGERS` challengers,
all predicting the same target (:mod:`batch.models.compatibility` holds the
guardrails), and its settings. Every change is appended to its history,
``<name>.history.jsonl`` beside ``<name>.json``: one JSON line per event (who,
when, why, the package digests before and after), fsynced; a line torn by a
crash is skipped when read. Removing a deployment keeps its history, which a
deployment created again under the name continues.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from batch.errors import ConfigError, DeploymentError, validation_message
from batch.models.compatibility import check_added_features, check_target
from batch.models.manifest import MANIFEST_NAME
from batch.models.package import ModelPackage, open_package
from batch.scoring.humility import HumilityRule
from batch.settings import actor_name, home_dir
from connectors.atomic_file import append_line, write_atomic
from connectors.secrets import masked_value

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CHALLENGER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_CHALLENGERS = 5  # the monitoring contract's default cap


class DriftThresholds(BaseModel):
    """When the drift stage calls a feature or a deployment drifted (the monitoring
    contract's defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_yellow: float = Field(default=0.10, ge=0, description="Feature status yellow from "
                              "this PSI.")
    psi_red: float = Field(default=0.25, ge=0, description="Feature status red from this PSI.")
    drift_psi: float = Field(default=0.15, ge=0, description="A feature has drifted from "
                             "this PSI.")
    tail: float = Field(default=0.15, ge=0, description="... or from this tail shift "
                        "(Wasserstein distance in training standard deviations).")
    psi_epsilon: float = Field(default=1e-4, gt=0, lt=1, description="PSI proportions are "
                               "clamped here.")
    high_importance: float = Field(default=0.5, ge=0, le=1, description="A feature of at "
                                   "least this normalised importance is high-importance.")
    starred: tuple[str, ...] = Field(default=(), description="Features that count as "
                                     "high-importance whatever their importance.")
    red_high_importance: int = Field(default=1, ge=1, description="Deployment red when at "
                                     "least this many high-importance features drifted.")
    yellow_low_importance: int = Field(default=1, ge=1, description="Deployment yellow when "
                                       "at least this many low-importance features drifted.")
    min_rows: int = Field(default=500, ge=1, description="Grey (insufficient data) below "
                          "this many rows.")
    missing_points: float = Field(default=0.05, ge=0, le=1, description="Data quality: the "
                                  "missing rate rose by more than this share.")
    out_of_range_share: float = Field(default=0.01, ge=0, le=1, description="Data quality: "
                                      "more values than this share outside the training range.")
    new_level_share: float = Field(default=0.05, ge=0, le=1, description="Data quality: more "
                                   "values than this share are levels never seen in training.")


class DeploymentSettings(BaseModel):
    """What a deployment's jobs and stages use unless told otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monitoring_store: str | None = Field(default=None, description="Where its jobs write "
                                         "monitoring records (default: <home>/monitoring).")
    monitoring_store_options: dict[str, str] = Field(default_factory=dict, description=(
        "Storage options of the store (endpoint_url, profile, region, ...); never secrets."))
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    association_id: str | None = Field(default=None, description="The input column that "
                                       "identifies a row, to join actuals to predictions "
                                       "later (default at creation: the package's own).")
    accuracy: bool = Field(default=True, description="Track accuracy: on when an "
                           "association id is set, unless this is false.")
    slo_p95_ms: float = Field(default=1000, gt=0, description="Service health: the p95 "
                              "latency objective in milliseconds.")
    actuals_retention_days: int = Field(default=400, ge=1, description="Actuals are kept "
                                        "this many days after they were received (those "
                                        "that arrive before their prediction too); "
                                        "`batchpred actuals prune` removes older ones.")
    alert_webhook: str | None = Field(default=None, description="POSTed a JSON body when "
                                      "a stage's status (drift, accuracy, health) changes "
                                      "colour; env:NAME for the "
                                      "URL in environment variable NAME (a URL with a "
                                      "token is a secret: keep it out of the settings).")
    alert_block: str | None = Field(default=None, description="Name of a Prefect "
                                    "notification block (Slack, email, ...) told of changes.")
    humility: tuple[HumilityRule, ...] = Field(default=(), description="Rules that flag, "
                                               "override or reject rows, in batch jobs and "
                                               "the HTTP shim (docs/humility.md).")


    @field_validator("alert_webhook", "monitoring_store")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("env:") and urlsplit(value).password:
            raise ValueError("a URL with a password is a secret: put it in an environment "
                             "variable and give env:NAME")
        return value

    @field_validator("association_id")
    @classmethod
    def _column_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(f"{value!r} names no column")
        return value

    @property
    def tracks_accuracy(self) -> bool:
        """Whether the deployment's predictions are kept to be joined with actuals."""
        return self.accuracy and self.association_id is not None


class Challenger(BaseModel):
    """A package scored beside the champion, on the same rows, to be compared with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Its short name in the deployment (c1, c2, ...).")
    package_digest: str = Field(description="Digest of its package.")
    package_path: str = Field(description="Its package in the home's store.")
    model_name: str
    model_version: str
    added_at: datetime


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Deployment name.")
    package_digest: str = Field(description="Digest of the champion package.")
    package_path: str = Field(description="The champion package in the home's store.")
    model_name: str
    model_version: str
    created_at: datetime
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)
    challengers: tuple[Challenger, ...] = Field(default=(), description="Scored beside the "
                                                "champion, in the order they were added.")


HistoryKind = Literal["created", "settings_changed", "challenger_added", "challenger_removed",
                      "replaced", "promoted", "removed"]


class PackageDigests(BaseModel):
    """A deployment's packages at one moment: the champion's digest, the challengers' by id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    champion: str
    challengers: dict[str, str] = Field(default_factory=dict)


class SettingChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    old: Any = Field(default=None, description="Before (null: unset); secrets masked.")
    new: Any = Field(default=None, description="After (null: unset); secrets masked.")


class HistoryEvent(BaseModel):
    """One line of a deployment's history."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime = Field(description="When, in UTC.")
    deployment: str
    event: HistoryKind
    actor: str = Field(description="Who: --actor, else BATCHPRED_ACTOR, else the OS user.")
    reason: str | None = None
    before: PackageDigests | None = Field(default=None, description="null: it did not exist.")
    after: PackageDigests | None = Field(default=None, description="null: it was removed.")
    changes: dict[str, SettingChange] = Field(default_factory=dict, description="Settings "
                                              "changed, by dotted key (drift.psi_red).")
    challenger: str | None = Field(default=None, description="The challenger added, "
                                   "removed or promoted.")
    kept_as: str | None = Field(default=None, description="Replaced or promoted: the old "
                                "champion's id as a challenger (null: it was retired).")
    forced_features: tuple[str, ...] = Field(default=(), description="Features the new "
                                             "champion needs that the old one did not, "
                                             "accepted with --force.")


@dataclass(frozen=True, slots=True)
class Replacement:
    """What replacing or promoting did: the deployment before and after, what became of
    the old champion (``kept_as``: its challenger id; None: retired), the features forced."""

    before: Deployment
    after: Deployment
    kept_as: str | None = None
    forced_features: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """False: the package was the champion already; nothing changed."""
        return self.before.package_digest != self.after.package_digest


class DeploymentRegistry:
    """Deployments stored as JSON files under ``<home>/deployments``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or home_dir()
        self._dir = self.home / "deployments"
        self._store = self.home / "packages"

    def create(self, name: str, package: ModelPackage, *, replace: bool = False,
               force: bool = False, association_id: str | None = None,
               actor: str | None = None, reason: str | None = None) -> Deployment:
        """Register ``package`` under ``name``; ``association_id`` sets the setting (default:
        the package's own; ``""``: none). With ``replace``, an existing deployment's champion is
        replaced as :meth:`replace` does it (its guardrails; the settings stay; the
        old champion is retired).

        Raises:
            DeploymentError: a bad name, or the name is taken and not ``replace``.
            IncompatibleModelError: (replacing) see :meth:`replace`.
            ConfigError: a bad association id, or one given when replacing.
        """
        if not _NAME.match(name):
            raise DeploymentError(
                f"deployment name {name!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if self._file(name).exists():
            if not replace:
                raise DeploymentError(f"deployment {name!r} already exists; pass --replace")
            if association_id is not None:
                raise ConfigError(f"deployment {name!r} exists: change its association id "
                                  f"with `batchpred deploy settings {name} --association-id`")
            return self.replace(name, package, force=force, actor=actor, reason=reason).after
        try:
            settings = DeploymentSettings(association_id=package.manifest.association_id
                                          if association_id is None else association_id or None)
        except ValidationError as exc:
            raise ConfigError(f"--association-id: {validation_message(exc, first=True)}"
                              ) from exc
        stored = self._store_package(package)
        deployment = Deployment(
            name=name,
            package_digest=stored.digest,
            package_path=str(stored.path),
            model_name=stored.manifest.name,
            model_version=stored.manifest.version,
            created_at=datetime.now(UTC),
            settings=settings,
        )
        self._commit("created", None, deployment, actor=actor, reason=reason)
        return deployment

    def update_settings(self, name: str, settings: DeploymentSettings, *,
                        actor: str | None = None, reason: str | None = None) -> Deployment:
        """Replace the settings of deployment ``name`` (the history records the keys that
        changed; nothing is written when none did).

        Raises:
            DeploymentError: no such deployment.
        """
        current = self.get(name)
        changes = setting_changes(current.settings, settings)
        if not changes:
            return current
        deployment = current.model_copy(update={"settings": settings})
        self._commit("settings_changed", current, deployment, actor=actor, reason=reason,
                     changes=changes)
        return deployment

    def remove(self, name: str, *, actor: str | None = None,
               reason: str | None = None) -> Deployment:
        """Delete deployment ``name`` (its packages stay in the home's store, which other
        deployments and running jobs may use; its history stays too).

        Raises:
            DeploymentError: no such deployment.
        """
        deployment = self.get(name)
        self._commit("removed", deployment, None, actor=actor, reason=reason)
        return deployment

    def find(self, name: str) -> Deployment | None:
        """Deployment ``name``, or None when there is none by that name."""
        return self.get(name) if _NAME.match(name) and self._file(name).exists() else None

    def _store_package(self, package: ModelPackage) -> ModelPackage:
        target = self._store / package.digest
        if not (target / MANIFEST_NAME).exists():
            self._store.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self._store))
            shutil.copytree(package.path, tmp, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
            try:
                os.replace(tmp, target)
            except OSError:  # stored meanwhile by someone else
                shutil.rmtree(tmp, ignore_errors=True)
        stored = open_package(target)
        if stored.digest != package.digest:
            raise DeploymentError(f"{target}: stored package does not match its digest")
        return stored

    def get(self, name: str) -> Deployment:
        path = self._file(name)
        if not _NAME.match(name) or not path.exists():
            known = ", ".join(d.name for d in self.list()) or "none yet"
            raise DeploymentError(f"no deployment named {name!r} (deployments: {known})")
        try:
            return Deployment.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise DeploymentError(f"{path}: corrupt deployment record: "
                                  f"{validation_message(exc)}") from exc

    def list(self) -> list[Deployment]:
        if not self._dir.exists():
            return []
        return [self.get(p.stem) for p in sorted(self._dir.glob("*.json"))]

    def package(self, name: str) -> ModelPackage:
        """The champion's package, checked against its digest.

        Raises:
            DeploymentError: no such deployment, or its stored package was modified.
        """
        deployment = self.get(name)
        return _checked(name, deployment.package_path, deployment.package_digest)

    def challenger_packages(self, name: str
                            ) -> builtins.list[tuple[Challenger, ModelPackage]]:
        """Each challenger of deployment ``name`` with its package, checked against its
        digest, in the order they were added.

        Raises:
            DeploymentError: no such deployment, or a stored package was modified.
        """
        return [(c, _checked(name, c.package_path, c.package_digest))
                for c in self.get(name).challengers]

    def stored_package(self, digest: str) -> ModelPackage | None:
        """The package of ``digest`` in the home's store (a champion replaced since stays
        there), checked against it; None when the store does not hold it."""
        path = self._store / digest
        if re.fullmatch(r"[0-9a-f]{64}", digest) and (path / MANIFEST_NAME).exists():
            package = open_package(path)
            return package if package.digest == digest else None
        return None

    def add_challenger(self, name: str, package: ModelPackage, *, challenger_id: str | None = None,
                       cap: int = MAX_CHALLENGERS, actor: str | None = None,
                       reason: str | None = None) -> Challenger:
        """Add ``package`` as a challenger of deployment ``name`` (id: ``challenger_id``,
        else the next free ``cN``). Nothing is stored when it is refused.

        Raises:
            IncompatibleModelError: its target differs from the champion's.
            DeploymentError: no such deployment; the package is the champion or a
                challenger already; ``cap`` challengers already; a bad or taken id.
        """
        current = self.get(name)
        check_target(self.package(name), package, where=f"deployment {name!r}")
        taken = {current.package_digest: "the champion",
                 **{c.package_digest: f"challenger {c.id!r}" for c in current.challengers}}
        if package.digest in taken:
            raise DeploymentError(f"deployment {name!r}: {package.label} is "
                                  f"{taken[package.digest]} already")
        if len(current.challengers) >= cap:
            raise DeploymentError(f"deployment {name!r} has {len(current.challengers)} "
                                  f"challengers, the most it may have: remove one first "
                                  f"(`batchpred deploy remove-challenger {name} --challenger ID`)")
        cid = challenger_id or _next_id(current.challengers)
        if not _CHALLENGER_ID.match(cid) or any(c.id == cid for c in current.challengers):
            raise DeploymentError(f"deployment {name!r}: challenger id {cid!r} is taken or "
                                  "not 1-32 letters, digits, '.', '_' or '-'")
        challenger = _challenger(cid, self._store_package(package))
        after = current.model_copy(update={"challengers": (*current.challengers, challenger)})
        self._commit("challenger_added", current, after, actor=actor, reason=reason,
                     challenger=cid)
        return challenger

    def remove_challenger(self, name: str, challenger_id: str, *, actor: str | None = None,
                          reason: str | None = None) -> Challenger:
        """Remove challenger ``challenger_id`` of deployment ``name`` (its package stays in
        the home's store).

        Raises:
            DeploymentError: no such deployment or challenger.
        """
        current = self.get(name)
        challenger = _find_challenger(current, challenger_id)
        after = current.model_copy(update={"challengers": tuple(
            c for c in current.challengers if c.id != challenger_id)})
        self._commit("challenger_removed", current, after, actor=actor, reason=reason,
                     challenger=challenger_id)
        return challenger

    def replace(self, name: str, package: ModelPackage, *, force: bool = False,
                keep_as_challenger: bool = False, cap: int = MAX_CHALLENGERS,
                actor: str | None = None, reason: str | None = None) -> Replacement:
        """Make ``package`` the champion of deployment ``name``; the settings stay. The old
        champion becomes a challenger (``keep_as_challenger``) or is retired; a
        challenger of the same package leaves the challengers. The package that is the
        champion already changes nothing. Nothing is stored when it is refused.

        Raises:
            IncompatibleModelError: its target differs from the champion's; or it
                needs features the champion does not, and not ``force``.
            DeploymentError: no such deployment; ``keep_as_challenger`` with ``cap``
                challengers already.
        """
        current = self.get(name)
        if package.digest == current.package_digest:
            return Replacement(current, current)
        forced = self._check_champion(name, package, force=force)
        return self._swap(current, package, "replaced", keep=keep_as_challenger, cap=cap,
                          forced=forced, actor=actor, reason=reason)

    def promote(self, name: str, challenger_id: str, *, force: bool = False,
                keep_as_challenger: bool = False, actor: str | None = None,
                reason: str | None = None) -> Replacement:
        """Make challenger ``challenger_id`` the champion of deployment ``name``, with the
        guardrails of :meth:`replace` (the old champion takes its place among the
        challengers with ``keep_as_challenger``, else it is retired).

        Raises:
            DeploymentError: no such deployment or challenger; a stored package was
                modified. IncompatibleModelError: as :meth:`replace`.
        """
        current = self.get(name)
        challenger = _find_challenger(current, challenger_id)
        package = _checked(name, challenger.package_path, challenger.package_digest)
        forced = self._check_champion(name, package, force=force)
        return self._swap(current, package, "promoted", keep=keep_as_challenger,
                          cap=len(current.challengers), forced=forced, actor=actor,
                          reason=reason, challenger=challenger_id)

    def history(self, name: str) -> builtins.list[HistoryEvent]:
        """The events of deployment ``name``, oldest first; a line torn by a crash is
        skipped (its change may or may not have happened: the next line says).

        Raises:
            DeploymentError: the name has no history (and no deployment).
        """
        path = self._history_file(name)
        if not _NAME.match(name) or not path.exists():
            self.get(name)  # an unknown name: the error lists the deployments
            return []
        events = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            try:
                data = json.loads(line)
            except ValueError:  # torn: a crash cut the write short
                continue
            try:
                events.append(HistoryEvent.model_validate(data))
            except ValidationError as exc:
                raise DeploymentError(f"{path}, line {number}: not a history event: "
                                      f"{validation_message(exc, first=True)}") from exc
        return events

    def _check_champion(self, name: str, package: ModelPackage, *, force: bool
                        ) -> tuple[str, ...]:
        """The guardrails of a new champion; returns the new features ``force`` let in."""
        champion, where = self.package(name), f"deployment {name!r}"
        check_target(champion, package, where=where)
        return check_added_features(champion, package, force=force, where=where)

    def _swap(self, current: Deployment, package: ModelPackage, event: HistoryKind, *,
              keep: bool, cap: int, forced: tuple[str, ...], actor: str | None,
              reason: str | None, challenger: str | None = None) -> Replacement:
        """Make ``package`` the champion (its guardrails passed); ``keep``: the old one
        becomes a challenger, if fewer than ``cap`` remain beside it."""
        rest = [c for c in current.challengers if c.package_digest != package.digest]
        kept_as = None
        if keep:
            if len(rest) >= cap:
                raise DeploymentError(
                    f"deployment {current.name!r} has {len(rest)} challengers, the most it "
                    "may have: the old champion cannot stay as one; remove a challenger "
                    "first, or leave out --keep-as-challenger to retire it")
            kept_as = _next_id(rest)
            rest.append(Challenger(id=kept_as, added_at=datetime.now(UTC), **current.model_dump(
                include={"package_digest", "package_path", "model_name", "model_version"})))
        stored = self._store_package(package)
        after = current.model_copy(update={
            "package_digest": stored.digest, "package_path": str(stored.path),
            "model_name": stored.manifest.name, "model_version": stored.manifest.version,
            "challengers": tuple(rest)})
        self._commit(event, current, after, actor=actor, reason=reason,
                     challenger=challenger, kept_as=kept_as, forced_features=forced)
        return Replacement(current, after, kept_as, forced)

    def _commit(self, event: HistoryKind, before: Deployment | None, after: Deployment | None,
                *, actor: str | None, reason: str | None, **details: Any) -> None:
        """Write (or, ``after`` None, delete) the deployment, then append the event."""
        deployment = after or before
        assert deployment is not None, "an event changes a deployment"
        name = deployment.name
        if after is None:
            self._file(name).unlink()
        else:
            write_atomic(self._file(name), after.model_dump_json(indent=2))
        line = HistoryEvent(time=datetime.now(UTC), deployment=name, event=event,
                            actor=actor_name(actor), reason=reason, before=_digests(before),
                            after=_digests(after), **details)
        append_line(self._history_file(name), line.model_dump_json())

    def _file(self, name: str) -> Path:
        return self._dir / f"{name}.json"

    def _history_file(self, name: str) -> Path:
        return self._dir / f"{name}.history.jsonl"


def _checked(name: str, path: str, digest: str) -> ModelPackage:
    package = open_package(path)
    if package.digest != digest:
        raise DeploymentError(f"deployment {name!r}: stored package {path} was modified "
                              f"(digest {package.short_id}, expected {digest[:12]})")
    return package


def _find_challenger(deployment: Deployment, challenger_id: str) -> Challenger:
    found = next((c for c in deployment.challengers if c.id == challenger_id), None)
    if found is None:
        known = ", ".join(c.id for c in deployment.challengers) or "none"
        raise DeploymentError(f"deployment {deployment.name!r} has no challenger "
                              f"{challenger_id!r} (challengers: {known})")
    return found


def _next_id(challengers: list[Challenger] | tuple[Challenger, ...]) -> str:
    """``c<N>`` after the highest such id among ``challengers`` (``c1`` for none)."""
    numbers = [int(c.id[1:]) for c in challengers if re.fullmatch(r"c\d+", c.id)]
    return f"c{max(numbers, default=0) + 1}"


def _challenger(challenger_id: str, stored: ModelPackage) -> Challenger:
    return Challenger(id=challenger_id, package_digest=stored.digest,
                      package_path=str(stored.path), model_name=stored.manifest.name,
                      model_version=stored.manifest.version, added_at=datetime.now(UTC))


def _digests(deployment: Deployment | None) -> PackageDigests | None:
    if deployment is None:
        return None
    return PackageDigests(champion=deployment.package_digest, challengers={
        c.id: c.package_digest for c in deployment.challengers})


def setting_changes(old: DeploymentSettings, new: DeploymentSettings
                    ) -> dict[str, SettingChange]:
    """The settings that differ, by dotted key (``drift.psi_red``), old and new values
    with secrets masked (a value under a secret-like key, a URL's password)."""
    before, after = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    return {key: SettingChange(old=masked_value(before.get(key), key.rpartition(".")[2]),
                               new=masked_value(after.get(key), key.rpartition(".")[2]))
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)}


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def resolve_model(ref: str, registry: DeploymentRegistry | None = None) -> ModelPackage:
    """A package directory path, or else a deployment name."""
    path = Path(ref).expanduser()
    if (path / MANIFEST_NAME).exists() or path.is_dir():
        return open_package(path)
    try:
        return (registry or DeploymentRegistry()).package(ref)
    except DeploymentError as exc:
        raise DeploymentError(f"--model {ref!r} is neither a package directory nor a "
                              f"deployment: {exc}") from exc
