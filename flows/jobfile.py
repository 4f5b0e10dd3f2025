"""Job files: a :class:`batch.spec.JobSpec` as YAML, for schedules and submissions.

::

    model: credit-risk                 # deployment name or package directory
    input: s3://bucket/loans/2026-01-02.csv
    output: scored/loans.parquet       # relative paths are relative to this file
    passthrough: [loan_id]
    overwrite: true

A local path (no ``scheme://``) that is relative is taken relative to the job
file, so a schedule or a worker finds the same files whatever its directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from batch.engine.spec import JobSpec
from batch.errors import ConfigError, validation_message, yaml_message

_PATH_FIELDS = ("input", "output", "quarantine")


def load_job_file(path: str | Path) -> JobSpec:
    """Read and validate a job file.

    Raises:
        ConfigError: unreadable, not YAML, not a mapping, or a bad field; the
            message names the file and the field.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"job file {file}: cannot read it: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"job file {file}: not valid YAML: {yaml_message(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"job file {file}: expected a mapping of JobSpec fields "
                          f"(model, input, output, ...), got {type(data).__name__}")
    return job_from_mapping(_resolve_paths(data, file.resolve().parent), source=str(file))


def job_from_mapping(data: dict[str, Any], *, source: str = "job") -> JobSpec:
    """Validate ``data`` as a JobSpec.

    Raises:
        ConfigError: one line naming the first bad field and why.
    """
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            known = ", ".join(JobSpec.model_fields)
            raise ConfigError(f"{source}: unknown field {field!r} (known fields: {known})"
                              ) from None
        raise ConfigError(f"{source}: {validation_message(exc, first=True)}") from None


def with_job_id(spec: JobSpec, job_id: str) -> JobSpec:
    """``spec`` with another job id.

    Raises:
        ConfigError: ``job_id`` is not a valid job id.
    """
    return job_from_mapping({**spec.model_dump(), "job_id": job_id}, source="--job-id")


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(data)
    for key in _PATH_FIELDS:
        value = out.get(key)
        if isinstance(value, str) and "://" not in value:
            resolved = str((base / Path(value).expanduser()).resolve())
            out[key] = resolved + ("/" if value.endswith("/") else "")
    model = out.get("model")
    if isinstance(model, str) and (base / Path(model).expanduser()).is_dir():
        out["model"] = str((base / Path(model).expanduser()).resolve())
    return out
