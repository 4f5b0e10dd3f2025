"""Monitoring records of requests, counted off the request path.

A request hands its features and scored rows (or its error) to a queue and
returns; one background thread counts them on the deployment's baseline,
merges them into a micro-chunk per deployment and publishes it to the
deployment's monitoring store as ``stats`` and ``health`` records (``source``
``realtime``), and, when the deployment tracks accuracy, as ``predictions``
records of the rows that carry its association id column (what the accuracy
stage joins actuals to, as it does a job's), every ``flush_rows`` rows or
``flush_seconds`` seconds, and when
the server stops (SIGTERM included: uvicorn ends the app's lifespan). Each
micro-chunk is its own record file (``job-rt-<server>-<n>.parquet``), so the
drift stage merges real-time and batch traffic alike; compaction merges a day's
files. A store that fails is logged and the micro-chunk kept for the next
flush: a request never waits for monitoring.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.models.manifest import ModelManifest
from batch.monitoring.baseline import Baseline
from batch.monitoring.records import (
    ChunkFacts,
    Producer,
    health_table,
    latency_counts,
    predictions_table,
    stats_table,
)
from batch.monitoring.stats import ChunkStats, count_chunk
from batch.monitoring.store import MonitoringStore
from batch.scoring.features import FeatureFrame
from batch.scoring.prediction_log import prediction_log

log = logging.getLogger(__name__)
COUNT_ROWS = 4096  # requests' rows counted together (a count per request costs ~1 ms)


@dataclass(frozen=True, slots=True)
class Watched:
    """A served model whose requests are recorded: where, and on which baseline."""

    deployment_id: str
    model_id: str
    store: MonitoringStore
    baseline: Baseline | None  # None: health records only
    association_id: str | None = None  # the column requests' rows are logged under
    manifest: ModelManifest | None = None  # with an association id: what the log reads


@dataclass
class _Pending:
    """A deployment's requests since its last flush."""

    started: float = field(default_factory=time.monotonic)
    stats: ChunkStats | None = None
    waiting: list[_Scored] = field(default_factory=list)  # not counted yet
    waiting_rows: int = 0
    rows: int = 0
    failed: int = 0
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    user_errors: int = 0
    server_errors: int = 0
    logs: list[pa.RecordBatch] = field(default_factory=list)  # the prediction log
    logged: int = 0  # rows of the micro-chunk so far (the log's row numbers)


@dataclass(frozen=True, slots=True)
class Segment:
    """Who sent a request: the consumer its API token names (None: no token) and the
    client's address."""

    consumer: str | None = None
    remote_address: str | None = None


_Key = tuple[str, Segment]  # a deployment, and a segment of its traffic


@dataclass(frozen=True, slots=True)
class _Scored:
    name: str
    segment: Segment
    features: FeatureFrame
    scored: pa.RecordBatch
    failed: int
    seconds: float
    humility: tuple[tuple[str, int], ...] = ()  # per humility rule: the rows it fired on
    rows: pa.RecordBatch | None = None  # the request's rows (its association id column)


@dataclass(frozen=True, slots=True)
class _Failed:
    name: str
    segment: Segment
    status: int
    seconds: float


POLL_SECONDS = 0.5  # how often the thread takes what requests queued


class RequestRecorder:
    """Counts requests in a thread of its own and publishes them in micro-chunks."""

    def __init__(self, watched: Mapping[str, Watched], *, flush_rows: int = 10_000,
                 flush_seconds: float = 10.0) -> None:
        self._watched = dict(watched)
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: dict[_Key, _Pending] = {}
        self._server = uuid.uuid4().hex[:8]
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.published: list[str] = []

    def watch(self, name: str, watched: Watched) -> None:
        """Record the requests of ``name`` from now on (a model uploaded while serving)."""
        self._watched[name] = watched

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="request-recorder", daemon=True)
        self._thread.start()

    def scored(self, name: str, features: FeatureFrame, scored: pa.RecordBatch, *,
               failed: int, seconds: float, segment: Segment = Segment(),
               humility: tuple[tuple[str, int], ...] = (),
               rows: pa.RecordBatch | None = None) -> None:
        """Record a request's rows (called on the request path: only queues them);
        ``humility``: how many rows each of the deployment's humility rules fired on;
        ``rows``: the request's rows, for their association id."""
        if name in self._watched:
            self._queue.put(_Scored(name, segment, features, scored, failed, seconds,
                                    humility, rows))

    def failed(self, name: str, status: int, seconds: float, *,
               segment: Segment = Segment()) -> None:
        """Record a request that got an error status."""
        if name in self._watched:
            self._queue.put(_Failed(name, segment, status, seconds))

    def close(self, timeout: float = 30.0) -> None:
        """Count what is queued, publish every micro-chunk, stop the thread."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        # the thread wakes on a clock, not on each request: waking it per request made
        # every request wait for the interpreter lock to come back (seen: +2 ms each)
        while not self._stop.wait(min(POLL_SECONDS, self._flush_seconds)):
            self._drain()
            self._flush(due_only=True)
        self._drain()
        self._flush(due_only=False)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                self._add(item)
            except Exception:  # noqa: BLE001 - monitoring never takes the server down
                log.exception("monitoring: a request could not be counted")

    def _add(self, item: object) -> None:
        if isinstance(item, _Failed):
            pending = self._pending.setdefault((item.name, item.segment), _Pending())
            pending.requests += 1
            pending.seconds += item.seconds
            pending.latencies.append(item.seconds)
            if item.status >= 500:
                pending.server_errors += 1
            else:
                pending.user_errors += 1
            return
        assert isinstance(item, _Scored)
        watched = self._watched[item.name]
        pending = self._pending.setdefault((item.name, item.segment), _Pending())
        if watched.baseline is not None:  # counted in batches: a count has fixed costs
            pending.waiting.append(item)
            pending.waiting_rows += item.scored.num_rows
            if pending.waiting_rows >= COUNT_ROWS:
                self._count_waiting(watched, pending)
        self._log(watched, pending, item)
        pending.rows += item.scored.num_rows
        pending.failed += item.failed
        pending.requests += 1
        pending.seconds += item.seconds
        pending.latencies.append(item.seconds)

    @staticmethod
    def _log(watched: Watched, pending: _Pending, item: _Scored) -> None:
        """Log the request's scored rows under their association id (rows without one,
        or a request without the column, are not logged: nothing to join)."""
        column = watched.association_id
        if column is None or watched.manifest is None or item.rows is None \
                or column not in item.rows.schema.names:
            return
        log = prediction_log(item.rows.select([column]), item.scored, watched.manifest,
                             column)
        rows = pc.add(log.column("row"), pa.scalar(pending.logged, pa.int64()))
        pending.logs.append(log.set_column(log.schema.get_field_index("row"), "row", rows))
        pending.logged += item.scored.num_rows

    def _flush(self, *, due_only: bool) -> None:
        """Publish the due micro-chunks: one file per deployment, a row per segment."""
        now = time.monotonic()
        due: dict[str, list[tuple[Segment, _Pending]]] = {}
        for (name, segment), pending in self._pending.items():
            if pending.requests and (not due_only or pending.rows >= self._flush_rows
                                     or now - pending.started >= self._flush_seconds):
                due.setdefault(name, []).append((segment, pending))
        for name, segments in due.items():
            if self._publish(name, segments):
                for segment, _ in segments:
                    del self._pending[(name, segment)]

    @staticmethod
    def _count_waiting(watched: Watched, pending: _Pending) -> None:
        """Count the requests waiting as one chunk (their rows concatenated)."""
        baseline = watched.baseline
        if baseline is None or not pending.waiting:
            return
        items, pending.waiting, pending.waiting_rows = pending.waiting, [], 0
        features = {p.name: np.concatenate([i.features.columns[p.name] for i in items])
                    for p in baseline.features}
        names = [p.name for p in baseline.predictions]
        scored = pa.Table.from_batches([i.scored.select(names) for i in items])
        batch = scored.combine_chunks().to_batches()[0] if scored.num_rows else \
            pa.RecordBatch.from_pylist([], schema=scored.schema)
        counted = count_chunk(baseline, features, batch)
        fired: dict[str, int] = {}
        for item in items:
            for key, rows in item.humility:
                fired[key] = fired.get(key, 0) + rows
        if fired:
            counted = replace(counted, humility=tuple(fired.items()))
        pending.stats = counted if pending.stats is None else pending.stats.merge(counted)

    def _publish(self, name: str, segments: list[tuple[Segment, _Pending]]) -> bool:
        watched = self._watched[name]
        self._seq += 1
        job = f"rt-{self._server}-{self._seq:06d}"
        health, stats, logged = [], [], []
        for segment, pending in segments:
            try:
                self._count_waiting(watched, pending)
            except Exception:  # noqa: BLE001 - monitoring never takes the server down
                log.exception("monitoring: requests of %s could not be counted", name)
            fact = ChunkFacts(0, pending.rows, pending.failed, pending.seconds,
                              datetime.now(UTC), pending.stats, requests=pending.requests,
                              latency=tuple(latency_counts(pending.latencies).tolist()),
                              user_errors=pending.user_errors + pending.failed,
                              server_errors=pending.server_errors)
            producer = Producer(watched.deployment_id, watched.model_id, job,
                                source="realtime", consumer=segment.consumer,
                                remote_address=segment.remote_address)
            health.append(health_table(producer, [fact]))
            if watched.baseline is not None and pending.stats is not None:
                stats.append(stats_table(producer, [fact],
                                         (p.name for p in watched.baseline.predictions)))
            if pending.logs:
                rows = pa.Table.from_batches(pending.logs).combine_chunks().to_batches()[0]
                logged.append(predictions_table(producer, [fact], [rows]))
        tables = {"health": pa.concat_tables(health)}
        if stats:
            tables["stats"] = pa.concat_tables(stats)
        if logged:
            tables["predictions"] = pa.concat_tables(logged)
        try:
            if watched.baseline is not None:
                watched.store.save_baseline(watched.baseline)
            self.published.extend(watched.store.publish(watched.deployment_id, job, tables))
        except Exception:  # noqa: BLE001 - kept for the next flush
            log.exception("monitoring: records of %s could not be published; kept", name)
            self._seq -= 1
            return False
        return True

