"""The batchpred engine: model packages, scoring, jobs. Knows nothing of Prefect."""

from batch.engine import run_job, score
from batch.report import JobReport
from batch.spec import JobSpec

__all__ = ["JobReport", "JobSpec", "run_job", "score"]
