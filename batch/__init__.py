"""The batchpred engine: model packages, scoring, jobs. Knows nothing of Prefect."""

from batch.engine import JobReport, JobSpec, run_job

__all__ = ["JobReport", "JobSpec", "run_job"]
