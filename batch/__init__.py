"""The batchpred engine: model packages, scoring, jobs. Knows nothing of Prefect.

The names below load on first use, so a scoring worker process, which needs
only ``batch.workers`` and what it imports, does not import the whole engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.engine import run_job, score
    from batch.report import JobReport
    from batch.spec import JobSpec

_LAZY = {
    "JobReport": "batch.report",
    "JobSpec": "batch.spec",
    "run_job": "batch.engine",
    "score": "batch.engine",
}

__all__ = ["JobReport", "JobSpec", "run_job", "score"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'batch' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
