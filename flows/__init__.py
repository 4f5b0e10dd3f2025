"""Prefect flows over the engine in ``batch``; the only package that imports prefect.

``flows.settings`` is imported first: it points Prefect's home and database at
the batchpred home (unless configured otherwise) before ``prefect`` loads.
The other names load on first use, so ``batchpred score`` and friends do not
pay for importing Prefect.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from flows.settings import FlowSettings

if TYPE_CHECKING:
    from flows.api import prefect_api
    from flows.jobfile import load_job_file
    from flows.schedules import create_schedule, delete_schedule, list_schedules
    from flows.scoring import batch_score
    from flows.submission import JobHandle, score, submit
    from flows.worker import run_worker

_LAZY = {
    "JobHandle": "flows.submission",
    "batch_score": "flows.scoring",
    "create_schedule": "flows.schedules",
    "delete_schedule": "flows.schedules",
    "list_schedules": "flows.schedules",
    "load_job_file": "flows.jobfile",
    "prefect_api": "flows.api",
    "run_worker": "flows.worker",
    "score": "flows.submission",
    "submit": "flows.submission",
}

__all__ = [
    "FlowSettings",
    "JobHandle",
    "batch_score",
    "create_schedule",
    "delete_schedule",
    "list_schedules",
    "load_job_file",
    "prefect_api",
    "run_worker",
    "score",
    "submit",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'flows' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
