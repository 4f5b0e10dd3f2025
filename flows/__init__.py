"""Prefect flows over the engine in ``batch``; the only package that imports prefect.

``flows.prefect_env`` is imported first: it points Prefect's home and database at
the batchpred home (unless configured otherwise) before ``prefect`` loads.
The other names load on first use, so ``batchpred score`` and friends do not
pay for importing Prefect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flows.prefect_env  # noqa: F401  (first: before prefect loads)
from batch.lazy import lazy_names

if TYPE_CHECKING:
    from flows.api import prefect_api
    from flows.jobfile import load_job_file
    from flows.schedules import create_schedule, delete_schedule, list_schedules
    from flows.scoring import batch_score
    from flows.settings import FlowSettings
    from flows.submission import JobHandle, score, submit
    from flows.worker import run_worker

_LAZY = {
    "FlowSettings": "flows.settings",
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

__getattr__ = lazy_names(__name__, _LAZY)
