"""A scoring job: read -> score (worker pool) -> write, ordered, exactly once.

1. Pre-flight: the first rows are read and scored in this process, so a schema
   or model problem fails in seconds, before workers start or output exists
   (:mod:`batch.engine.attempt`, :mod:`batch.engine.preflight`).
2. The pipeline: the intake yields chunks (:mod:`batch.engine.chunks`), the
   worker pool scores them (a bounded number in flight), the output stages them
   in input order (:mod:`batch.engine.writer`).
3. Every staged chunk is recorded in the job manifest; a job that fails or is
   killed can be resumed with the same job id and continues after the last
   recorded chunk, ending with output identical to an uninterrupted run.
4. The output is published only when every chunk is in and the error budget
   holds; otherwise nothing appears where results are read.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from batch.deployments import resolve_model
from batch.engine.attempt import (
    Attempt,
    ProgressCallback,
    challenger_jobs,
    check_uris,
    prepare,
    quarantine_options,
)
from batch.engine.chunks import (
    Chunks,
    check_unchanged,
    chunks_to_score,
    scored_only_categories,
)
from batch.engine.plan import JobPlan, plan_job
from batch.engine.pool.child import ChunkJob, ChunkResult, Encoder
from batch.engine.publish import publish_records
from batch.engine.report import JobReport
from batch.engine.resources import PeakMemory
from batch.engine.spec import JobSpec, new_job_id
from batch.engine.store import ChunkRecord, JobStatus, JobStore
from batch.engine.workers import JobWorkers
from batch.engine.writer import OrderedWriter
from batch.errors import BatchPredError, ErrorBudgetExceeded, IncompleteInputError
from batch.models.package import ModelPackage
from batch.scoring.columns import STATUS_COLUMN, output_schema
from connectors import (
    ConnectorError,
    EncodingOutput,
    IntakeRequest,
    Output,
    OutputRequest,
    Receipt,
    RecognisingOutput,
    StagingOutput,
    open_intake,
    open_output,
)

__all__ = ["JobPlan", "plan_job", "run_job", "score"]


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
    check_uris(spec)
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
            run = prepare(spec, job_id, package, store=store, workers=workers,
                          previous=previous)
            run.on_progress = on_progress
            try:
                done = _pipeline(run, until_chunk)
                if done:  # at once: the window between publishing and this is small
                    run.report.status = run.record.status = JobStatus.SUCCEEDED
                    store.save(run.record)
                    store.save_report(job_id, _finish(run, memory.peak_bytes).to_json())
            except BaseException as exc:
                run.record.status = JobStatus.FAILED
                run.record.error = f"{type(exc).__name__}: {exc}"
                store.save(run.record)
                _point_at_staging(run, exc)
                raise
            finally:
                store.close_manifest()
    finally:
        if owned:
            workers.close()
    if not done:
        _finish(run, memory.peak_bytes).status = JobStatus.RUNNING
        return run.report
    return run.report


def _point_at_staging(run: Attempt, exc: BaseException) -> None:
    """End the error's message with where the chunks staged so far are kept, and how to
    resume or remove them (nothing is said when nothing was staged)."""
    if not isinstance(exc, BatchPredError | ConnectorError) or isinstance(
            exc, ErrorBudgetExceeded | IncompleteInputError):  # those drop their staging
        return
    kept = []
    for out in run.outputs:
        if isinstance(out, StagingOutput):
            with contextlib.suppress(Exception):  # a store that is down: say nothing more
                if out.staged_bytes():
                    kept.append(out.staging())
    if kept:
        job = run.record.job_id
        exc.args = (f"{exc} (the chunks staged so far are kept in {', '.join(kept)}: run the "
                    f"job again with --job-id {job} --resume, or remove them with "
                    f"`batchpred job discard {job}`)",)


def _finish(run: Attempt, peak_bytes: int) -> JobReport:
    """The report's closing figures: time and memory."""
    run.report.peak_memory_bytes = peak_bytes
    run.report.seconds = time.perf_counter() - run.report.timings.pop("_started")
    run.report.timings["total"] = run.report.seconds
    return run.report


def score(job: JobSpec | Mapping[str, Any]) -> JobReport:
    """Run a job now, in this process and its scoring workers, without Prefect.

    ``job`` is a :class:`JobSpec` or its fields (as in a job file). Same errors
    as :func:`run_job`; ``flows.score`` runs the same job as a Prefect flow.
    """
    spec = job if isinstance(job, JobSpec) else JobSpec.model_validate(dict(job))
    return run_job(spec)


def _finished(store: JobStore, job_id: str) -> JobReport:
    data = store.report(job_id) or {}
    report = JobReport.from_json(data) if data else JobReport(job_id, "", "")
    report.already_done = True
    return report


def _open_output(uri: str, run: Attempt, suffix: str = "", *,
                 overwrite: bool | None = None) -> Output:
    """The output, or (``suffix``) the quarantine: it shares the output's options (endpoint,
    profile, ...) when it lives in the same kind of store. ``overwrite``: instead of the
    job's own setting."""
    options = quarantine_options(run.spec) if suffix else dict(run.spec.output_options)
    return open_output(OutputRequest(
        uri=uri, options=options, overwrite=run.spec.overwrite if overwrite is None else overwrite,
        job_id=run.record.job_id + suffix))


def _pipeline(run: Attempt, until_chunk: int | None = None) -> bool:
    """Score (up to ``until_chunk``) and publish; False: stopped there, more to come."""
    spec, store = run.spec, run.store
    skip = sum(c.rows for c in run.committed)
    intake = open_intake(IntakeRequest(
        uri=spec.input, chunk_rows=run.record.chunk_rows or 1, options=spec.input_options,
        # the association id as given ("007" stays "007"), as actuals uploads read it
        text_columns=(*run.package.manifest.feature_names,
                      *([run.record.association_id] if run.record.association_id else [])),
        dictionary_columns=scored_only_categories(
            run.package, passthrough=spec.passthrough,
            keep_inputs=spec.passthrough_all or bool(spec.quarantine)),
        skip_rows=0 if run.record.chunk_bytes else skip,
    ))
    try:
        check_unchanged(intake, run.record, resumed=bool(run.committed))
        # an attempt that stopped while publishing may have published: the output then
        # exists, and is checked against the manifest instead of being refused
        run.output = _open_output(spec.output, run, overwrite=run.publishing or None)
        run.outputs.append(run.output)
        if spec.quarantine:
            run.quarantine = _open_output(spec.quarantine, run, "-quarantine",
                                          overwrite=run.publishing or None)
            run.outputs.append(run.quarantine)
        schema = output_schema(run.package.manifest, intake.schema, run.options)
        if run.publishing and _already_published(run, schema, intake.schema):
            return True
        run.output.start(schema, resume=[c.receipt for c in run.committed])
        if run.quarantine is not None:
            run.quarantine.start(intake.schema.append(pa.field(STATUS_COLUMN, pa.string())),
                                 resume=[c.quarantine or {} for c in run.committed])
        store.open_manifest(run.record.job_id, run.committed)
        for key in ("read", "score", "write"):
            run.report.timings.setdefault(key, 0.0)
        chunks = chunks_to_score(intake, run.record, done=len(run.committed), skip_rows=skip,
                                 timings=run.report.timings)
        if not _score_all(run, chunks, skip, until_chunk):
            run.budget.check()
            for out in run.outputs:
                out.suspend()
            return False
        run.budget.check(final=True)
        _check_complete(run)
        started = time.perf_counter()
        if spec.monitoring:  # before the output: a job that fails here is resumable
            run.report.monitoring_records = publish_records(run)
            run.report.timings["monitoring"] = time.perf_counter() - started
        run.record.status = JobStatus.PUBLISHING  # a kill from here on is recognised
        store.save(run.record)
        for out in run.outputs:
            out.commit()
        run.report.timings["commit"] = time.perf_counter() - started
        return True
    except BaseException as exc:
        for out in run.outputs:
            # another attempt would fail the same way: drop the staging
            out.abort() if isinstance(exc, ErrorBudgetExceeded | IncompleteInputError) \
                else out.suspend()
        raise
    finally:
        intake.close()


def _already_published(run: Attempt, schema: pa.Schema, input_schema: pa.Schema) -> bool:
    """Whether the attempt that stopped while publishing had published every output;
    if it had not, the outputs are opened again as the job asks (``--overwrite``)."""
    committed = run.committed
    quarantine_schema = input_schema.append(pa.field(STATUS_COLUMN, pa.string()))
    checks = [(run.output, schema, [c.receipt for c in committed])]
    if run.quarantine is not None:
        checks.append((run.quarantine, quarantine_schema, [c.quarantine or {} for c in committed]))
    if all(isinstance(out, RecognisingOutput) and out.published(s, receipts)
           for out, s, receipts in checks):
        return True
    if not run.spec.overwrite:  # not published: the job's own --overwrite decides
        run.outputs.clear()
        run.output = _open_output(run.spec.output, run)
        run.outputs.append(run.output)
        if run.spec.quarantine:
            run.quarantine = _open_output(run.spec.quarantine, run, "-quarantine")
            run.outputs.append(run.quarantine)
    return False


def _check_complete(run: Attempt) -> None:
    """A job never succeeds with fewer rows than its pre-flight read, or fewer chunks
    than its input was planned in.

    Raises:
        IncompleteInputError: naming both counts; nothing is published.
    """
    record, report = run.record, run.report
    if report.rows_scored < record.rows_seen:
        raise IncompleteInputError(
            f"{run.spec.input}: the pre-flight read {record.rows_seen:,} rows, but the job's "
            f"chunks held {report.rows_scored:,}; nothing was published (the input's line "
            "breaks or size changed as it was read?)")
    planned = record.chunks_planned
    if record.chunk_bytes and planned is not None and report.chunks != planned:
        raise IncompleteInputError(
            f"{run.spec.input}: planned as {planned:,} byte ranges, but {report.chunks:,} "
            "were scored; nothing was published")


def _score_all(run: Attempt, chunks: Chunks, start_row: int, until_chunk: int | None) -> bool:
    """Score the chunks (before ``until_chunk``); False when input remains after them."""
    report, timings = run.report, run.report.timings
    source, progress = chunks
    left = None if until_chunk is None else max(0, until_chunk - len(run.committed))
    head = list(itertools.islice(source, 2 if left is None else min(2, left)))
    rest = source if left is None else itertools.islice(source, max(0, left - len(head)))
    job = ChunkJob(run.package, run.options, encoder=_encoder(run.output),
                   quarantine=run.quarantine is not None,
                   quarantine_encoder=_encoder(run.quarantine), fast_model=run.fast_model,
                   baseline=run.baseline, association_id=run.record.association_id,
                   log=run.record.logged, challengers=challenger_jobs(run))
    pool = run.workers.pool_for(job, len(head))
    with OrderedWriter(functools.partial(_commit, run), depth=1) as writer:
        for result in pool.map_ordered(itertools.chain(head, rest)):
            writer.put((report.chunks, start_row, result))
            timings["score"] += result.seconds
            if result.stats is not None:
                timings["count"] = timings.get("count", 0.0) + result.count_seconds
            run.budget.add(start_row, result.rows, result.failures)
            start_row += result.rows
            report.chunks += 1
            report.rows_scored += result.rows
            report.rows_failed += result.failed_rows
            report.seconds = time.perf_counter() - timings["_started"]
            if run.on_progress is not None:
                run.on_progress(progress(report.chunks - len(run.committed), report.rows_scored),
                                report)
            run.budget.check()
    report.model_loads = dict(pool.loads_by_pid)
    return left is None or next(source, None) is None


def _commit(run: Attempt, item: tuple[int, int, ChunkResult]) -> None:
    """Write a scored chunk, then record it (the order a resume relies on)."""
    index, first_row, result = item
    started = time.perf_counter()
    assert run.output is not None
    encoded = result.encoded
    receipt = _stage(run.output, index, result.batch if encoded is None else encoded,
                     result.rows)
    q_receipt = None
    if run.quarantine is not None:
        q_receipt = dict(_stage(run.quarantine, index, result.quarantine, result.failed_rows))
    stats = None if result.stats is None else result.stats.to_json()
    logged = None
    if result.predictions is not None:
        run.store.save_log(run.record.job_id, index, result.predictions)
        logged = result.predictions.num_rows
    challengers = {}
    for challenger in result.challengers:
        run.store.save_log(run.record.job_id, index, challenger.log, model=challenger.digest)
        challengers[challenger.digest] = {"logged": challenger.log.num_rows,
                                          "seconds": challenger.seconds,
                                          "failed": challenger.failed}
    run.store.append(ChunkRecord(index=index, start_row=first_row, rows=result.rows,
                                 failed=result.failed_rows, receipt=dict(receipt),
                                 quarantine=q_receipt, stats=stats, seconds=result.seconds,
                                 ended_at=datetime.now(UTC), logged=logged,
                                 challengers=challengers, score_seconds=result.score_seconds))
    run.report.timings["write"] += time.perf_counter() - started


def _encoder(output: Output | None) -> Encoder | None:
    """The output's chunk encoder, to run in the workers (None: the output writes batches)."""
    return output.encoder() if isinstance(output, EncodingOutput) else None


def _stage(output: Output, index: int, chunk: bytes | pa.RecordBatch | None,
           rows: int) -> Receipt:
    """Stage chunk ``index``: bytes the workers encoded, or a batch the output writes."""
    if isinstance(chunk, bytes):
        assert isinstance(output, EncodingOutput)  # only its encoder makes bytes
        return output.write_encoded(index, chunk, rows)
    assert chunk is not None
    return output.write(index, chunk)
