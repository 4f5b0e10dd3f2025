"""A scoring job: spec, pre-flight, plan, run, job store, error budget, writer, report.

:func:`run_job` scores a :class:`JobSpec` exactly once into its output;
:func:`plan_job` pre-flights and records a job and cuts it into partitions;
:mod:`batch.engine.pool` holds the scoring processes. The names below load on
first use, so the command line can import the job's option rules
(:mod:`batch.engine.options`) and start its workers before the engine loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.engine.report import JobReport
    from batch.engine.run import JobPlan, plan_job, run_job, score
    from batch.engine.spec import JobSpec, new_job_id
    from batch.engine.store import JobStatus, JobStore
    from batch.engine.workers import JobWorkers

_LAZY = {
    "JobPlan": "batch.engine.run",
    "JobReport": "batch.engine.report",
    "JobSpec": "batch.engine.spec",
    "JobStatus": "batch.engine.store",
    "JobStore": "batch.engine.store",
    "JobWorkers": "batch.engine.workers",
    "new_job_id": "batch.engine.spec",
    "plan_job": "batch.engine.run",
    "run_job": "batch.engine.run",
    "score": "batch.engine.run",
}

__all__ = [
    "JobPlan",
    "JobReport",
    "JobSpec",
    "JobStatus",
    "JobStore",
    "JobWorkers",
    "new_job_id",
    "plan_job",
    "run_job",
    "score",
]

__getattr__ = lazy_names(__name__, _LAZY)
