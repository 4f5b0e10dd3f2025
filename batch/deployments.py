"""Deployments: a name that jobs and the HTTP shim use instead of a package path.

A deployment pins a package by digest. Creating one copies the package into
the home's content-addressed store (``packages/<digest>``), so editing the
original directory later cannot change what the deployment scores with.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from batch.errors import DeploymentError, validation_message
from batch.models.manifest import MANIFEST_NAME
from batch.models.package import ModelPackage, open_package
from batch.settings import home_dir
from connectors.atomic_file import write_atomic

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
    alert_webhook: str | None = Field(default=None, description="POSTed a JSON body when "
                                      "the drift status changes colour; env:NAME for the "
                                      "URL in environment variable NAME (a URL with a "
                                      "token is a secret: keep it out of the settings).")
    alert_block: str | None = Field(default=None, description="Name of a Prefect "
                                    "notification block (Slack, email, ...) told of changes.")


    @field_validator("alert_webhook", "monitoring_store")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("env:") and urlsplit(value).password:
            raise ValueError("a URL with a password is a secret: put it in an environment "
                             "variable and give env:NAME")
        return value


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Deployment name.")
    package_digest: str = Field(description="Digest of the champion package.")
    package_path: str = Field(description="The champion package in the home's store.")
    model_name: str
    model_version: str
    created_at: datetime
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)


class DeploymentRegistry:
    """Deployments stored as JSON files under ``<home>/deployments``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or home_dir()
        self._dir = self.home / "deployments"
        self._store = self.home / "packages"

    def create(self, name: str, package: ModelPackage, *, replace: bool = False) -> Deployment:
        """Register ``package`` under ``name``.

        Raises:
            DeploymentError: a bad name, or the name is taken and not ``replace``.
        """
        if not _NAME.match(name):
            raise DeploymentError(
                f"deployment name {name!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if self._file(name).exists() and not replace:
            raise DeploymentError(f"deployment {name!r} already exists; pass --replace")
        kept = self.get(name).settings if self._file(name).exists() else DeploymentSettings()
        stored = self._store_package(package)
        deployment = Deployment(
            name=name,
            package_digest=stored.digest,
            package_path=str(stored.path),
            model_name=stored.manifest.name,
            model_version=stored.manifest.version,
            created_at=datetime.now(UTC),
            settings=kept,
        )
        write_atomic(self._file(name), deployment.model_dump_json(indent=2))
        return deployment

    def update_settings(self, name: str, settings: DeploymentSettings) -> Deployment:
        """Replace the settings of deployment ``name``.

        Raises:
            DeploymentError: no such deployment.
        """
        deployment = self.get(name).model_copy(update={"settings": settings})
        write_atomic(self._file(name), deployment.model_dump_json(indent=2))
        return deployment

    def remove(self, name: str) -> Deployment:
        """Delete deployment ``name`` (its package stays in the home's store, which other
        deployments may share).

        Raises:
            DeploymentError: no such deployment.
        """
        deployment = self.get(name)
        self._file(name).unlink()
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
        deployment = self.get(name)
        package = open_package(deployment.package_path)
        if package.digest != deployment.package_digest:
            raise DeploymentError(
                f"deployment {name!r}: stored package {deployment.package_path} was modified "
                f"(digest {package.short_id}, expected {deployment.package_digest[:12]})"
            )
        return package

    def _file(self, name: str) -> Path:
        return self._dir / f"{name}.json"


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
