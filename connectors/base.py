"""The connector contract and the registry that picks a connector by URI scheme.

An intake yields ``pa.RecordBatch``es of about ``chunk_rows`` rows and says how
far it has got; an output takes batches and then commits or aborts as a whole,
so nothing partial appears where results are read. What only some adapters can
do (byte ranges, partitions, encoding in the workers) is declared by a
``runtime_checkable`` protocol each (:class:`RangedIntake`, :class:`PartitionedIntake`,
:class:`EncodingOutput`), tested with ``isinstance``.

Schemes map to lazily imported classes (fsspec's idea). Third parties add
schemes through the ``batchpred.connectors`` entry-point group, whose values
name an ``"module:IntakeClass,module:OutputClass"`` pair.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, Self, runtime_checkable

import pyarrow as pa

from connectors.errors import ConnectorConfigError, UnknownSchemeError

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

    def __post_init__(self) -> None:
        """Raises ConnectorConfigError: ``chunk_rows`` below 1 or ``skip_rows`` below 0."""
        if self.chunk_rows < 1 or self.skip_rows < 0:
            raise ConnectorConfigError(
                f"{self.uri}: chunk_rows must be >= 1 and skip_rows >= 0 (got chunk_rows="
                f"{self.chunk_rows}, skip_rows={self.skip_rows})")


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


# -- optional capabilities -------------------------------------------------------
#
# An adapter that can do more than the contract says so by having these methods; the
# engine asks with ``isinstance(intake, RangedIntake)``. Each protocol holds only its
# capability (not Intake's or Output's members): on Python 3.11, isinstance() on a
# runtime protocol calls hasattr() for every member, and ``Intake.schema`` may read
# the input (and raise), where a capability check must not touch the store.


@runtime_checkable
class Part(Protocol):
    """A piece of an intake that a scoring worker reads on its own.

    Picklable and self-contained: it carries the URI and options it needs (never an
    open connection), so any process can read it.
    """

    def read(self) -> pa.RecordBatch:
        """The piece's rows as one batch, with the intake's schema.

        Raises:
            InputFormatError: the rows cannot be parsed or do not fit the schema.
            SourceNotFoundError, AccessDeniedError, ConnectionFailedError, ReadError:
                the store failed to serve the piece.
        """
        ...


@runtime_checkable
class ByteRange(Part, Protocol):
    """A range of bytes of one file, cut at line starts (see :mod:`connectors.ranges`)."""

    @property
    def size(self) -> int:
        """The bytes it covers; what progress counts."""
        ...


@runtime_checkable
class Partition(Part, Protocol):
    """A part the input is stored in (a Parquet row group, a Snowflake result batch)."""

    @property
    def rows(self) -> int | None:
        """Rows of the whole part (before :meth:`after`); None when unknown."""
        ...

    def after(self, rows: int) -> Self:
        """This part without its first ``rows`` rows (resuming inside it)."""
        ...


@runtime_checkable
class RangedIntake(Protocol):
    """An intake whose input splits into byte ranges that workers parse themselves."""

    def byte_ranges(self, target_bytes: int) -> Sequence[ByteRange] | None:
        """Ranges of about ``target_bytes`` covering the input once, in order; None when
        this input cannot be cut (not plain CSV, gzip, values spanning lines): stream it.

        The cuts depend only on the input and ``target_bytes``, so a resumed job
        gets the same ranges.

        Raises:
            SourceNotFoundError, AccessDeniedError, ConnectionFailedError, ReadError:
                the store failed while the cuts were planned.
        """
        ...


@runtime_checkable
class PartitionedIntake(Protocol):
    """An intake whose input is stored in parts that workers read themselves."""

    def partitions(self) -> Sequence[Partition] | None:
        """The parts in input order, covering every row once (``skip_rows`` does not
        apply: cut with :meth:`Partition.after`); empty or None when the input has no
        parts a worker could read alone (then stream it).

        Raises:
            SourceNotFoundError, AccessDeniedError, ConnectionFailedError, ReadError:
                the store failed while the parts were listed.
        """
        ...


@runtime_checkable
class EncodingOutput(Protocol):
    """An output whose chunk encoding can run in another process.

    ``encoder()`` returns a picklable callable turning a batch into bytes; the
    engine runs it in the scoring workers and hands the bytes to
    ``write_encoded``, so compressing and formatting use every core.
    """

    def encoder(self) -> Callable[[pa.RecordBatch], bytes] | None:
        """The picklable encoder of chunks for :meth:`write_encoded`; None: use ``write``."""
        ...

    def write_encoded(self, index: int, body: bytes, rows: int) -> Receipt:
        """Stage chunk ``index`` as ``body`` (``encoder()(batch)``, ``rows`` rows) as
        ``write`` would; the same failures as ``write``."""
        ...

@runtime_checkable
class RecognisingOutput(Protocol):
    """An output that can tell whether a commit already published a job's chunks.

    A job killed after its output was published and before it recorded its success
    is finished by its next run instead of being scored again (or refused: the
    output now exists).
    """

    def published(self, schema: pa.Schema, receipts: Sequence[Receipt]) -> bool:
        """Whether the destination holds exactly the chunks of ``receipts`` (as a commit
        of this output wrote them) and nothing is left to publish."""
        ...


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
    """Map ``scheme`` to ``"module:Class"`` targets.

    Raises:
        ConnectorConfigError: the scheme is taken (built in or registered) and
            ``replace`` is not given.
    """
    if not replace and (scheme in _KNOWN or scheme in _registered):
        raise ConnectorConfigError(
            f"scheme {scheme!r} is already registered; pass replace=True to replace it")
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
    except (ImportError, AttributeError) as exc:  # no module, or no such class in it
        extra = f"; install it with: {hint}" if hint else ""
        raise UnknownSchemeError(f"no connector for '{scheme}://' ({exc}){extra}") from exc


def open_intake(request: IntakeRequest) -> Intake:
    """The intake for ``request.uri``, chosen by its scheme."""
    scheme = scheme_of(request.uri)
    intake, _, hint = _targets(scheme)
    return _load(intake, scheme, hint)(request)  # type: ignore[no-any-return]


@runtime_checkable
class StagingOutput(Protocol):
    """An output that can say where a job's unpublished chunks are, and remove them."""

    def staging(self) -> str:
        """Where the job's staged chunks are (a path or URL, for people)."""
        ...

    def staged_bytes(self) -> int:
        """Bytes the job's staged chunks take (0: none)."""
        ...

    def discard_staging(self) -> None:
        """Remove the staged chunks; never anything published. Raises on failure."""
        ...


@runtime_checkable
class ChecksOptions(Protocol):
    """A connector class that validates its options on their own, before it opens."""

    @staticmethod
    def check_options(options: Mapping[str, str]) -> None:
        """Raises ConnectorConfigError: a bad or unknown option (its value never shown)."""
        ...


def check_output_options(uri: str, options: Mapping[str, str]) -> None:
    """Validate the options of the output at ``uri`` without opening it, so a bad one
    (or a secret given as one) is refused before anything is recorded.

    Raises:
        ConnectorConfigError: a bad option; UnknownSchemeError: no connector.
    """
    scheme = scheme_of(uri)
    _, output, hint = _targets(scheme)
    cls = _load(output, scheme, hint)
    if isinstance(cls, ChecksOptions):
        cls.check_options(options)


def open_output(request: OutputRequest) -> Output:
    """The output for ``request.uri``, chosen by its scheme."""
    scheme = scheme_of(request.uri)
    _, output, hint = _targets(scheme)
    return _load(output, scheme, hint)(request)  # type: ignore[no-any-return]
