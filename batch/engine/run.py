"""A scoring job: read -> score (worker pool) -> write, ordered, exactly once.

1. Pre-flight: the first rows are read and scored in this process, so a schema
   or model problem fails in seconds, before workers start or output exists.
2. The pipeline: the intake streams chunks, the worker pool scores them
   (a bounded number in flight), the output stages them in input order.
3. Every staged chunk is recorded in the job manifest; a job that fails or is
   killed can be resumed with the same job id and continues after the last
   recorded chunk, ending with output identical to an uninterrupted run.
4. The output is published only when every chunk is in and the error budget
   holds; otherwise nothing appears where results are read.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from batch.deployments import resolve_model
from batch.engine.budget import ErrorBudget
from batch.engine.pool.child import ChunkJob, ChunkResult
from batch.engine.preflight import PreflightResult, independent_parts, preflight
from batch.engine.report import JobReport
from batch.engine.resources import PeakMemory
from batch.engine.spec import JobSpec, new_job_id
from batch.engine.store import ChunkRecord, JobRecord, JobStatus, JobStore
from batch.engine.workers import JobWorkers, scoring_options
from batch.engine.writer import OrderedWriter
from batch.errors import ConfigError, ErrorBudgetExceeded, JobError
from batch.models.manifest import FeatureType
from batch.models.onnx_fastpath import model_path
from batch.models.package import ModelPackage
from batch.scoring.columns import STATUS_COLUMN, ScoringOptions, output_schema
from connectors import (
    Intake,
    IntakeRequest,
    Output,
    OutputRequest,
    Progress,
    Receipt,
    check_uri,
    open_intake,
    open_output,
    scheme_of,
)

ProgressCallback = Callable[[Progress, JobReport], None]
_RESUME_KEYS = ("input", "output", "input_options", "output_options", "passthrough",
                "passthrough_all", "quarantine")


@dataclass(slots=True)
class _Run:
    """What one attempt of a job carries through the pipeline."""

    spec: JobSpec
    package: ModelPackage
    record: JobRecord
    report: JobReport
    budget: ErrorBudget
    options: ScoringOptions
    committed: list[ChunkRecord]
    fast_model: str | None = None  # an exact ONNX conversion to score with
    workers: JobWorkers | None = None


def run_job(
    spec: JobSpec,
    *,
    package: ModelPackage | None = None,
    on_progress: ProgressCallback | None = None,
    store: JobStore | None = None,
    workers: JobWorkers | None = None,
    until_chunk: int | None = None,
) -> JobReport:
    """Score ``spec.input`` into ``spec.output``.

    ``until_chunk``: score only the chunks before this index, then stop with
    the output staged (unpublished) and the job resumable; the report's status
    stays ``running`` unless the input ended there. ``workers``: scoring
    processes to use (and leave running) instead of starting them here.

    Raises:
        SchemaError, PackageError: found by the pre-flight, before any output.
        ConnectorError: the input cannot be read or the output written.
        ErrorBudgetExceeded: too many rows failed; nothing is published.
        ModelOutputError, UserCodeError, JobError: scoring failed. The output
            is not published; the job can be resumed with ``resume=True``.
    """
    _check_uris(spec)
    store = store or JobStore()
    package = package or resolve_model(spec.model)
    job_id = spec.job_id or new_job_id()
    previous = store.load(job_id)
    if previous is not None and previous.status is JobStatus.SUCCEEDED:
        return _finished(store, job_id)
    owned = workers is None
    workers = workers or JobWorkers(spec, package)
    try:
        with PeakMemory() as memory:
            run = _prepare(spec, job_id, package, previous, store, workers)
            try:
                done = _pipeline(run, store, on_progress, until_chunk)
            except BaseException as exc:
                run.record.status = JobStatus.FAILED
                run.record.error = f"{type(exc).__name__}: {exc}"
                store.save(run.record)
                raise
            finally:
                store.close_manifest()
    finally:
        if owned:
            workers.close()
    run.report.peak_memory_bytes = memory.peak_bytes
    run.report.seconds = time.perf_counter() - run.report.timings.pop("_started")
    run.report.timings["total"] = run.report.seconds
    if not done:
        run.report.status = JobStatus.RUNNING
        return run.report
    run.report.status = run.record.status = JobStatus.SUCCEEDED
    store.save(run.record)
    store.save_report(job_id, run.report.to_json())
    return run.report


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A job that passed its pre-flight, cut into partitions of whole chunks."""

    job_id: str
    finished: bool  # the job id had already succeeded: nothing to score
    chunks: int | None  # chunks the input makes, as planned (None: unknown)
    partitions: tuple[tuple[int, int | None], ...]  # [start, stop) chunk indexes, last open


def plan_job(
    spec: JobSpec,
    *,
    package: ModelPackage | None = None,
    store: JobStore | None = None,
    workers: JobWorkers | None = None,
    partition_chunks: int = 16,
) -> JobPlan:
    """Run the pre-flight and record the job (so that :func:`run_job` with
    ``resume=True`` starts scoring at once), and cut it into partitions of
    ``partition_chunks`` chunks for ``run_job(..., until_chunk=stop)`` calls.

    Raises:
        ConfigError: ``spec`` has no job id, or the job exists and ``spec`` is
            not a resume, or it differs from the recorded job.
        The pre-flight's errors (see :func:`run_job`).
    """
    if not spec.job_id:
        raise ConfigError("plan_job needs a job id")
    _check_uris(spec)
    store = store or JobStore()
    package = package or resolve_model(spec.model)
    previous = store.load(spec.job_id)
    if previous is not None and previous.status is JobStatus.SUCCEEDED:
        return JobPlan(spec.job_id, True, None, ())
    run = _prepare(spec, spec.job_id, package, previous, store,
                   workers or JobWorkers(spec, package, start=False))
    chunks = run.record.chunks_planned
    size = max(1, partition_chunks)
    stops: list[int | None] = list(range(size, chunks, size)) if chunks else []
    starts = [0, *(s for s in stops if s is not None)]
    return JobPlan(spec.job_id, False, chunks, tuple(zip(starts, [*stops, None], strict=True)))


def score(job: JobSpec | Mapping[str, Any]) -> JobReport:
    """Run a job now, in this process and its scoring workers, without Prefect.

    ``job`` is a :class:`JobSpec` or its fields (as in a job file). Same errors
    as :func:`run_job`; ``flows.score`` runs the same job as a Prefect flow.
    """
    spec = job if isinstance(job, JobSpec) else JobSpec.model_validate(dict(job))
    return run_job(spec)


def _check_uris(spec: JobSpec) -> None:
    """Refuse a URI with a secret before any record of the job is written."""
    for uri in (spec.input, spec.output, spec.quarantine):
        if uri:
            check_uri(uri)


def _finished(store: JobStore, job_id: str) -> JobReport:
    data = store.report(job_id) or {}
    report = JobReport.from_json(data) if data else JobReport(job_id, "", "")
    report.already_done = True
    return report


def _prepare(
    spec: JobSpec, job_id: str, package: ModelPackage, previous: JobRecord | None,
    store: JobStore, workers: JobWorkers,
) -> _Run:
    started = time.perf_counter()
    options = scoring_options(spec)
    if previous is not None and not spec.resume:
        raise ConfigError(f"job {job_id!r} already exists ({previous.status}); pass --resume "
                          "to continue it, or choose another --job-id")
    if previous is not None:
        _check_same(previous, spec, package)
    check, scorer, fast_model = _preflight(spec, package, options, previous, store, workers)
    if fast_model is not None and spec.executor == "dask" and spec.dask_address:
        # the conversion is a file under this machine's home, out of a remote worker's reach
        scorer, fast_model = package.manifest.artifact.kind, None
    record = previous or JobRecord(job_id=job_id, spec=spec, model_digest=package.digest,
                                   chunk_rows=check.chunk_rows, chunk_bytes=check.chunk_bytes,
                                   input_bytes=check.input_bytes,
                                   chunks_planned=check.chunks)
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
    budget = ErrorBudget(spec.max_error_rate, spec.max_failed_rows)
    for chunk in committed:
        report.chunks += 1
        report.rows_scored += chunk.rows
        report.rows_failed += chunk.failed
        budget.rows += chunk.rows
        budget.failed += chunk.failed
    return _Run(spec, package, record, report, budget, options, committed, record.fast_model,
                workers)


def _preflight(spec: JobSpec, package: ModelPackage, options: ScoringOptions,
               previous: JobRecord | None, store: JobStore, workers: JobWorkers
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
    check = preflight(spec, package, options, onnx_cache=store.home / "onnx",
                      on_plan=workers.plan)
    fast = check.fast_path
    if fast is None:
        return check, package.manifest.artifact.kind, None
    if fast.model is None:
        return check, fast.note, None
    path = model_path(store.home / "onnx", package)
    if not path.exists():  # the home could not keep it: workers would not find it
        return check, f"scikit-learn: {path.parent} cannot be written", None
    return check, fast.note, str(path)


def _check_same(previous: JobRecord, spec: JobSpec, package: ModelPackage) -> None:
    if previous.model_digest != package.digest:
        raise ConfigError(f"--resume: job {previous.job_id!r} scored with model "
                          f"{previous.model_digest[:12]}, not {package.short_id}")
    old, new = previous.spec.model_dump(), spec.model_dump()
    for key in _RESUME_KEYS:
        if old[key] != new[key]:
            raise ConfigError(f"--resume: job {previous.job_id!r} ran with {key}="
                              f"{old[key]!r}, not {new[key]!r}")


def _open_output(uri: str, run: _Run, suffix: str = "") -> Output:
    """The output, or (``suffix``) the quarantine: it shares the output's options (endpoint,
    profile, ...) when it lives in the same kind of store."""
    options = dict(run.spec.output_options)
    if suffix:
        same_store = scheme_of(uri) == scheme_of(run.spec.output)
        options = {k: v for k, v in options.items()
                   if same_store and k not in ("format", "layout", "mode", "key_columns")}
    return open_output(OutputRequest(uri=uri, options=options, overwrite=run.spec.overwrite,
                                     job_id=run.record.job_id + suffix))


def _pipeline(run: _Run, store: JobStore, on_progress: ProgressCallback | None,
              until_chunk: int | None = None) -> bool:
    """Score (up to ``until_chunk``) and publish; False: stopped there, more to come."""
    spec = run.spec
    skip = sum(c.rows for c in run.committed)
    intake = open_intake(IntakeRequest(
        uri=spec.input, chunk_rows=run.record.chunk_rows or 1, options=spec.input_options,
        text_columns=tuple(run.package.manifest.feature_names),
        dictionary_columns=_scored_only_categories(run),
        skip_rows=0 if run.record.chunk_bytes else skip,
    ))
    outputs: list[Output] = []
    try:
        _check_unchanged(run, intake)
        output = _open_output(spec.output, run)
        outputs.append(output)
        quarantine = _open_output(spec.quarantine, run, "-quarantine") if spec.quarantine else None
        if quarantine is not None:
            outputs.append(quarantine)
        schema = output_schema(run.package.manifest, intake.schema, run.options)
        output.start(schema, resume=[c.receipt for c in run.committed])
        if quarantine is not None:
            quarantine.start(intake.schema.append(pa.field(STATUS_COLUMN, pa.string())),
                             resume=[c.quarantine or {} for c in run.committed])
        store.open_manifest(run.record.job_id, run.committed)
        if not _score_all(run, store, intake, output, quarantine, on_progress, skip,
                          until_chunk):
            run.budget.check()
            for out in outputs:
                out.suspend()
            return False
        run.budget.check(final=True)
        started = time.perf_counter()
        for out in outputs:
            out.commit()
        run.report.timings["commit"] = time.perf_counter() - started
        return True
    except BaseException as exc:
        for out in outputs:
            out.abort() if isinstance(exc, ErrorBudgetExceeded) else out.suspend()
        raise
    finally:
        intake.close()


def _scored_only_categories(run: _Run) -> tuple[str, ...]:
    """Category features that reach no output but the model, so they may be read
    dictionary-encoded (a passthrough or quarantine column keeps its input type)."""
    spec = run.spec
    if spec.passthrough_all or spec.quarantine:
        return ()
    return tuple(f.name for f in run.package.manifest.features
                 if f.type is FeatureType.CATEGORY and f.name not in spec.passthrough)


def _check_unchanged(run: _Run, intake: Intake) -> None:
    """A resumed job must read the input its committed chunks came from."""
    size, before = intake.progress().bytes_total, run.record.input_bytes
    if run.committed and size is not None and before is not None and size != before:
        raise JobError(f"{run.spec.input}: the input is {size:,} bytes now, {before:,} when "
                       f"job {run.record.job_id!r} started; it cannot be resumed on changed "
                       "input: start a new job")


def _chunks(run: _Run, intake: Intake, skip: int
            ) -> tuple[Iterator[Any], Callable[[int], Progress]]:
    """The chunks still to score, and how far a number of done chunks is."""
    timings = run.report.timings
    if run.record.chunk_bytes:
        parts = intake.byte_ranges(run.record.chunk_bytes)  # type: ignore[attr-defined]
        if parts is None:
            raise JobError(f"{run.spec.input}: can no longer be split into byte ranges")
        intake.close()  # workers read the ranges; drop the reader's buffers here
        total = sum(p.size for p in parts)
        ends = list(itertools.accumulate(p.size for p in parts))

        def by_bytes(done: int) -> Progress:
            return Progress(rows=run.report.rows_scored, bytes=ends[done - 1] if done else 0,
                            bytes_total=total or None)

        return iter(parts[len(run.committed):]), by_bytes
    independent = independent_parts(intake)
    if independent is not None:
        # each part is a chunk a worker reads itself; a resume skips the rows done
        rows_total = sum(p.rows for p in independent)
        left = _after_rows(independent, skip)

        def by_rows(done: int) -> Progress:
            return Progress(rows=run.report.rows_scored, rows_total=rows_total)

        return iter(left), by_rows
    return _timed(intake.batches(), timings), lambda done: intake.progress()


def _after_rows(parts: list[Any], skip: int) -> list[Any]:
    """``parts`` without their first ``skip`` rows (whole parts dropped, one cut)."""
    left = []
    for part in parts:
        if skip >= part.rows:
            skip -= part.rows
            continue
        left.append(part.after(skip) if skip else part)
        skip = 0
    return left


def _score_all(
    run: _Run, store: JobStore, intake: Intake, output: Output, quarantine: Output | None,
    on_progress: ProgressCallback | None, start_row: int, until_chunk: int | None,
) -> bool:
    """Score the chunks (before ``until_chunk``); False when input remains after them."""
    report, timings = run.report, run.report.timings
    for key in ("read", "score", "write"):
        timings.setdefault(key, 0.0)
    chunks, progress = _chunks(run, intake, start_row)
    left = None if until_chunk is None else max(0, until_chunk - len(run.committed))
    head = list(itertools.islice(chunks, 2 if left is None else min(2, left)))
    rest = chunks if left is None else itertools.islice(chunks, max(0, left - len(head)))
    job = ChunkJob(run.package, run.options,
                   encoder=getattr(output, "encoder", lambda: None)(),
                   quarantine=quarantine is not None,
                   quarantine_encoder=getattr(quarantine, "encoder", lambda: None)(),
                   fast_model=run.fast_model)
    assert run.workers is not None
    pool = run.workers.pool_for(job, len(head))

    def commit(item: tuple[int, int, ChunkResult]) -> None:
        """Write a scored chunk, then record it (the order a resume relies on)."""
        index, first_row, result = item
        started = time.perf_counter()
        receipt = _write(output, index, result.encoded, result.batch, result.rows)
        q_receipt = None
        if quarantine is not None:
            q = result.quarantine
            q_receipt = dict(_write(quarantine, index, q if isinstance(q, bytes) else None,
                                    q if not isinstance(q, bytes) else None,
                                    result.failed_rows))
        store.append(ChunkRecord(index=index, start_row=first_row, rows=result.rows,
                                 failed=result.failed_rows, receipt=dict(receipt),
                                 quarantine=q_receipt))
        timings["write"] += time.perf_counter() - started

    with OrderedWriter(commit, depth=1) as writer:
        for result in pool.map_ordered(itertools.chain(head, rest)):
            writer.put((report.chunks, start_row, result))
            timings["score"] += result.seconds
            run.budget.add(start_row, result.rows, result.failures)
            start_row += result.rows
            report.chunks += 1
            report.rows_scored += result.rows
            report.rows_failed += result.failed_rows
            report.seconds = time.perf_counter() - timings["_started"]
            if on_progress is not None:
                on_progress(progress(report.chunks - len(run.committed)), report)
            run.budget.check()
    report.model_loads = dict(pool.loads_by_pid)
    return left is None or next(chunks, None) is None


def _write(output: Output, index: int, encoded: bytes | None, batch: pa.RecordBatch | None,
           rows: int) -> Receipt:
    if encoded is not None:
        return output.write_encoded(index, encoded, rows)  # type: ignore[attr-defined]
    assert batch is not None
    return output.write(index, batch)


def _timed(
    batches: Iterator[pa.RecordBatch], timings: dict[str, float]
) -> Iterator[pa.RecordBatch]:
    while True:
        started = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        finally:
            timings["read"] += time.perf_counter() - started
        yield batch
