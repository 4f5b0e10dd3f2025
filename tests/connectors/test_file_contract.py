"""The file connector's contract, run on every backend (fsspec's ``tests/abstract`` idea).

Each backend supplies a ``store``: an empty folder (a local directory, a prefix
in a bucket of moto's S3 server) and the options that reach it. The same
intake and output tests then run on each.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from connectors import (
    IntakeRequest,
    Output,
    OutputRequest,
    Receipt,
    SourceNotFoundError,
    open_intake,
    open_output,
)

if TYPE_CHECKING:
    from conftest import S3  # the fixture's type; several conftest modules exist


TABLE = pa.table({
    "id": pa.array(range(1, 1001), pa.int64()),
    "x": pa.array([i / 7 if i % 10 else None for i in range(1000)], pa.float64()),
    "cat": pa.array([["a", "b", "c, d"][i % 3] for i in range(1000)]),
})
CHUNK = 300


@dataclass(frozen=True)
class Store:
    """An empty folder on one backend, and how to look at it without the connector."""

    root: str
    options: dict[str, str]
    files: Callable[[], list[str]]  # names of every file below root, hidden ones too
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"


def _local(tmp_path: Path) -> Store:
    root = tmp_path / "store"
    root.mkdir()

    def write(name: str, body: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)

    return Store(str(root), {},
                 lambda: sorted(p.relative_to(root).as_posix()
                                for p in root.rglob("*") if p.is_file()),
                 lambda name: (root / name).read_bytes(), write)


def _s3(s3: S3) -> Store:
    return Store(s3.uri("store"), s3.options(),
                 lambda: [k.removeprefix("store/") for k in s3.objects("store/")],
                 lambda name: s3.get(f"store/{name}"),
                 lambda name, body: s3.put(f"store/{name}", body))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return _local(tmp_path)
    return _s3(request.getfixturevalue("s3"))


def read_all(store: Store, name: str, **request: object) -> pa.Table:
    intake = open_intake(IntakeRequest(uri=store.uri(name), chunk_rows=128,
                                       options=store.options, **request))  # type: ignore[arg-type]
    try:
        batches = list(intake.batches())
        assert all(b.num_rows == 128 for b in batches[:-1])
        return pa.Table.from_batches(batches, schema=intake.schema)
    finally:
        intake.close()


def output(store: Store, name: str, *, job_id: str = "job") -> Output:
    return open_output(OutputRequest(uri=store.uri(name), options=store.options, job_id=job_id))


def write_all(store: Store, name: str, table: pa.Table = TABLE) -> None:
    out = output(store, name)
    out.start(table.schema)
    for i, batch in enumerate(table.to_batches(max_chunksize=CHUNK)):
        out.write(i, batch)
    out.commit()


def published(store: Store, name: str) -> dict[str, bytes]:
    """The bytes of a single-file output, or of every file of a directory output."""
    if not name.endswith("/"):
        return {name: store.read(name)}
    return {f: store.read(f) for f in store.files() if f.startswith(name)}


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet", "jsonl"])
def test_round_trip_in_each_format(store: Store, ext: str) -> None:
    write_all(store, f"t.{ext}")
    assert read_all(store, f"t.{ext}").to_pylist() == TABLE.to_pylist()
    assert store.files() == [f"t.{ext}"]  # no staging left behind


def test_directory_input_reads_parts_in_sorted_order(store: Store) -> None:
    batches = TABLE.to_batches(max_chunksize=CHUNK)
    for i in (2, 0, 3, 1):  # written out of order
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_batches([batches[i]]), buf)
        store.write(f"in/part-{i:03d}.parquet", buf.getvalue())
    store.write("in/_SUCCESS", b"{}")
    store.write("in/_temporary/job/part-00000.parquet", b"not parquet: staged, never read")
    store.write("in/.part-009.parquet.crc", b"junk")
    assert read_all(store, "in").to_pylist() == TABLE.to_pylist()
    assert read_all(store, "in/part-*.parquet").to_pylist() == TABLE.to_pylist()


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out/"])
def test_output_is_invisible_until_commit(store: Store, name: str) -> None:
    out = output(store, name)
    out.start(TABLE.schema)
    for i, batch in enumerate(TABLE.to_batches(max_chunksize=CHUNK)[:2]):
        out.write(i, batch)
    staged = store.files()
    assert staged and all(f.startswith((".", "out/_temporary/")) for f in staged), staged
    with pytest.raises(SourceNotFoundError):
        read_all(store, name.rstrip("/"))
    out.commit()
    assert read_all(store, name.rstrip("/")).num_rows == 2 * CHUNK
    assert all(not f.startswith(".") and "_temporary" not in f for f in store.files())


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out/"])
def test_an_output_without_chunks_publishes_the_schema(store: Store, name: str) -> None:
    out = output(store, name)
    out.start(TABLE.schema)
    out.commit()
    got = read_all(store, name.rstrip("/"))
    assert got.num_rows == 0 and got.schema.names == TABLE.schema.names
    assert all(not f.startswith(".") and "_temporary" not in f for f in store.files())


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out/"])
def test_abort_leaves_nothing(store: Store, name: str) -> None:
    out = output(store, name)
    out.start(TABLE.schema)
    for i, batch in enumerate(TABLE.to_batches(max_chunksize=CHUNK)[:3]):
        out.write(i, batch)
    out.abort()
    assert store.files() == []


def _crash_after(store: Store, name: str, kept: int) -> list[Receipt]:
    """Stage ``kept`` chunks and half of one more, then drop the output without a word."""
    out = output(store, name)
    out.start(TABLE.schema)
    batches = TABLE.to_batches(max_chunksize=CHUNK)
    receipts = [out.write(i, batches[i]) for i in range(kept)]
    out.write(kept, batches[kept])  # staged, but the crash came before the manifest said so
    del out
    return receipts


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet", "out/"])
def test_resume_with_receipts_gives_identical_bytes(store: Store, name: str) -> None:
    write_all(store, f"clean-{name}")
    receipts = _crash_after(store, name, kept=2)
    resumed = output(store, name)
    resumed.start(TABLE.schema, resume=receipts)
    for i, batch in enumerate(TABLE.to_batches(max_chunksize=CHUNK)):
        if i >= len(receipts):
            resumed.write(i, batch)
    resumed.commit()
    clean = published(store, f"clean-{name}")
    assert published(store, name) == {k.removeprefix("clean-"): v for k, v in clean.items()}
    assert all(not f.startswith(".") and "_temporary" not in f for f in store.files())


def test_byte_ranges_cover_the_file_exactly_once(store: Store) -> None:
    buf = io.BytesIO()
    pcsv.write_csv(TABLE, buf)
    data = buf.getvalue()
    store.write("big.csv", data)
    intake = open_intake(IntakeRequest(uri=store.uri("big.csv"), options=store.options))
    ranges = intake.byte_ranges(2_000)
    assert ranges is not None and len(ranges) > 5
    assert ranges[0].start == data.index(b"\n") + 1 and ranges[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    assert all(data[r.start - 1:r.start] == b"\n" for r in ranges)  # cut at line starts
    parts = pa.Table.from_batches([r.read() for r in ranges])
    assert parts.to_pylist() == read_all(store, "big.csv").to_pylist() == TABLE.to_pylist()


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "parts/"])
def test_skip_rows_starts_after_them(store: Store, name: str) -> None:
    write_all(store, name)
    uri = name.rstrip("/")
    assert read_all(store, uri, skip_rows=0).num_rows == 1000
    skipped = read_all(store, uri, skip_rows=650)
    assert skipped.to_pylist() == TABLE.slice(650).to_pylist()
    assert read_all(store, uri, skip_rows=1000).num_rows == 0
