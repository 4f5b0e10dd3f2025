"""Environment settings (``BATCHPRED_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HomeSettings(BaseSettings):
    """Where batchpred keeps deployments, packages and job records."""

    model_config = SettingsConfigDict(env_prefix="BATCHPRED_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path("~/.batchpred"),
        description="Home directory (BATCHPRED_HOME): deployments, package store, jobs.",
    )

    @property
    def root(self) -> Path:
        return self.home.expanduser().resolve()


def home_dir() -> Path:
    """The batchpred home, created if missing."""
    root = HomeSettings().root
    root.mkdir(parents=True, exist_ok=True)
    return root
