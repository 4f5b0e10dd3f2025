"""``JobReport``: what a job did, for the summary line, ``job show`` and the JSON report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def batchpred_version() -> str:
    try:
        return version("batchpred")
    except PackageNotFoundError:
        return "unknown"


@dataclass(slots=True)
class JobReport:
    """Counts, timings and resources of one job (the totals include resumed chunks)."""

    job_id: str
    output: str
    model_digest: str
    input: str = ""
    status: str = "running"
    model_name: str = ""
    model_version: str = ""
    rows_scored: int = 0
    rows_failed: int = 0
    chunks: int = 0
    chunk_rows: int = 0
    chunk_bytes: int = 0
    resumed_chunks: int = 0
    seconds: float = 0.0
    input_bytes: int | None = None
    peak_memory_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    model_loads: dict[int, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    quarantine: str | None = None
    scorer: str = ""  # what scored the rows: "onnxruntime (...)" or "scikit-learn: <why>"
    monitoring: str = ""  # "on (baseline <fingerprint>)" or "off: <why>"
    monitoring_records: list[str] = field(default_factory=list)  # files published
    predictions_logged: int | None = None  # rows of the prediction log (association id on)
    duplicate_association_ids: int = 0  # logged rows whose id an earlier row had
    already_done: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds > 0 else 0.0

    def progress_fields(self, fraction: float | None = None) -> dict[str, Any]:
        """Progress in DataRobot's batch prediction names."""
        done = 100.0 if self.status == "succeeded" else (fraction or 0.0) * 100
        return {
            "percentageCompleted": round(done, 1),
            "scoredRows": self.rows_scored,
            "failedRows": self.rows_failed,
            "elapsedTimeSec": round(self.seconds, 3),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("already_done")
        data["model_loads"] = {str(k): v for k, v in self.model_loads.items()}
        data["rows_per_second"] = round(self.rows_per_second, 1)
        data["version"] = batchpred_version()
        data.update(self.progress_fields())
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobReport:
        names = set(cls.__dataclass_fields__)
        report = cls(**{k: v for k, v in data.items() if k in names})
        report.model_loads = {int(k): v for k, v in report.model_loads.items()}
        return report
