"""Environment settings (``BATCHPRED_*``), read with the standard library alone.

The command line and ``flows`` read the home before pydantic loads: ``batchpred
score`` starts its scoring processes first thing, and ``flows`` points Prefect at
the home before ``prefect`` is imported.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_VARIABLE = "BATCHPRED_HOME"
ACTOR_VARIABLE = "BATCHPRED_ACTOR"


@dataclass(frozen=True, slots=True)
class HomeSettings:
    """Where batchpred keeps deployments, packages, job records and conversions.

    ``home``: ``BATCHPRED_HOME``, default ``~/.batchpred``; an empty value is the default.
    """

    home: Path = Path("~/.batchpred")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HomeSettings:
        value = (os.environ if environ is None else environ).get(HOME_VARIABLE)
        return cls(Path(value)) if value else cls()

    @property
    def root(self) -> Path:
        return self.home.expanduser().resolve()


def home_dir() -> Path:
    """The batchpred home, created if missing."""
    root = HomeSettings.from_env().root
    root.mkdir(parents=True, exist_ok=True)
    return root


def actor_name(given: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Who makes a change, as a deployment's history records it: ``given`` (``--actor``),
    else ``BATCHPRED_ACTOR``, else the OS user, else ``unknown`` (blank values count as
    not given)."""
    for value in (given, (os.environ if environ is None else environ).get(ACTOR_VARIABLE)):
        if value and value.strip():
            return value.strip()
    try:
        return getpass.getuser().strip() or "unknown"
    except (OSError, KeyError, ImportError):  # no login name, no passwd entry, no pwd
        return "unknown"
