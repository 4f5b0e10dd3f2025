"""The connector contract, run on every backend (fsspec's ``tests/abstract`` idea).

Each backend supplies a :class:`Store`: a place for inputs and outputs (a local
directory, a prefix in a bucket of moto's S3 server, a schema of fakesnow's
Snowflake) and ways to seed it and look at it without the connector. The same
intake tests then run on every source in ``SOURCES`` and the same output tests
on every target in ``TARGETS``. An item only some connectors offer (byte
ranges, partitions, encoding in the workers) runs where the connector declares
the capability (the protocols of :mod:`connectors.base`) and is skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq
import pytest

from connectors import (
    ByteRange,
    EncodingOutput,
    Intake,
    IntakeRequest,
    Output,
    OutputError,
    OutputExistsError,
    OutputRequest,
    Partition,
    PartitionedIntake,
    RangedIntake,
    Receipt,
    open_intake,
    open_output,
)

if TYPE_CHECKING:
    from conftest import S3, Endpoint  # the fixtures' types; several conftest modules exist

# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

TABLE = pa.table({
    "id": pa.array(range(1, 1001), pa.int64()),
    "x": pa.array([i / 7 if i % 10 else None for i in range(1000)], pa.float64()),
    "cat": pa.array([["a", "b", "c, d"][i % 3] for i in range(1000)]),
})
CHUNK = 300  # output chunks: 300, 300, 300, 100 rows


class Store(Protocol):
    """A backend as the contract tests see it; ``name`` is a file, a folder or a table."""

    def seed(self, name: str, table: pa.Table) -> None:
        """Put ``table`` at ``name`` as an input, without the connector."""

    def intake_request(self, name: str, **fields: Any) -> IntakeRequest: ...

    def output_request(self, name: str, **fields: Any) -> OutputRequest: ...

    def visible(self, name: str) -> pa.Table | None:
        """What a reader of ``name`` sees, read without the connector; None: nothing."""

    def published(self, name: str) -> object:
        """The output at ``name``, comparable with another name's (bytes, rows)."""

    def staged(self) -> list[str]:
        """Staging areas left in the store (hidden files, staging tables)."""

    def sibling(self, name: str, tag: str) -> str:
        """Another name of the same kind as ``name``."""

    def keeps_schema(self, name: str) -> bool:
        """Whether an output without rows still has columns (not so JSON lines)."""


# -- files: a local directory, a prefix in moto's S3 ------------------------------------


def _encode(name: str, table: pa.Table) -> bytes:
    """``table`` in the format ``name``'s extension says."""
    buf = io.BytesIO()
    if name.endswith(".parquet"):
        pq.write_table(table, buf, row_group_size=CHUNK)
    else:
        pcsv.write_csv(table, buf)
    return buf.getvalue()


def _decode(name: str, body: bytes) -> pa.Table:
    """A published file read with pyarrow (the reference reader)."""
    if name.endswith(".gz"):
        body, name = gzip.decompress(body), name[:-3]
    if name.endswith(".parquet"):
        return pq.read_table(pa.BufferReader(body))
    if name.endswith(".jsonl"):
        return pjson.read_json(pa.BufferReader(body)) if body else pa.table({})
    return pcsv.read_csv(pa.BufferReader(body))


@dataclass(frozen=True)
class FileStore:
    """An empty folder on one file backend, seen with plain file access and pyarrow."""

    root: str
    options: dict[str, str]
    files: Callable[[], list[str]]  # names of every file below root, hidden ones too
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def seed(self, name: str, table: pa.Table) -> None:
        if not name.endswith("/"):
            self.write(name, _encode(name, table))
            return
        for i, part in enumerate(table.to_batches(max_chunksize=CHUNK)):
            self.write(f"{name}part-{i:05d}.parquet", _encode(".parquet", pa.table(part)))
        self.write(f"{name}_SUCCESS", b"{}")

    def intake_request(self, name: str, **fields: Any) -> IntakeRequest:
        return IntakeRequest(uri=self.uri(name.rstrip("/")), options=self.options, **fields)

    def output_request(self, name: str, **fields: Any) -> OutputRequest:
        return OutputRequest(uri=self.uri(name), options=self.options, **fields)

    def _data(self, name: str) -> list[str]:
        """The data files a reader of ``name`` takes (a folder: no ``_`` or ``.`` names)."""
        if not name.endswith("/"):
            return [name] if name in self.files() else []
        return [f for f in self.files() if f.startswith(name)
                and not any(p.startswith(("_", ".")) for p in f[len(name):].split("/"))]

    def visible(self, name: str) -> pa.Table | None:
        found = self._data(name)
        if not found:
            return None
        return pa.concat_tables([_decode(f, self.read(f)) for f in found])

    def published(self, name: str) -> object:
        return {f[len(name):]: self.read(f) for f in self.files() if f.startswith(name)}

    def staged(self) -> list[str]:
        return [f for f in self.files() if f.startswith(".") or "_temporary" in f]

    def sibling(self, name: str, tag: str) -> str:
        return f"{tag}-{name}"

    def keeps_schema(self, name: str) -> bool:
        return not name.endswith(".jsonl")


def _local(tmp_path: Path) -> FileStore:
    root = tmp_path / "store"
    root.mkdir()

    def write(name: str, body: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)

    return FileStore(str(root), {},
                     lambda: sorted(p.relative_to(root).as_posix()
                                    for p in root.rglob("*") if p.is_file()),
                     lambda name: (root / name).read_bytes(), write)


def _s3(s3: S3) -> FileStore:
    return FileStore(s3.uri("store"), s3.options(),
                     lambda: [k.removeprefix("store/") for k in s3.objects("store/")],
                     lambda name: s3.get(f"store/{name}"),
                     lambda name, body: s3.put(f"store/{name}", body))


# -- Snowflake: a schema of fakesnow's server ---------------------------------------------

_SNOWFLAKE_TYPES = {pa.int64(): "NUMBER(38,0)", pa.float64(): "FLOAT", pa.string(): "VARCHAR"}


@dataclass(frozen=True)
class SnowflakeStore:
    """This test's schema, seen over a plain connector connection.

    An intake reads a query with ``ORDER BY "id"``: a table has no row order, and a
    resume (``skip_rows``) needs one (see :class:`connectors.snowflake.SnowflakeIntake`).
    An output creates its table (``mode=create``).
    """

    base_uri: str
    schema: str
    endpoint: Endpoint
    connection: Any
    sql: Callable[..., list[tuple]]

    def seed(self, name: str, table: pa.Table) -> None:
        columns = ", ".join(f'"{f.name}" {_SNOWFLAKE_TYPES[f.type]}' for f in table.schema)
        self.sql(f"CREATE TABLE {name} ({columns})")
        names = ", ".join(f'"{n}"' for n in table.column_names)
        marks = ", ".join(["%s"] * table.num_columns)
        rows = [tuple(r.values()) for r in table.to_pylist()]
        self.connection.cursor().executemany(
            f"INSERT INTO {name} ({names}) VALUES ({marks})", rows)

    def intake_request(self, name: str, **fields: Any) -> IntakeRequest:
        query = f'SELECT * FROM {name} ORDER BY "id"'
        return IntakeRequest(self.base_uri, options=self.endpoint.options(query=query),
                             **fields)

    def output_request(self, name: str, **fields: Any) -> OutputRequest:
        return OutputRequest(f"{self.base_uri}/{name}",
                             options=self.endpoint.options(mode="create"), **fields)

    def _tables(self, like: str) -> list[str]:
        return [r[0] for r in self.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name LIKE %s ORDER BY table_name", (self.schema, like))]

    def visible(self, name: str) -> pa.Table | None:
        if name not in self._tables(name):
            return None
        cursor = self.connection.cursor()
        rows = cursor.execute(f'SELECT * FROM {name} ORDER BY "id"').fetchall()
        names = [d.name for d in cursor.description]
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def published(self, name: str) -> object:
        table = self.visible(name)
        return None if table is None else table.to_pylist()

    def staged(self) -> list[str]:
        return self._tables("BATCHPRED_STAGE%")

    def sibling(self, name: str, tag: str) -> str:
        return f"{tag.upper()}_{name}"

    def keeps_schema(self, name: str) -> bool:
        return True


def _snowflake(request: pytest.FixtureRequest) -> SnowflakeStore:
    request.getfixturevalue("snowflake_env")
    return SnowflakeStore(request.getfixturevalue("base_uri"), request.getfixturevalue("schema"),
                          request.getfixturevalue("endpoint"),
                          request.getfixturevalue("connection"), request.getfixturevalue("sql"))


_STORES: dict[str, Callable[[pytest.FixtureRequest], Store]] = {
    "local": lambda request: _local(request.getfixturevalue("tmp_path")),
    "s3": lambda request: _s3(request.getfixturevalue("s3")),
    "snowflake": _snowflake,
}
SOURCES = [*((kind, name) for kind in ("local", "s3") for name in ("t.csv", "t.parquet", "parts/")),
           ("snowflake", "FEATURES")]
TARGETS = [*((kind, name) for kind in ("local", "s3")
             for name in ("out.csv", "out.csv.gz", "out.parquet", "out.jsonl", "out/")),
           ("snowflake", "SCORED")]


def _id(param: tuple[str, str]) -> str:
    return f"{param[0]}-{param[1].rstrip('/')}"


@dataclass(frozen=True)
class Place:
    """A name in a store: an input to read or an output to write."""

    store: Store
    name: str


@pytest.fixture(params=SOURCES, ids=_id)
def source(request: pytest.FixtureRequest) -> Place:
    """An input holding ``TABLE``."""
    kind, name = request.param
    store = _STORES[kind](request)
    store.seed(name, TABLE)
    return Place(store, name)


@pytest.fixture(params=TARGETS, ids=_id)
def target(request: pytest.FixtureRequest) -> Place:
    """An output name where nothing is yet."""
    kind, name = request.param
    return Place(_STORES[kind](request), name)


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def opened(source: Place, **fields: Any) -> Iterator[Intake]:
    intake = open_intake(source.store.intake_request(source.name, **fields))
    try:
        yield intake
    finally:
        intake.close()


def read_all(source: Place, chunk_rows: int, **fields: Any) -> pa.Table:
    """Every batch, checked to be ``chunk_rows`` long (all but the last) and of the schema."""
    with opened(source, chunk_rows=chunk_rows, **fields) as intake:
        schema = intake.schema  # known before any batch is read
        batches = list(intake.batches())
    assert all(b.num_rows == chunk_rows for b in batches[:-1])
    assert all(b.schema == schema for b in batches)
    return pa.Table.from_batches(batches, schema=schema)


def started(target: Place, *, name: str | None = None, resume: Sequence[Receipt] = (),
            **fields: Any) -> Output:
    """An output ``start``-ed for ``TABLE``; if ``start`` raises, it is aborted first."""
    out = open_output(target.store.output_request(name or target.name, **fields))
    try:
        out.start(TABLE.schema, resume=resume)
    except BaseException:
        out.abort()
        raise
    return out


def chunks(table: pa.Table = TABLE) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=CHUNK)


def write_all(target: Place, *, table: pa.Table = TABLE, **fields: Any) -> None:
    out = started(target, **fields)
    for i, batch in enumerate(chunks(table)):
        out.write(i, batch)
    out.commit()


# -- intake ---------------------------------------------------------------------------


def test_intake_yields_every_row_in_order_in_chunks(source: Place) -> None:
    got = read_all(source, chunk_rows=128)
    assert got.schema.names == TABLE.schema.names
    assert got.to_pylist() == TABLE.to_pylist()


def test_intake_progress_counts_up_to_the_whole_input(source: Place) -> None:
    with opened(source, chunk_rows=CHUNK) as intake:
        assert intake.progress().rows == 0
        seen = [intake.progress() for _ in intake.batches()]
        end = intake.progress()
    assert end.rows == TABLE.num_rows
    if end.fraction is not None:  # the intake knows its size
        assert end.fraction == 1.0
        known = [p.fraction for p in [*seen, end] if p.fraction is not None]
        assert known == sorted(known)


def test_skip_rows_starts_after_them(source: Place) -> None:
    for skip in (CHUNK, 650, TABLE.num_rows, 5000):  # a whole part, inside one, all, past
        got = read_all(source, chunk_rows=128, skip_rows=skip)
        assert got.to_pylist() == TABLE.slice(skip).to_pylist(), skip


def test_byte_ranges_cover_the_input_once_in_order(source: Place) -> None:
    with opened(source) as intake:
        if not isinstance(intake, RangedIntake):
            pytest.skip("this intake has no byte ranges")
        ranges = intake.byte_ranges(2_000)
    if ranges is None:
        pytest.skip("this input does not split into byte ranges")
    copies = [pickle.loads(pickle.dumps(r)) for r in ranges]  # as scoring workers get them
    assert len(copies) > 1 and all(isinstance(r, ByteRange) and r.size > 0 for r in copies)
    assert pa.Table.from_batches([r.read() for r in copies]).to_pylist() == TABLE.to_pylist()


def test_partitions_cover_the_input_once_in_order(source: Place) -> None:
    with opened(source) as intake:
        if not isinstance(intake, PartitionedIntake):
            pytest.skip("this intake has no partitions")
        parts, schema = intake.partitions(), intake.schema
    if not parts:
        pytest.skip("this input has no partitions")
    copies = [pickle.loads(pickle.dumps(p)) for p in parts]  # read with the intake closed
    assert all(isinstance(p, Partition) for p in copies)
    batches = [p.read() for p in copies]
    assert all(b.schema == schema for b in batches)
    assert all(p.rows in (None, b.num_rows) for p, b in zip(copies, batches, strict=True))
    assert pa.Table.from_batches(batches).to_pylist() == TABLE.to_pylist()
    assert copies[0].after(100).read().to_pylist() == batches[0].slice(100).to_pylist()


# -- output ---------------------------------------------------------------------------


def test_output_round_trips_and_leaves_no_staging(target: Place) -> None:
    write_all(target)
    got = target.store.visible(target.name)
    assert got is not None and got.to_pylist() == TABLE.to_pylist()
    assert target.store.staged() == []


def test_output_is_invisible_until_commit(target: Place) -> None:
    out = started(target)
    for i, batch in enumerate(chunks()[:2]):
        out.write(i, batch)
    assert target.store.staged()  # durably staged...
    assert target.store.visible(target.name) is None  # ...where no reader looks
    out.commit()
    got = target.store.visible(target.name)
    assert got is not None and got.to_pylist() == TABLE.slice(0, 2 * CHUNK).to_pylist()
    assert target.store.staged() == []


def test_an_output_without_chunks_publishes_no_rows(target: Place) -> None:
    started(target).commit()
    got = target.store.visible(target.name)
    assert got is not None and got.num_rows == 0
    if target.store.keeps_schema(target.name):
        assert got.column_names == TABLE.column_names
    assert target.store.staged() == []


def test_abort_leaves_nothing(target: Place) -> None:
    out = started(target)
    for i, batch in enumerate(chunks()[:3]):
        out.write(i, batch)
    out.abort()
    assert target.store.staged() == []
    assert target.store.visible(target.name) is None


def test_resume_after_suspend_continues_after_the_receipts(target: Place) -> None:
    clean = target.store.sibling(target.name, "clean")
    write_all(target, name=clean)
    first = started(target, job_id="resumable")
    receipts = [first.write(i, batch) for i, batch in enumerate(chunks()[:3])]
    first.suspend()  # as if the job died having recorded the receipts of chunks 0 and 1
    assert target.store.visible(target.name) is None
    resumed = started(target, job_id="resumable", resume=receipts[:2])
    for i, batch in itertools.islice(enumerate(chunks()), 2, None):
        resumed.write(i, batch)
    resumed.commit()
    assert target.store.published(target.name) == target.store.published(clean)
    assert target.store.staged() == []


def test_an_existing_output_is_kept_unless_overwrite(target: Place) -> None:
    write_all(target)
    with pytest.raises(OutputExistsError) as info:
        started(target, job_id="again")
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, OutputError)
    write_all(target, table=TABLE.slice(0, 10), job_id="again", overwrite=True)
    got = target.store.visible(target.name)
    assert got is not None and got.to_pylist() == TABLE.slice(0, 10).to_pylist()


def test_chunks_out_of_order_are_refused(target: Place) -> None:
    out = started(target)
    with pytest.raises(OutputError, match="out of order"):
        out.write(1, chunks()[1])
    out.abort()
    assert target.store.staged() == []


def test_encoded_chunks_publish_like_written_ones(target: Place) -> None:
    out = open_output(target.store.output_request(target.name))
    encoder = out.encoder() if isinstance(out, EncodingOutput) else None
    if not isinstance(out, EncodingOutput) or encoder is None:
        pytest.skip("this output does not encode in the workers")
    out.start(TABLE.schema)
    worker_copy = pickle.loads(pickle.dumps(encoder))  # as a scoring worker runs it
    for i, batch in enumerate(chunks()):
        out.write_encoded(i, worker_copy(batch), batch.num_rows)
    out.commit()
    clean = target.store.sibling(target.name, "clean")
    write_all(target, name=clean)
    assert target.store.published(target.name) == target.store.published(clean)


# -- file stores only -------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def files(request: pytest.FixtureRequest) -> FileStore:
    store = _STORES[request.param](request)
    assert isinstance(store, FileStore)
    return store


def test_directory_input_reads_parts_in_sorted_order(files: FileStore) -> None:
    for i in (2, 0, 3, 1):  # written out of order
        files.write(f"in/part-{i:03d}.parquet", _encode(".parquet", pa.table(chunks()[i])))
    files.write("in/_SUCCESS", b"{}")
    files.write("in/_temporary/job/part-00000.parquet", b"not parquet: staged, never read")
    files.write("in/.part-009.parquet.crc", b"junk")
    for name in ("in", "in/part-*.parquet"):
        assert read_all(Place(files, name), chunk_rows=128).to_pylist() == TABLE.to_pylist()


def test_csv_byte_ranges_are_cut_at_line_starts(files: FileStore) -> None:
    data = _encode("big.csv", TABLE)
    files.write("big.csv", data)
    with opened(Place(files, "big.csv")) as intake:
        assert isinstance(intake, RangedIntake)
        ranges: Any = intake.byte_ranges(2_000)
    assert ranges is not None and len(ranges) > 5
    assert ranges[0].start == data.index(b"\n") + 1 and ranges[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    assert all(data[r.start - 1:r.start] == b"\n" for r in ranges)
