"""An upload of actual outcomes: read from any intake, checked, stored chunk by chunk.

:func:`run_upload` streams the input in chunks of ``chunk_rows`` rows (memory
stays flat: a chunk, the bad-row examples, and the ids spilled to
``<home>/scratch`` for the duplicate count), checks each against the
deployment's champion target (:mod:`batch.monitoring.actuals`) and publishes its
good rows to the monitoring store as their own records, job id
``<upload id>-c000012``.

Resumable like a job, and exactly once: the upload's state
(``state/actuals-<upload id>.json`` in the store) is written before the first
chunk and after each chunk is stored, and says how many chunks are. A resumed
upload re-reads the whole input (so its report counts every row), stores the
chunks after those, and checks that the ones before still hold the rows they
stored. A chunk stored but not yet recorded when the process died is stored
again under the same file name with the same rows (its received time is the
upload's, kept in the state): the file is replaced, nothing counts twice.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from batch.deployments import DeploymentRegistry
from batch.errors import BatchPredError, ConfigError, SchemaError
from batch.models.manifest import Target
from batch.monitoring.actuals import (
    REASONS,
    ActualColumns,
    ActualsChecker,
    BadRows,
    ChunkOrigin,
    Example,
    actuals_table,
)
from batch.monitoring.duplicates import DuplicateIds, Duplicates, Repeat
from batch.monitoring.stage import open_store, settings_of
from batch.monitoring.store import MonitoringStore
from connectors import ConnectorError, IntakeRequest, check_uri, open_intake
from connectors.chunks import rechunk
from connectors.secrets import masked_options, masked_text
from connectors.storage import storage_errors

DEFAULT_CHUNK_ROWS = 200_000  # ~20 MB of a four-column upload in memory
STATE_PREFIX = "actuals-"
# a job id of the store (1-100 characters) once the chunk's "-c000012" is added
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,91}$")
_RESUME_KEYS = ("input", "input_options", "columns", "chunk_rows", "target")


class ActualsRejectedError(SchemaError):
    """Every row of an upload was bad: nothing was stored. ``summary`` says why."""

    def __init__(self, message: str, summary: UploadSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True, slots=True)
class UploadRequest:
    deployment: str
    input: str
    columns: ActualColumns
    upload_id: str
    input_options: Mapping[str, str] = field(default_factory=dict)
    resume: bool = False  # continue the upload ``upload_id`` (a new one if none was kept)
    chunk_rows: int | None = None  # default: the resumed upload's, else DEFAULT_CHUNK_ROWS
    store: str | None = None  # default: the deployment's setting, else <home>/monitoring
    store_options: Mapping[str, str] | None = None


@dataclass(slots=True)
class UploadSummary:
    """What an upload read and stored; ``to_json`` is the command's JSON document."""

    upload_id: str
    deployment: str
    store: str
    input: str  # URL passwords masked
    received_at: datetime
    status: str = "running"  # running, finished, rejected (every row bad), failed
    rows: int = 0
    stored: int = 0
    chunks: int = 0
    resumed_chunks: int = 0  # stored by an earlier attempt, not stored again
    bad: BadRows = field(default_factory=BadRows)
    duplicates: Duplicates = field(default_factory=Duplicates)
    already_done: bool = False  # a finished upload asked again: nothing was read
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "deployment": self.deployment,
                "store": self.store, "input": self.input, "status": self.status,
                "received_at": _iso(self.received_at), "rows": self.rows,
                "stored": self.stored, "chunks": self.chunks,
                "resumed_chunks": self.resumed_chunks, "bad_rows": self.bad.to_json(),
                "duplicates": self.duplicates.to_json(), "already_done": self.already_done,
                "warnings": list(self.warnings)}


def chunk_job_id(upload_id: str, index: int) -> str:
    """The job id of chunk ``index``'s records: ``<upload id>-c000012``."""
    return f"{upload_id}-c{index:06d}"


def check_upload_id(upload_id: str) -> None:
    """Raises ConfigError: the id cannot name the upload's records."""
    if not _UPLOAD_ID.match(upload_id):
        raise ConfigError(f"--upload-id {upload_id!r} is not an upload id: use 1-92 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit")


def run_upload(request: UploadRequest, *, registry: DeploymentRegistry | None = None,
               until_chunk: int | None = None) -> UploadSummary:
    """Read, check and store the actuals of ``request``.

    ``until_chunk``: store only the chunks before this index, then stop as a killed
    upload would (its state says running), for tests of a resume.

    Raises:
        DeploymentError: no such deployment.
        ConfigError: a bad option; the upload exists and this is no resume, or a resume
            that differs from it (another input, columns, chunk size, target) or whose
            input changed.
        SchemaError: a column is missing or unreadable (before anything is written).
        ActualsRejectedError: every row was bad; nothing was stored.
        ConnectorError: the input cannot be read or the store written.
    """
    registry = registry or DeploymentRegistry()
    target = registry.package(request.deployment).manifest.target
    check_upload_id(request.upload_id)
    check_uri(request.input)
    settings = settings_of(request.deployment, registry)
    store = open_store(settings, request.store, request.store_options, registry)
    previous = store.state(request.deployment, STATE_PREFIX + request.upload_id)
    if previous is not None and not request.resume:
        raise ConfigError(f"upload {request.upload_id!r} of {request.deployment!r} exists "
                          f"({previous.get('status')}); pass --resume to continue it, or "
                          "choose another --upload-id")
    # a resume as the upload started; the ids of the duplicate count under the home
    upload = _Upload(request, store, target, previous,
                     scratch=registry.home / "scratch" / f"{STATE_PREFIX}{request.upload_id}")
    if previous is not None and previous.get("status") == "finished":
        return summary_of(previous, already_done=True)
    if not settings.tracks_accuracy:
        upload.summary.warnings.append(
            f"deployment {request.deployment!r} keeps no predictions to join these to (no "
            "association id, or accuracy off): `batchpred deploy settings "
            f"{request.deployment} --association-id COLUMN --accuracy`")
    return upload.run(until_chunk)


class _Upload:
    """One attempt of an upload: its state as kept in the store, and what it has read."""

    def __init__(self, request: UploadRequest, store: MonitoringStore, target: Target,
                 previous: dict[str, Any] | None, *, scratch: Path) -> None:
        self.request = request
        self.store = store
        chunk_rows = request.chunk_rows or (previous or {}).get("chunk_rows") or \
            DEFAULT_CHUNK_ROWS
        received = datetime.fromisoformat(previous["received_at"]) if previous else \
            datetime.now(UTC)
        self.state: dict[str, Any] = {
            "kind": "batchpred.actuals-upload", "version": 1,
            "upload_id": request.upload_id, "deployment": request.deployment,
            "input": masked_text(request.input),
            "input_options": masked_options(request.input_options),
            "columns": _columns_json(request.columns), "chunk_rows": chunk_rows,
            "target": target.model_dump(mode="json", exclude={"threshold"}),
            "received_at": _iso(received), "status": "running",
            "chunks_stored": 0, "rows_stored": 0}
        if previous is not None:
            _check_same(previous, self.state)
            self.state.update(chunks_stored=previous["chunks_stored"],
                              rows_stored=previous["rows_stored"])
        self.done = int(self.state["chunks_stored"])  # chunks an earlier attempt stored
        self.summary = UploadSummary(request.upload_id, request.deployment, store.uri,
                                     self.state["input"], received)
        if request.resume and previous is None:
            self.summary.warnings.append(f"no upload {request.upload_id!r} was kept: "
                                         "started it afresh")
        self.checker = ActualsChecker(request.columns, target)
        self.summary.bad = self.checker.bad  # tallied as the chunks are checked
        self.replayed = 0  # rows the chunks before ``done`` hold now
        self.scratch = scratch  # emptied first: a killed attempt may have left files there

    def run(self, until_chunk: int | None) -> UploadSummary:
        chunk_rows = int(self.state["chunk_rows"])
        intake = open_intake(IntakeRequest(
            uri=self.request.input, chunk_rows=chunk_rows, options=self.request.input_options,
            text_columns=self.request.columns.names()))
        try:
            self.request.columns.check(intake.schema, source=self.summary.input)
            self._save()
            with DuplicateIds(self.scratch) as ids:
                try:
                    for index, batch in enumerate(rechunk(intake.batches(), chunk_rows)):
                        if until_chunk is not None and index >= until_chunk:
                            return self.summary
                        self._chunk(index, batch, ids)
                    self._check_replayed()
                    self.summary.duplicates = ids.count()
                except (BatchPredError, ConnectorError, OSError, pa.ArrowException) as exc:
                    self._failed(exc)
                    raise
        finally:
            intake.close()
        return self._finish()

    def _chunk(self, index: int, batch: pa.RecordBatch, ids: DuplicateIds) -> None:
        first = index * int(self.state["chunk_rows"])
        values = self.checker.check(batch, first)
        ids.add(values.column("association_id").combine_chunks(),
                values.column("seq").combine_chunks())
        self.summary.rows += batch.num_rows
        self.summary.stored += values.num_rows
        self.summary.chunks = index + 1
        if index < self.done:  # stored by an earlier attempt
            self.replayed += values.num_rows
            self.summary.resumed_chunks += 1
            return
        self._check_replayed()
        if values.num_rows:
            job_id = chunk_job_id(self.request.upload_id, index)
            origin = ChunkOrigin(self.request.deployment, job_id, index,
                                 self.summary.received_at, datetime.now(UTC))
            self.store.publish(self.request.deployment, job_id,
                               {"actuals": actuals_table(values, origin)})
        self.state["chunks_stored"] = index + 1
        self.state["rows_stored"] = int(self.state["rows_stored"]) + values.num_rows
        self._save()

    def _check_replayed(self) -> None:
        """Once, before the first chunk this attempt stores (or at the end): the chunks an
        earlier attempt stored must hold the rows they held."""
        if not self.done:
            return
        before = int(self.state["rows_stored"])
        if self.summary.chunks < self.done or self.replayed != before:
            raise ConfigError(
                f"upload {self.request.upload_id!r}: its first {self.done:,} chunk(s) stored "
                f"{before:,} actuals and now hold {self.replayed:,} (in "
                f"{min(self.summary.chunks, self.done):,} chunk(s)): the input changed since "
                "the upload started; upload it under another --upload-id")
        self.done = 0  # the chunks from here on are new

    def _finish(self) -> UploadSummary:
        summary = self.summary
        rejected = summary.rows > 0 and summary.stored == 0
        summary.status = "rejected" if rejected else "finished"
        self.state.update(status=summary.status, finished_at=_iso(datetime.now(UTC)),
                          summary=summary.to_json())
        self._save()
        if rejected:
            raise ActualsRejectedError(
                f"upload {summary.upload_id!r}: every one of its {summary.rows:,} rows is bad "
                f"({_reasons(summary.bad)}); nothing was stored", summary)
        return summary

    def _failed(self, exc: BaseException) -> None:
        self.summary.status = "failed"
        self.state.update(status="failed", error=str(exc)[:500])
        with contextlib.suppress(BatchPredError, ConnectorError, OSError):
            self._save()  # the error itself is what the caller hears of

    def _save(self) -> None:
        self.state["updated_at"] = _iso(datetime.now(UTC))
        self.store.save_state(self.request.deployment, STATE_PREFIX + self.request.upload_id,
                              self.state)


def _check_same(previous: dict[str, Any], state: dict[str, Any]) -> None:
    for key in _RESUME_KEYS:
        if previous.get(key) != state[key]:
            raise ConfigError(
                f"upload {state['upload_id']!r} started with another {key.replace('_', ' ')} "
                f"({_brief(previous.get(key))}, not {_brief(state[key])}): resume it as it "
                "started, or upload under another --upload-id")


def _brief(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _reasons(bad: BadRows) -> str:
    parts = []
    for code, count in sorted(bad.counts.items(), key=lambda item: -item[1]):
        shown = ", ".join(f"{e.value!r} at row {e.row:,}" for e in bad.examples[code][:2])
        parts.append(f"{count:,} {REASONS[code]}: {shown}")
    return "; ".join(parts)


def _columns_json(columns: ActualColumns) -> dict[str, str | None]:
    return {"association_id": columns.association_id, "actual": columns.actual,
            "timestamp": columns.timestamp, "was_acted_on": columns.was_acted_on}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def summary_of(state: dict[str, Any], *, already_done: bool = False) -> UploadSummary:
    """The summary a finished upload's state keeps (or what a running one has stored)."""
    kept = state.get("summary") or {}
    summary = UploadSummary(
        state["upload_id"], state["deployment"], kept.get("store", ""), state["input"],
        _time(state["received_at"]), status=state["status"],
        rows=kept.get("rows", state.get("rows_stored", 0)),
        stored=kept.get("stored", state.get("rows_stored", 0)),
        chunks=kept.get("chunks", state.get("chunks_stored", 0)),
        already_done=already_done)
    bad = kept.get("bad_rows", {}).get("reasons", {})
    summary.bad = BadRows({code: r["count"] for code, r in bad.items()},
                          {code: [Example(e["row"], e["value"]) for e in r["examples"]]
                           for code, r in bad.items()})
    dup = kept.get("duplicates") or {}
    summary.duplicates = Duplicates(dup.get("rows", 0), dup.get("ids", 0), tuple(
        Repeat(e["row"], e["id"], e["first_row"]) for e in dup.get("examples", [])))
    return summary


def uploads_document(deployment: str, *, store: str | None = None,
                     store_options: Mapping[str, str] | None = None,
                     registry: DeploymentRegistry | None = None) -> dict[str, Any]:
    """``deployment``'s uploads as the store's states keep them, oldest first: status,
    rows, stored, bad rows (by reason), repeated ids; the actuals stored in all and when
    the last finished upload was received.

    Raises:
        ConfigError: a bad deployment id or store option.
        ConnectorError: the store cannot be read.
    """
    opened = open_store(settings_of(deployment, registry), store, store_options, registry)
    states = sorted(_states(opened, deployment), key=lambda s: (s["received_at"],
                                                                 s["upload_id"]))
    entries = [_entry(state) for state in states]
    finished = [e["received_at"] for e in entries if e["status"] == "finished"]
    return {"deployment": deployment, "store": opened.uri, "uploads": entries,
            "stored": sum(e["stored"] for e in entries),
            "last_received": max(finished, default=None)}


def _states(store: MonitoringStore, deployment: str) -> list[dict[str, Any]]:
    store.state(deployment, "_")  # ConfigError: an id that cannot name records
    folder = posixpath.join(store.root, f"deployment={deployment}", "state")
    with storage_errors(store.uri, doing="list the monitoring store", side="output"):
        names = [] if not store.fs.exists(folder) else sorted(
            posixpath.basename(p) for p in store.fs.ls(folder, detail=False))
    found = []
    for name in names:
        if name.startswith(STATE_PREFIX) and name.endswith(".json"):
            state = store.state(deployment, name.removesuffix(".json"))
            if state is not None and state.get("kind") == "batchpred.actuals-upload":
                found.append(state)
    return found


def _entry(state: dict[str, Any]) -> dict[str, Any]:
    kept = state.get("summary") or {}
    bad = kept.get("bad_rows") or {}
    return {"upload_id": state["upload_id"], "status": state["status"],
            "received_at": state["received_at"], "input": state["input"],
            "finished_at": state.get("finished_at"), "error": state.get("error"),
            "rows": kept.get("rows"), "stored": int(state["rows_stored"]),
            "chunks": int(state["chunks_stored"]), "bad_rows": bad.get("total", 0),
            "bad_by_reason": {code: r["count"] for code, r in bad.get("reasons", {}).items()},
            "repeated": (kept.get("duplicates") or {}).get("rows", 0)}
