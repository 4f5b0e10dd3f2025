"""The connector contract and the registry that picks a connector by URI scheme.

An intake yields ``pa.RecordBatch``es of about ``chunk_rows`` rows and says how
far it has got; an output takes batches and then commits or aborts as a whole,
so nothing partial appears where results are read.

Schemes map to lazily imported classes (fsspec's idea). Third parties add
schemes through the ``batchpred.connectors`` entry-point group, whose values
name an ``"module:IntakeClass,module:OutputClass"`` pair.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

import pyarrow as pa

from connectors.errors import UnknownSchemeError

ENTRY_POINT_GROUP = "batchpred.connectors"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an intake has read; totals are None when unknown."""

    rows: int = 0
    rows_total: int | None = None
    bytes: int = 0
    bytes_total: int | None = None

    @property
    def fraction(self) -> float | None:
        if self.rows_total:
            return min(1.0, self.rows / self.rows_total)
        if self.bytes_total:
            return min(1.0, self.bytes / self.bytes_total)
        return None


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """What the engine asks of an intake."""

    uri: str
    chunk_rows: int = 100_000
    options: Mapping[str, str] = field(default_factory=dict)
    text_columns: Sequence[str] = ()  # read these as text where the format allows
    # these may come dictionary-encoded where the format stores them so (Parquet): the
    # caller reads only their values, and decoding each row's string costs the most
    dictionary_columns: Sequence[str] = ()
    skip_rows: int = 0  # resume: start after this many rows (skip whole parts where possible)


@dataclass(frozen=True, slots=True)
class OutputRequest:
    """What the engine asks of an output."""

    uri: str
    options: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False
    job_id: str = "job"  # names the output's staging area, so a resume finds it again


Receipt = Mapping[str, Any]
"""JSON-able proof that an output durably staged a chunk (offsets, part names, checksums).

The engine records it in the job manifest and hands the receipts back on resume."""


class Intake(Protocol):
    uri: str

    @property
    def schema(self) -> pa.Schema:
        """Columns and types of the batches to come (reading the start if needed)."""
        ...

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the rows in order (after ``skip_rows``), ``chunk_rows`` at a time."""
        ...

    def progress(self) -> Progress: ...

    def close(self) -> None: ...


class Output(Protocol):
    """Stages chunks durably, then publishes them all at once.

    Lifecycle: ``start`` -> ``write`` chunk 0, 1, 2, ... -> ``commit``. On failure
    the engine calls ``suspend`` (keep what is staged, for a resume, nothing
    visible) or ``abort`` (drop everything). Either way the destination shows
    nothing of this job until ``commit``.
    """

    uri: str

    def start(self, schema: pa.Schema, *, resume: Sequence[Receipt] = ()) -> None:
        """Prepare to take chunks of ``schema``.

        ``resume`` holds the receipts of chunks 0..k-1 that an earlier attempt of
        this job staged and recorded: keep them, drop anything staged after them
        (a chunk half-written when the process died), continue at chunk k.
        """
        ...

    def write(self, index: int, batch: pa.RecordBatch) -> Receipt:
        """Stage chunk ``index`` durably; when this returns, a crash cannot lose it."""
        ...

    def commit(self) -> None:
        """Publish every staged chunk, in index order, atomically where the store allows."""
        ...

    def suspend(self) -> None:
        """Release resources but keep staged chunks for a later resume."""
        ...

    def abort(self) -> None:
        """Drop everything staged; the destination is as it was before the job."""
        ...


class EncodingOutput(Output, Protocol):
    """An output whose chunk encoding can run in another process.

    ``encoder()`` returns a picklable callable turning a batch into bytes; the
    engine runs it in the scoring workers and hands the bytes to
    ``write_encoded``, so compressing and formatting use every core.
    """

    def encoder(self) -> Callable[[pa.RecordBatch], bytes]: ...

    def write_encoded(self, index: int, body: bytes, rows: int) -> Receipt: ...


_FILES = ("connectors.files:FileIntake", "connectors.file_output:FileOutput")
_KNOWN: dict[str, tuple[str, str, str]] = {
    # scheme: (intake, output, install hint); anything else falls back to fsspec files
    "": (*_FILES, ""),
    "file": (*_FILES, ""),
    "gcs": (*_FILES, "pip install gcsfs"),
    "gs": (*_FILES, "pip install gcsfs"),
    "local": (*_FILES, ""),
    "s3": (*_FILES, "pip install s3fs"),
    "s3a": (*_FILES, "pip install s3fs"),
    "snowflake": ("connectors.snowflake:SnowflakeIntake", "connectors.snowflake:SnowflakeOutput",
                  "pip install snowflake-connector-python"),
}
_registered: dict[str, tuple[str, str, str]] = {}


def scheme_of(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    if not sep or len(head) == 1:  # "C://" is a Windows drive, not a scheme
        return ""
    return head.lower()


def register_scheme(
    scheme: str, intake: str, output: str, *, hint: str = "", replace: bool = False
) -> None:
    """Map ``scheme`` to ``"module:Class"`` targets; a taken scheme raises unless ``replace``."""
    if not replace and (scheme in _KNOWN or scheme in _registered):
        raise ValueError(f"scheme {scheme!r} is already registered; pass replace=True")
    _registered[scheme] = (intake, output, hint)


def _targets(scheme: str) -> tuple[str, str, str]:
    if scheme in _registered:
        return _registered[scheme]
    if scheme in _KNOWN:
        return _KNOWN[scheme]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            intake, _, output = ep.value.partition(",")
            return intake.strip(), output.strip(), ""
    return (*_FILES, "")


def _load(target: str, scheme: str, hint: str) -> type:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    except ImportError as exc:
        extra = f"; install it with: {hint}" if hint else ""
        raise UnknownSchemeError(f"no connector for '{scheme}://' ({exc}){extra}") from exc


def open_intake(request: IntakeRequest) -> Intake:
    """The intake for ``request.uri``, chosen by its scheme."""
    scheme = scheme_of(request.uri)
    intake, _, hint = _targets(scheme)
    return _load(intake, scheme, hint)(request)  # type: ignore[no-any-return]


def open_output(request: OutputRequest) -> Output:
    """The output for ``request.uri``, chosen by its scheme."""
    scheme = scheme_of(request.uri)
    _, output, hint = _targets(scheme)
    return _load(output, scheme, hint)(request)  # type: ignore[no-any-return]
