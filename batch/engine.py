"""A scoring job: read -> score (worker pool) -> write, in order, nothing partial.

The input schema is checked against the model before the output is opened,
so a missing column fails the job before anything is scored or written. The
output is committed only when every chunk was scored and written; any error
aborts it, leaving the destination as it was.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from batch.deployments import resolve_model
from batch.models.package import ModelPackage
from batch.scoring import ScoringOptions, output_schema
from batch.workers import ScoringPool, default_workers
from connectors import IntakeRequest, OutputRequest, Progress, open_intake, open_output

DEFAULT_CHUNK_ROWS = 100_000


class JobSpec(BaseModel):
    """Everything a scoring job needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="Model package directory or deployment name.")
    input: str = Field(description="Input URI or path.")
    output: str = Field(description="Output URI or path.")
    input_options: dict[str, str] = Field(default_factory=dict, description="Intake options.")
    output_options: dict[str, str] = Field(default_factory=dict, description="Output options.")
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1, description="Rows per chunk.")
    workers: int | None = Field(default=None, ge=0, description="Scoring processes; "
                                "0 scores in this process; default one per core.")
    passthrough: tuple[str, ...] = Field(default=(), description="Input columns to copy.")
    passthrough_all: bool = Field(default=False, description="Copy every input column.")
    overwrite: bool = Field(default=False, description="Replace an existing output.")
    job_id: str | None = Field(default=None, description="Job id; generated when absent.")


@dataclass(slots=True)
class JobReport:
    """What a finished job did."""

    job_id: str
    output: str
    model_digest: str
    rows_scored: int = 0
    rows_failed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    model_loads: dict[int, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress, JobReport], None]


def _peek(batches: Iterator[pa.RecordBatch]) -> tuple[Iterator[pa.RecordBatch], bool]:
    """The same batches, and whether there is at most one."""
    head = list(itertools.islice(batches, 2))
    return itertools.chain(head, batches), len(head) <= 1


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def run_job(
    spec: JobSpec,
    *,
    package: ModelPackage | None = None,
    on_progress: ProgressCallback | None = None,
) -> JobReport:
    """Score ``spec.input`` into ``spec.output``.

    Raises:
        SchemaError: the input lacks a required column (nothing is written).
        ConnectorError: the input cannot be read or the output written.
        ModelOutputError, UserCodeError, JobError: scoring failed; the output
            is aborted, so nothing partial is published.
    """
    started = time.perf_counter()
    package = package or resolve_model(spec.model)
    options = ScoringOptions(passthrough=spec.passthrough, passthrough_all=spec.passthrough_all)
    intake = open_intake(IntakeRequest(
        uri=spec.input, chunk_rows=spec.chunk_rows, options=spec.input_options,
        text_columns=tuple(package.manifest.feature_names),
    ))
    report = JobReport(job_id=spec.job_id or new_job_id(), output=spec.output,
                       model_digest=package.digest)
    try:
        schema = output_schema(package.manifest, intake.schema, options)
        output = open_output(OutputRequest(uri=spec.output, options=spec.output_options,
                                           overwrite=spec.overwrite))
        try:
            output.start(schema)
            chunks, single = _peek(intake.batches())
            workers = default_workers() if spec.workers is None else spec.workers
            if single:
                workers = 0  # one chunk: starting processes would cost more than it saves
            with ScoringPool(package, options, workers=workers) as pool:
                for result in pool.map_ordered(chunks):
                    output.write(result.batch)
                    report.chunks += 1
                    report.rows_scored += result.batch.num_rows
                    report.rows_failed += result.failed_rows
                    if on_progress is not None:
                        on_progress(intake.progress(), report)
                report.model_loads = dict(pool.loads_by_pid)
            output.commit()
        except BaseException:
            output.abort()
            raise
    finally:
        intake.close()
    report.seconds = time.perf_counter() - started
    return report
