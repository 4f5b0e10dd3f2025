"""The job store: each job's record, its manifest of committed chunks, its report.

Layout under ``<home>/jobs/<job id>/``: ``job.json`` (spec, resolved chunk
size, status), ``manifest.jsonl`` (one line per committed chunk, appended and
fsynced after the output staged the chunk durably) and ``report.json``.
A line cut short by a crash is ignored: its chunk is simply redone.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch.engine.spec import JobSpec
from batch.errors import ConfigError, validation_message
from batch.scoring.humility import HumilityRule
from batch.settings import home_dir
from connectors.atomic_file import open_atomic, write_atomic

if TYPE_CHECKING:
    from batch.monitoring.stats import ChunkStats


class JobStatus(StrEnum):
    RUNNING = "running"
    PUBLISHING = "publishing"  # every chunk staged; the output is being published
    FAILED = "failed"
    SUCCEEDED = "succeeded"


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    spec: JobSpec
    model_digest: str
    chunk_rows: int | None = Field(default=None, description="Rows per streamed chunk.")
    chunk_bytes: int | None = Field(default=None, description="Input bytes per chunk when "
                                    "workers read byte ranges themselves; a resume reuses it.")
    input_bytes: int | None = Field(default=None, description="Input size, to spot changes.")
    chunks_planned: int | None = Field(default=None, description="Chunks the input makes "
                                       "(byte ranges; or rows / chunk rows), if known.")
    rows_seen: int = Field(default=0, description="Rows the pre-flight read: the job "
                           "cannot succeed with fewer.")
    scorer: str | None = Field(default=None, description="What scores the rows, as the "
                               "pre-flight chose it; a resume keeps it.")
    fast_model: str | None = Field(default=None, description="The checked ONNX conversion "
                                   "the rows are scored with, if any.")
    humility: tuple[HumilityRule, ...] = Field(default=(), description="The humility rules "
                                               "the job applies, fixed when it started.")
    association_id: str | None = Field(default=None, description="The input column its "
                                       "predictions are logged under (the deployment's "
                                       "association id when it started).")
    logged: bool = Field(default=False, description="Whether it keeps a prediction log "
                         "(an association id, or challengers).")
    challengers: tuple[str, ...] = Field(default=(), description="Digests of the "
                                         "challengers scored beside the champion, fixed "
                                         "when it started.")
    status: JobStatus = JobStatus.RUNNING
    error: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ChunkRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    start_row: int = Field(description="Input row where the chunk starts (0-based).")
    rows: int
    failed: int
    receipt: dict[str, Any]
    quarantine: dict[str, Any] | None = None
    stats: dict[str, Any] | None = Field(default=None, description="The chunk's counts on "
                                         "the baseline's buckets (monitoring on).")
    seconds: float = Field(default=0.0, description="The worker's time on the chunk.")
    ended_at: datetime | None = Field(default=None, description="When it was committed.")
    logged: int | None = Field(default=None, description="Rows in the chunk's prediction "
                               "log (a file beside the manifest), when predictions are logged.")
    challengers: dict[str, dict[str, float]] = Field(default_factory=dict, description=(
        "Per challenger digest: rows logged, seconds and failed rows of its scoring."))
    score_seconds: float | None = Field(default=None, description="Of seconds, the model's "
                                        "own scoring (feature checks included).")


class JobStore:
    """Job records under ``<home>/jobs``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or home_dir()
        self.root = self.home / "jobs"
        self._manifest: IO[str] | None = None

    def path(self, job_id: str) -> Path:
        return self.root / job_id

    def load(self, job_id: str) -> JobRecord | None:
        file = self.path(job_id) / "job.json"
        if not file.exists():
            return None
        try:
            return JobRecord.model_validate_json(file.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ConfigError(f"{file}: corrupt job record: {validation_message(exc)}"
                              ) from exc

    def save(self, record: JobRecord) -> None:
        record.updated_at = datetime.now(UTC)
        write_atomic(self.path(record.job_id) / "job.json", record.model_dump_json(indent=2))

    def chunks(self, job_id: str) -> list[ChunkRecord]:
        """Committed chunks 0..k-1; a torn or out-of-order tail is dropped."""
        file = self.path(job_id) / "manifest.jsonl"
        if not file.exists():
            return []
        chunks: list[ChunkRecord] = []
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                chunk = ChunkRecord.model_validate_json(line)
            except ValidationError:
                break
            if chunk.index != len(chunks):
                break
            chunks.append(chunk)
        return chunks

    def open_manifest(self, job_id: str, kept: list[ChunkRecord]) -> None:
        """Rewrite the manifest to ``kept`` and keep it open for appending."""
        file = self.path(job_id) / "manifest.jsonl"
        write_atomic(file, "".join(c.model_dump_json() + "\n" for c in kept))
        self._manifest = file.open("a", encoding="utf-8")

    def append(self, chunk: ChunkRecord) -> None:
        assert self._manifest is not None, "open_manifest() first"
        self._manifest.write(chunk.model_dump_json() + "\n")
        self._manifest.flush()
        os.fsync(self._manifest.fileno())

    def save_log(self, job_id: str, index: int, log: pa.RecordBatch, *,
                 model: str | None = None) -> None:
        """Keep chunk ``index``'s prediction log (of challenger ``model``, else the
        champion's), before its manifest line is written: a chunk scored again replaces
        it."""
        with open_atomic(self._log(job_id, index, model)) as sink, \
                pa.ipc.new_file(sink, log.schema) as writer:  # straight to the file
            writer.write_batch(log)

    def log(self, job_id: str, index: int, *, model: str | None = None) -> pa.RecordBatch:
        """Chunk ``index``'s prediction log (of challenger ``model``).

        Raises:
            OSError: it is missing.
        """
        with pa.memory_map(str(self._log(job_id, index, model))) as source:
            table = pa.ipc.open_file(source).read_all()
        return table.combine_chunks().to_batches()[0] if table.num_rows else \
            pa.RecordBatch.from_pylist([], schema=table.schema)

    def _log(self, job_id: str, index: int, model: str | None) -> Path:
        prefix = f"{model[:16]}-" if model else ""
        return self.path(job_id) / "predictions" / f"{prefix}chunk-{index:06d}.arrow"

    def close_manifest(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None

    def stats(self, job_id: str) -> ChunkStats | None:
        """The merged counts of the job's committed chunks (None: none were counted).

        Each committed chunk is in the manifest once, so each input row counts once,
        however often the job was killed, resumed or retried.
        """
        from batch.monitoring.stats import ChunkStats, merged

        return merged(ChunkStats.from_json(c.stats) for c in self.chunks(job_id)
                      if c.stats is not None)

    def save_report(self, job_id: str, report: dict[str, Any]) -> Path:
        file = self.path(job_id) / "report.json"
        write_atomic(file, json.dumps(report, indent=2, default=str))
        return file

    def report(self, job_id: str) -> dict[str, Any] | None:
        file = self.path(job_id) / "report.json"
        if not file.exists():
            return None
        return json.loads(file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
