"""Shapes the flow tests share (a module of its own: every conftest is named ``conftest``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

SCORE_ROWS = 6_000
CHUNK_ROWS = 1_000


@dataclass(frozen=True)
class Credit:
    """A scikit-learn package, a python-hooks package, and rows to score as CSV."""

    sklearn: Path
    estimator: Any
    hooks: Path
    table: pa.Table  # the scoring rows (no target)
    csv: Path


def seed(home: Path, database: Path) -> Path:
    """Give batchpred ``home`` a copy of a migrated Prefect ``database``: the Prefect
    server a command starts there answers in seconds, with no migration first."""
    (home / "prefect").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(database, home / "prefect" / "prefect.db")
    return home
