"""``JobSpec``: everything a scoring job needs, as it crosses process and API boundaries."""

from __future__ import annotations

import re
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from batch.engine.options import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_PREFLIGHT_ROWS,
    MIN_CHUNK_BYTES,
    parse_size,
)
from batch.scoring.humility import HumilityRule
from connectors.secrets import masked_options


def new_job_id() -> str:
    """A job id from the time and a random suffix: ``20261129-221500-1a2b3c4d``."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


class JobSpec(BaseModel):
    """A scoring job. Frozen; ``extra="forbid"`` so a typo in a job file is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="Model package directory or deployment name.")
    input: str = Field(description="Input URI or path.")
    output: str = Field(description="Output URI or path.")
    input_options: dict[str, str] = Field(default_factory=dict, description="Intake options.")
    output_options: dict[str, str] = Field(default_factory=dict, description="Output options.")
    chunk_rows: int | None = Field(default=None, ge=1, description="Rows per chunk; "
                                   "default: as many as fit in chunk_size.")
    chunk_size: str = Field(default=DEFAULT_CHUNK_SIZE, description="Input per chunk when "
                            "chunk_rows is not given: bytes of a CSV file that workers read "
                            "themselves; else twice the in-memory size of streamed chunks.")
    workers: int | None = Field(default=None, ge=0, description="Scoring processes, this "
                                "one included (0 or 1: only this one); default one per core.")
    executor: Literal["local", "dask"] = Field(default="local", description="Where chunks "
                                               "are scored: local processes or a Dask cluster.")
    dask_address: str | None = Field(default=None, description="Dask scheduler address "
                                     "(tcp://host:8786); default: a LocalCluster.")
    passthrough: tuple[str, ...] = Field(default=(), description="Input columns to copy.")
    passthrough_all: bool = Field(default=False, description="Copy every input column.")
    overwrite: bool = Field(default=False, description="Replace an existing output.")
    job_id: str | None = Field(default=None, description="Job id; generated when absent.")
    resume: bool = Field(default=False, description="Continue a failed job with this id "
                         "(a job killed before it recorded anything starts afresh).")
    max_error_rate: float = Field(default=DEFAULT_MAX_ERROR_RATE, ge=0, le=1,
                                  description="Abort when more than this share of rows fail.")
    max_failed_rows: int | None = Field(default=None, ge=0,
                                        description="Abort when more rows than this fail.")
    quarantine: str | None = Field(default=None, description="Also write failed rows "
                                   "(original values and reason) here.")
    onnx: bool = Field(default=True, description="Score scikit-learn models with "
                       "onnxruntime when their ONNX conversion matches on the pre-flight rows.")
    monitoring: bool = Field(default=True, description="Count every chunk on the "
                             "package's baseline and publish the records to the monitoring "
                             "store (a package without a baseline scores as before).")
    monitoring_store: str | None = Field(default=None, description="Where the records go: "
                                         "a directory or URL; default: the deployment's "
                                         "setting, else <home>/monitoring.")
    monitoring_store_options: dict[str, str] = Field(default_factory=dict, description=(
        "Storage options of the monitoring store (endpoint_url, profile, region, ...)."))
    humility: tuple[HumilityRule, ...] | None = Field(default=None, description="Humility "
                                                      "rules that flag, override or reject "
                                                      "rows; default: the deployment's.")
    preflight_rows: int = Field(default=DEFAULT_PREFLIGHT_ROWS, ge=0, description="Score "
                                "this many leading rows first and fail fast (0: off).")

    @field_serializer("input_options", "output_options", "monitoring_store_options")
    def _masked(self, options: dict[str, str]) -> dict[str, str]:
        """Options as they are recorded (job records, reports, flow parameters): a value
        under a secret-like key, or a URL's password, is never written out."""
        return masked_options(options)

    @field_validator("chunk_size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        if parse_size(value) < MIN_CHUNK_BYTES:
            raise ValueError(f"{value!r} is below the 1KiB minimum")
        return value

    @field_validator("job_id")
    @classmethod
    def _check_job_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", value):
            raise ValueError(f"{value!r} is not a job id: use 1-100 letters, digits, '.', "
                             "'_' or '-', starting with a letter or digit")
        return value
