"""The batchpred engine: model packages, scoring, jobs. Knows nothing of Prefect.

The names below load on first use, so a scoring worker process, which needs
only ``batch.engine.pool.child`` and what it imports, does not import the whole engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.engine.report import JobReport
    from batch.engine.run import run_job, score
    from batch.engine.spec import JobSpec

_LAZY = {
    "JobReport": "batch.engine.report",
    "JobSpec": "batch.engine.spec",
    "run_job": "batch.engine.run",
    "score": "batch.engine.run",
}

__all__ = ["JobReport", "JobSpec", "run_job", "score"]

__getattr__ = lazy_names(__name__, _LAZY)
