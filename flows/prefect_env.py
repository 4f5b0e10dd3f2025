"""Prefect's configuration for batchpred, applied before ``prefect`` is imported.

Only the standard library loads here: importing ``flows`` (and so the
``batchpred`` command line) stays light.

Embedded default: with no Prefect API configured, batchpred runs flows against a
Prefect server it starts itself (see :mod:`flows.api`), and everything Prefect
keeps lives under the batchpred home::

    <BATCHPRED_HOME>/prefect/              PREFECT_HOME
    <BATCHPRED_HOME>/prefect/prefect.db    the API database (run history, schedules)
    <BATCHPRED_HOME>/prefect/worker.json   the API of a running ``batchpred worker``

What the user configured wins: a ``PREFECT_*`` variable in the environment or
in the active profile of ``~/.prefect/profiles.toml`` is never overridden, and
that profile stays in use. ``flows/__init__`` imports this module first, so
importing ``flows`` before ``prefect`` is enough; a process that imported
``prefect`` earlier keeps Prefect's own defaults for ``PREFECT_HOME``.
"""

from __future__ import annotations

import os
import sys
import tomllib
import warnings
from collections.abc import MutableMapping
from pathlib import Path

from batch.settings import home_dir

_DATABASE_KEYS = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")


def prefect_home() -> Path:
    """Where Prefect keeps its files for this batchpred home (created if missing)."""
    path = Path(os.environ.get("PREFECT_HOME") or home_dir() / "prefect").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_defaults(home: Path) -> dict[str, str]:
    """The ``PREFECT_*`` values of the embedded default for a batchpred ``home``."""
    root = home / "prefect"
    return {
        "PREFECT_HOME": str(root),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        # A local server has nobody to report usage to (and often no network).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def user_configured(environ: MutableMapping[str, str]) -> set[str]:
    """``PREFECT_*`` names set in the environment or in the active Prefect profile."""
    names = {k for k in environ if k.startswith("PREFECT_")}
    profiles = Path(environ.get("PREFECT_PROFILES_PATH")
                    or Path(environ.get("PREFECT_HOME") or "~/.prefect") / "profiles.toml")
    try:
        data = tomllib.loads(profiles.expanduser().read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return names
    active = environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profile = data.get("profiles", {}).get(active, {})
    return names | {k for k in profile if k.startswith("PREFECT_")}


def apply_embedded_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the embedded default's ``PREFECT_*`` variables the user left unset.

    Returns:
        The variables set.
    """
    environ = os.environ if environ is None else environ
    user = user_configured(environ)
    defaults = embedded_defaults(home_dir())
    if "PREFECT_HOME" in user or user.intersection(_DATABASE_KEYS):
        # The user's Prefect home carries their database; leave both alone.
        defaults.pop("PREFECT_HOME")
        defaults.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    elif "PREFECT_PROFILES_PATH" not in user:
        profiles = Path("~/.prefect/profiles.toml").expanduser()
        if profiles.exists():
            defaults["PREFECT_PROFILES_PATH"] = str(profiles)  # keep the user's profiles
    applied = {k: v for k, v in defaults.items() if k not in user}
    environ.update(applied)
    if "PREFECT_HOME" in applied:
        Path(applied["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
        if "prefect" in sys.modules:
            warnings.warn("prefect was imported before flows: this process keeps Prefect's "
                          "default PREFECT_HOME; import flows first", stacklevel=2)
    return applied


apply_embedded_defaults()  # on import: flows/__init__ imports this module before prefect
