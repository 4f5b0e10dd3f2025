"""One attempt of a job: checked against its record, pre-flighted, and ready to score.

A job id names a job across attempts: the first attempt records it, a failed or
killed one leaves it resumable, and :func:`prepare` checks that a resume asks
for the same job (same model, input, output and options) before it continues
after the chunks the manifest records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from batch.engine.budget import ErrorBudget
from batch.engine.preflight import PreflightResult, preflight
from batch.engine.report import JobReport
from batch.engine.spec import JobSpec
from batch.engine.store import ChunkRecord, JobRecord, JobStatus, JobStore
from batch.engine.workers import JobWorkers, scoring_options
from batch.errors import ConfigError
from batch.models.onnx_fastpath import kept_fast_path, model_path
from batch.models.package import ModelPackage
from batch.monitoring.baseline import Baseline, read_baseline
from batch.monitoring.humility import humility_of
from batch.scoring.columns import ScoringOptions
from batch.scoring.humility import HumilityRule
from connectors import (
    Output,
    OutputRequest,
    Progress,
    check_output_options,
    check_uri,
    open_output,
    scheme_of,
)

ProgressCallback = Callable[[Progress, JobReport], None]
_RESUME_KEYS = ("input", "output", "input_options", "output_options", "passthrough",
                "passthrough_all", "quarantine", "monitoring")


@dataclass(slots=True)
class Attempt:
    """What one attempt of a job carries through the pipeline."""

    spec: JobSpec
    package: ModelPackage
    record: JobRecord
    report: JobReport
    budget: ErrorBudget
    options: ScoringOptions
    committed: list[ChunkRecord]
    store: JobStore
    workers: JobWorkers
    fast_model: str | None = None  # an exact ONNX conversion to score with
    baseline: Baseline | None = None  # monitoring on: chunks are counted on its buckets
    challengers: tuple[ModelPackage, ...] = ()  # scored beside the champion, logged
    publishing: bool = False  # an earlier attempt stopped while publishing the output
    on_progress: ProgressCallback | None = None
    output: Output | None = None  # open while the pipeline runs
    quarantine: Output | None = None
    outputs: list[Output] = field(default_factory=list)  # every one opened, to close


def check_uris(spec: JobSpec) -> None:
    """Refuse a URI with a secret, and bad output options (a secret given as one),
    before any record of the job is written. (Input options are checked when the
    pre-flight opens the input, also before.)

    Raises:
        CredentialsInUriError: a URI carries credentials.
        ConnectorConfigError: a bad output option; its value is never shown.
    """
    for uri in (spec.input, spec.output, spec.quarantine, spec.monitoring_store):
        if uri:
            check_uri(uri)
    check_output_options(spec.output, spec.output_options)
    if spec.monitoring_store_options:
        from batch.monitoring.stage import store_options

        store_options(spec.monitoring_store_options)
        if spec.monitoring_store is None:
            raise ConfigError("--monitoring-store-option is given without --monitoring-store")


def check_destination(spec: JobSpec, job_id: str) -> None:
    """Open the output (and the quarantine) as the job will, and let go of them: their
    checks (exists without --overwrite, a missing bucket, a folder that cannot be
    written) run in milliseconds, before the pre-flight scores anything.

    Raises:
        OutputExistsError, OutputError, ConnectorConfigError and the store's errors.
    """
    targets = [(spec.output, dict(spec.output_options), job_id)]
    if spec.quarantine:
        targets.append((spec.quarantine, quarantine_options(spec), job_id + "-quarantine"))
    for uri, options, name in targets:
        open_output(OutputRequest(uri=uri, options=options, overwrite=spec.overwrite,
                                  job_id=name))


def quarantine_options(spec: JobSpec) -> dict[str, str]:
    """The quarantine's options: the output's storage options (endpoint, profile, ...)
    when it lives in the same kind of store, none of its format options."""
    assert spec.quarantine is not None
    same_store = scheme_of(spec.quarantine) == scheme_of(spec.output)
    return {k: v for k, v in spec.output_options.items()
            if same_store and k not in ("format", "layout", "mode", "key_columns")}


def prepare(spec: JobSpec, job_id: str, package: ModelPackage, *, store: JobStore,
            workers: JobWorkers, previous: JobRecord | None = None) -> Attempt:
    """Check ``spec`` against the job's record (``previous``), pre-flight it, record it as
    running, and count what earlier attempts committed.

    Raises:
        ConfigError: the job exists and ``spec`` is not a resume, or differs from it.
        The pre-flight's errors (:func:`batch.engine.preflight.preflight`).
    """
    started = time.perf_counter()
    if previous is not None:  # a resume scores with the package the job started with
        package = workers.package = _started_with(previous, spec, package, home=store.home)
    rules = previous.humility if previous is not None else humility_rules(spec)
    association = previous.association_id if previous is not None else association_of(spec)
    challengers = _challengers(spec, previous, store.home)
    options = scoring_options(spec, humility_of(rules, package))
    if previous is not None and not spec.resume:
        raise ConfigError(f"job {job_id!r} already exists ({previous.status}); pass --resume "
                          "to continue it, or choose another --job-id")
    if previous is not None:
        _check_same(previous, spec, package)
    else:  # an output that exists or cannot be written fails now, before any scoring
        check_destination(spec, job_id)
    check, scorer, fast_model = _preflight(spec, package, previous, store=store,
                                           workers=workers, association_id=association)
    if fast_model is not None and spec.executor == "dask" and spec.dask_address:
        # the conversion is a file under this machine's home, out of a remote worker's reach
        scorer, fast_model = package.manifest.artifact.kind, None
    was_publishing = previous is not None and previous.status is JobStatus.PUBLISHING
    record = previous or JobRecord(job_id=job_id, spec=spec, model_digest=package.digest,
                                   chunk_rows=check.chunk_rows, chunk_bytes=check.chunk_bytes,
                                   input_bytes=check.input_bytes,
                                   chunks_planned=check.chunks, rows_seen=check.rows_seen,
                                   humility=tuple(rules), association_id=association,
                                   logged=association is not None or bool(challengers),
                                   challengers=tuple(c.digest for c in challengers))
    record.scorer, record.fast_model = scorer, fast_model
    record.status, record.error = JobStatus.RUNNING, None
    store.save(record)
    committed = store.chunks(job_id) if previous is not None else []
    report = JobReport(
        job_id=job_id, output=spec.output, model_digest=package.digest, input=spec.input,
        model_name=package.manifest.name, model_version=package.manifest.version,
        chunk_rows=record.chunk_rows or 0, chunk_bytes=record.chunk_bytes or 0,
        resumed_chunks=len(committed),
        input_bytes=record.input_bytes, options=spec.model_dump(mode="json"),
        quarantine=spec.quarantine,
        timings={"_started": started, "preflight": check.seconds},
        scorer=record.scorer,
    )
    baseline, report.monitoring = monitoring(spec, package)
    budget = ErrorBudget(spec.max_error_rate, spec.max_failed_rows)
    for chunk in committed:
        report.chunks += 1
        report.rows_scored += chunk.rows
        report.rows_failed += chunk.failed
        budget.rows += chunk.rows
        budget.failed += chunk.failed
    return Attempt(spec, package, record, report, budget, options, committed, store, workers,
                   record.fast_model, baseline, challengers, was_publishing)


def humility_rules(spec: JobSpec) -> tuple[HumilityRule, ...]:
    """The job's humility rules: its own, else its deployment's (none for a package path)."""
    if spec.humility is not None:
        return spec.humility
    if Path(spec.model).expanduser().is_dir():
        return ()
    from batch.deployments import DeploymentRegistry

    deployment = DeploymentRegistry().find(spec.model)
    return deployment.settings.humility if deployment is not None else ()


def challenger_jobs(run: Attempt) -> tuple[tuple[ModelPackage, str | None], ...]:
    """Each challenger with the ONNX conversion a job of its package checked and kept in
    the home (None: its loader), as the champion's is chosen."""
    out = []
    for package in run.challengers:
        fast = None
        local = run.spec.executor == "local" or not run.spec.dask_address
        if run.spec.onnx and local and package.manifest.artifact.kind == "sklearn":
            kept = kept_fast_path(package, run.store.home / "onnx")
            if kept is not None and kept.model is not None:
                fast = str(model_path(run.store.home / "onnx", package))
        out.append((package, fast))
    return tuple(out)


def _challengers(spec: JobSpec, previous: JobRecord | None, home: Path
                 ) -> tuple[ModelPackage, ...]:
    """The challengers the job scores: its deployment's when it starts (none with
    monitoring off), the same packages when it resumes."""
    from batch.deployments import DeploymentRegistry

    registry = DeploymentRegistry(home)
    if previous is not None:
        found = [registry.stored_package(digest) for digest in previous.challengers]
        missing = [d[:12] for d, p in zip(previous.challengers, found, strict=True) if p is None]
        if missing:
            raise ConfigError(f"--resume: the challenger package {', '.join(missing)} the job "
                              "started with is no longer in the home's store")
        return tuple(p for p in found if p is not None)
    if not spec.monitoring or Path(spec.model).expanduser().is_dir():
        return ()
    if registry.find(spec.model) is None:
        return ()
    return tuple(package for _, package in registry.challenger_packages(spec.model))


def association_of(spec: JobSpec) -> str | None:
    """The input column the job logs its predictions under: its deployment's association
    id, when the deployment tracks accuracy or has challengers (None: no log, and none
    with monitoring off)."""
    if not spec.monitoring or Path(spec.model).expanduser().is_dir():
        return None
    from batch.deployments import DeploymentRegistry

    deployment = DeploymentRegistry().find(spec.model)
    if deployment is None or deployment.settings.association_id is None:
        return None
    on = deployment.settings.accuracy or bool(deployment.challengers)
    return deployment.settings.association_id if on else None


def monitoring(spec: JobSpec, package: ModelPackage) -> tuple[Baseline | None, str]:
    """The baseline to count the job's chunks on, and what the report says of it.

    Raises:
        PackageError: the manifest names a baseline that is missing or invalid.
    """
    if not spec.monitoring:
        return None, "off: --no-monitoring"
    baseline = read_baseline(package)
    if baseline is None:
        return None, (f"off: the package has no baseline (add one with `batchpred baseline "
                      f"{package.path} --training-data FILE`)")
    return baseline, f"on (baseline {baseline.fingerprint[:12]})"


def _preflight(spec: JobSpec, package: ModelPackage, previous: JobRecord | None, *,
               store: JobStore, workers: JobWorkers, association_id: str | None = None
               ) -> tuple[PreflightResult, str, str | None]:
    """The pre-flight, what scores the rows, and the ONNX model file (if that is it).

    A resumed job passed its pre-flight already, with the same model and input
    (the schema is still checked when the input opens, and its size must not
    have changed), so it starts scoring at once, with the same scorer.
    """
    fast_ok = previous is not None and (previous.fast_model is None or (
        spec.onnx and Path(previous.fast_model).exists()))
    if previous is not None and previous.scorer is not None and fast_ok:
        workers.plan(previous.chunks_planned if previous.chunk_bytes else None,
                     previous.input_bytes)
        check = PreflightResult(previous.chunk_rows, previous.chunk_bytes,
                                previous.input_bytes, 0.0, chunks=previous.chunks_planned)
        return check, previous.scorer, previous.fast_model
    check = preflight(spec, package, scoring_options(spec), onnx_cache=store.home / "onnx",
                      on_plan=workers.plan, association_id=association_id)
    fast = check.fast_path
    if fast is None:
        return check, package.manifest.artifact.kind, None
    if fast.model is None:
        return check, fast.note, None
    path = model_path(store.home / "onnx", package)
    if not path.exists():  # the home could not keep it: workers would not find it
        return check, f"scikit-learn: {path.parent} cannot be written", None
    return check, fast.note, str(path)


def _started_with(previous: JobRecord, spec: JobSpec, package: ModelPackage, *,
                  home: Path) -> ModelPackage:
    """The package a resumed job started with: its deployment's champion may have been
    replaced since, and the old one stays in the home's store under its digest. (A
    package directory changed since is not there: :func:`_check_same` refuses it.)"""
    if previous.model_digest == package.digest or Path(spec.model).expanduser().is_dir():
        return package
    from batch.deployments import DeploymentRegistry

    return DeploymentRegistry(home).stored_package(previous.model_digest) or package


def _check_same(previous: JobRecord, spec: JobSpec, package: ModelPackage) -> None:
    if previous.model_digest != package.digest:
        raise ConfigError(f"--resume: job {previous.job_id!r} scored with model "
                          f"{previous.model_digest[:12]}, not {package.short_id}")
    old, new = previous.spec.model_dump(), spec.model_dump()
    for key in _RESUME_KEYS:
        if old[key] != new[key]:
            raise ConfigError(f"--resume: job {previous.job_id!r} ran with {key}="
                              f"{old[key]!r}, not {new[key]!r}")
