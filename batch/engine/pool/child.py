"""The child side of a scoring worker: what runs one chunk, in whichever process scores it.

A local worker process, a Dask worker and the job's own process (which scores
too) all call :func:`run_chunk`. Chunks travel to and from workers as Arrow IPC
streams. Nothing here starts or manages processes (that is
:mod:`batch.engine.pool.local` and :mod:`batch.engine.pool.dask`), so a worker
imports only this module, the scoring code and the model cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from batch.models.cache import ModelCache, process_cache
from batch.models.loaders import Scorer
from batch.models.package import ModelPackage
from batch.scoring.chunk import score_rows
from batch.scoring.columns import STATUS_COLUMN, ScoringOptions, failed_mask
from batch.scoring.features import coerce_features
from batch.scoring.prediction_log import ID_BUCKETS, prediction_log

if TYPE_CHECKING:
    from batch.monitoring.baseline import Baseline
    from batch.monitoring.stats import ChunkStats
    from connectors import Part  # a chunk the worker reads itself (a CSV byte range, ...)


Encoder = Callable[[pa.RecordBatch], bytes]


@dataclass(frozen=True, slots=True)
class ChunkJob:
    """What every chunk of a job needs in the worker, besides the chunk."""

    package: ModelPackage
    options: ScoringOptions
    encoder: Encoder | None = None  # encode the scored chunk in the worker
    quarantine: bool = False  # also return the failed input rows
    quarantine_encoder: Encoder | None = None
    fast_model: str | None = None  # an exact ONNX conversion of the model (a file path)
    baseline: Baseline | None = None  # count each chunk on its buckets (monitoring on)
    association_id: str | None = None  # log each prediction under this input column
    log: bool = False  # keep the prediction log (under association_id, else the row)
    # scored on the same rows, logged beside: each package and its checked ONNX file
    challengers: tuple[tuple[ModelPackage, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One scored chunk, with who scored it."""

    batch: pa.RecordBatch | None  # scored rows, unless ``encoded``
    failed_rows: int
    pid: int
    loads: int  # times this process has loaded the job's model (1 with a working cache)
    seconds: float = 0.0  # reading + scoring + encoding time, in the worker
    rows: int = 0
    encoded: bytes | None = None
    failures: pa.RecordBatch | None = None  # "row" (in chunk) and "status" of failed rows
    quarantine: pa.RecordBatch | bytes | None = None
    stats: ChunkStats | None = None  # the chunk's counts on the baseline's buckets
    count_seconds: float = 0.0  # of ``seconds``, the time counting took
    predictions: pa.RecordBatch | None = None  # the prediction log (association id on)
    challengers: tuple[ChallengerResult, ...] = ()  # each challenger's, in the job's order
    score_seconds: float = 0.0  # of ``seconds``, the model's own scoring


@dataclass(frozen=True, slots=True)
class ChallengerResult:
    """A challenger's scoring of the chunk: its prediction log and its time."""

    digest: str
    log: pa.RecordBatch
    seconds: float
    failed: int


def to_ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def from_ipc(payload: bytes) -> pa.RecordBatch:
    reader = pa.ipc.open_stream(payload)
    batches = list(reader)
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches, schema=reader.schema).combine_chunks().to_batches()[0]


def run_chunk(job: ChunkJob, chunk: pa.RecordBatch | Part | bytes) -> ChunkResult:
    """Read (if needed), score and (if asked) encode one chunk, in this process."""
    started = time.perf_counter()
    if isinstance(chunk, bytes):
        chunk = from_ipc(chunk)
    elif not isinstance(chunk, pa.RecordBatch):
        chunk = chunk.read()
    cache = process_cache()
    scoring = time.perf_counter()
    out, stats, counting = _scored(job, chunk, cache.get(job.package, job.fast_model))
    scoring = time.perf_counter() - scoring - counting
    failed, failures, quarantine = 0, None, None
    if STATUS_COLUMN in out.schema.names:
        status = out.column(STATUS_COLUMN)
        mask = failed_mask(status)
        failed = int(pc.sum(mask).as_py() or 0)
        if failed:
            failures = pa.record_batch({"row": pc.indices_nonzero(mask),
                                        "status": status.filter(mask)})
        if job.quarantine:
            quarantine = chunk.filter(mask).append_column(STATUS_COLUMN, status.filter(mask))
            if job.quarantine_encoder is not None:
                quarantine = job.quarantine_encoder(quarantine)
    logged = None
    if job.log:
        logged = prediction_log(chunk, out, job.package.manifest, job.association_id,
                                buckets=None if job.association_id is None else ID_BUCKETS)
    challengers = tuple(_challenger(job, package, chunk, cache, fast=fast)
                        for package, fast in job.challengers)
    encoded = job.encoder(out) if job.encoder is not None else None
    return ChunkResult(
        None if encoded is not None else out, failed, os.getpid(),
        cache.loads[cache.key(job.package, job.fast_model)], time.perf_counter() - started,
        out.num_rows, encoded, failures, quarantine, stats, counting, logged, challengers,
        scoring,
    )


def _challenger(job: ChunkJob, package: ModelPackage, chunk: pa.RecordBatch,
                cache: ModelCache, *, fast: str | None) -> ChallengerResult:
    """Score the chunk with a challenger (its own feature checks: it may take other
    features; its ONNX conversion when a job of its package checked one) and log its
    predictions; only the champion's go to the output."""
    started = time.perf_counter()
    out = score_rows(chunk, package, cache.get(package, fast), ScoringOptions()).batch
    failed = int(pc.sum(failed_mask(out.column(STATUS_COLUMN))).as_py() or 0)
    log = prediction_log(chunk, out, package.manifest, job.association_id)
    return ChallengerResult(package.digest, log, time.perf_counter() - started, failed)


def _scored(job: ChunkJob, chunk: pa.RecordBatch, scorer: Scorer
            ) -> tuple[pa.RecordBatch, ChunkStats | None, float]:
    """The scored chunk and, with a baseline, its counts (on the features the model got)
    and the seconds counting took."""
    features = coerce_features(chunk, job.package.manifest)
    scored = score_rows(chunk, job.package, scorer, job.options, features=features)
    out = scored.batch
    if job.baseline is None:
        return out, None, 0.0
    from batch.monitoring.stats import count_chunk

    started = time.perf_counter()
    stats = count_chunk(job.baseline, features.columns, out, codes=features.codes)
    if job.options.humility is not None:
        stats = replace(stats, humility=tuple(zip(job.options.humility.keys, scored.humility,
                                                  strict=True)))
    return out, stats, time.perf_counter() - started


def run_limited(job: ChunkJob, chunk: pa.RecordBatch | Part, threads: int) -> ChunkResult:
    """:func:`run_chunk` in this process with its native thread pools capped at ``threads``.

    An uncapped OpenMP pool that shares its cores with other scorers costs far
    more than it gains (seen: a second per call for gradient boosting on 2 cores).
    The controller is threadpoolctl's cached one: finding the loaded libraries
    takes milliseconds, and is done again only when new modules were imported.
    """
    from threadpoolctl import get_cached_controller

    process_cache().get(job.package, job.fast_model)  # load first: limits apply to loaded libraries
    with get_cached_controller().limit(limits=threads):
        return run_chunk(job, chunk)
