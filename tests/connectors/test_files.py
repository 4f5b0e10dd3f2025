"""The file connector on local paths: formats, streaming, errors, atomic output."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from connectors import (
    ConnectorConfigError,
    InputFormatError,
    IntakeRequest,
    OutputExistsError,
    OutputRequest,
    SourceNotFoundError,
    open_intake,
    open_output,
)
from connectors.chunks import rechunk

TABLE = pa.table({
    "id": pa.array(range(1, 1001), pa.int64()),
    "x": pa.array([i / 7 if i % 10 else None for i in range(1000)], pa.float64()),
    "cat": pa.array([["a", "b", "c"][i % 3] for i in range(1000)]),
})


def read_all(uri: str, chunk_rows: int = 128, **options: str) -> pa.Table:
    intake = open_intake(IntakeRequest(uri=uri, chunk_rows=chunk_rows, options=options))
    try:
        batches = list(intake.batches())
        assert all(b.num_rows == chunk_rows for b in batches[:-1])
        return pa.Table.from_batches(batches, schema=intake.schema)
    finally:
        intake.close()


def write_all(uri: str, table: pa.Table, **options: str) -> None:
    output = open_output(OutputRequest(uri=uri, options=options))
    output.start(table.schema)
    for i, batch in enumerate(table.to_batches(max_chunksize=300)):
        output.write(i, batch)
    output.commit()


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t.jsonl", "t.jsonl.gz"])
def test_round_trip_in_every_format(tmp_path: Path, name: str) -> None:
    uri = str(tmp_path / name)
    write_all(uri, TABLE)
    assert read_all(uri).to_pylist() == TABLE.to_pylist()
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_gzip_output_is_really_gzip(tmp_path: Path) -> None:
    write_all(str(tmp_path / "t.csv.gz"), TABLE)
    data = gzip.decompress((tmp_path / "t.csv.gz").read_bytes())
    assert data.startswith(b'"id","x","cat"\n1,')
    assert data.count(b'"id"') == 1


def test_tsv_and_explicit_delimiter(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("id\tv\n1\tx\n")
    (tmp_path / "b.txt").write_text("id;v\n1;x\n")
    assert read_all(str(tmp_path / "a.tsv")).to_pylist() == [{"id": 1, "v": "x"}]
    assert read_all(str(tmp_path / "b.txt"), delimiter=";").to_pylist() == [{"id": 1, "v": "x"}]


def test_latin1_input_with_encoding_option(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes("id,city\n1,Zürich\n".encode("latin-1"))
    assert read_all(str(tmp_path / "l.csv"), encoding="latin-1").column("city").to_pylist() == [
        "Zürich"
    ]


def test_text_columns_are_read_as_text(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("zip,n\n00501,1\n02134,2\n")
    intake = open_intake(IntakeRequest(uri=str(tmp_path / "t.csv"), text_columns=("zip",)))
    table = pa.Table.from_batches(list(intake.batches()))
    assert table.column("zip").to_pylist() == ["00501", "02134"]
    assert table.schema.field("n").type == pa.int64()


def test_column_empty_in_first_block_is_read_as_text_later(tmp_path: Path) -> None:
    rows = ["id,note"] + [f"{i}," for i in range(200_000)] + ["200000,late value"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    table = read_all(str(tmp_path / "t.csv"), chunk_rows=50_000)
    assert table.column("note").to_pylist()[-1] == "late value"


def test_directory_and_glob_read_all_parts_in_sorted_order(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, chunk in enumerate(TABLE.to_batches(max_chunksize=400)):
        pq.write_table(pa.Table.from_batches([chunk]), parts / f"part-{i:03d}.parquet")
    (parts / "_SUCCESS").write_text("{}")
    assert read_all(str(parts)).to_pylist() == TABLE.to_pylist()
    assert read_all(str(parts / "part-*.parquet")).to_pylist() == TABLE.to_pylist()


def test_progress_reaches_the_size(tmp_path: Path) -> None:
    pcsv.write_csv(TABLE, tmp_path / "t.csv")
    intake = open_intake(IntakeRequest(uri=str(tmp_path / "t.csv"), chunk_rows=100))
    list(intake.batches())
    progress = intake.progress()
    assert progress.rows == 1000 and progress.bytes_total == (tmp_path / "t.csv").stat().st_size


def test_rechunk_splits_and_merges_exactly() -> None:
    one = TABLE.combine_chunks().to_batches()[0]
    sizes = [b.num_rows for b in rechunk([one], 300)]
    assert sizes == [300, 300, 300, 100]
    small = TABLE.to_batches(max_chunksize=7)
    out = list(rechunk(small, 250))
    assert [b.num_rows for b in out] == [250] * 4
    assert pa.Table.from_batches(out).to_pylist() == TABLE.to_pylist()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"id,x\n1,2\n3,4,5\n", "Expected 2 columns, got 3"),
        (b'id,x\n1,"abc\n2,def\n3,ghi\n', "column 'x' at data row 1 has a quote that is never"),
        (b"id,city\n1,Z\xfcrich\n", "not valid UTF-8 in column 'city'; pass --encoding"),
    ],
    ids=["empty", "ragged", "bad-quoting", "not-utf8"],
)
def test_unreadable_csv_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputFormatError, match="bad.csv") as info:
        read_all(str(path))
    assert message in str(info.value)


def test_header_only_is_zero_rows_with_columns(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("id,x\n")
    intake = open_intake(IntakeRequest(uri=str(tmp_path / "h.csv")))
    assert intake.schema.names == ["id", "x"]
    assert list(intake.batches()) == []


def test_missing_input_and_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="nope.csv"):
        open_intake(IntakeRequest(uri=str(tmp_path / "nope.csv")))
    (tmp_path / "t.csv").write_text("a\n1\n")
    with pytest.raises(ConnectorConfigError, match="input option 'delimitr'"):
        open_intake(IntakeRequest(uri=str(tmp_path / "t.csv"), options={"delimitr": ";"}))
    (tmp_path / "t.dat").write_text("a\n1\n")
    with pytest.raises(ConnectorConfigError, match="cannot tell the format"):
        open_intake(IntakeRequest(uri=str(tmp_path / "t.dat")))


def test_output_is_invisible_until_commit_and_gone_after_abort(tmp_path: Path) -> None:
    final = tmp_path / "out.parquet"
    output = open_output(OutputRequest(uri=str(final)))
    output.start(TABLE.schema)
    output.write(0, TABLE.to_batches()[0])
    assert not final.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".out.parquet.job.staging"]
    output.abort()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "out.csv"
    final.write_text("precious\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        open_output(OutputRequest(uri=str(final)))
    assert final.read_text() == "precious\n"
    write = open_output(OutputRequest(uri=str(final), overwrite=True))
    write.start(TABLE.schema)
    write.commit()
    assert final.read_text().startswith('"id","x","cat"')


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr-only"])
def test_byte_ranges_cut_at_every_kind_of_line_end(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "t.csv"
    lines = ["id,x,cat", *(f"{i},{i / 7},{'abc'[i % 3]}" for i in range(1, 2001))]
    path.write_bytes((newline.join(lines) + newline).encode())
    intake = open_intake(IntakeRequest(uri=str(path), chunk_rows=500))
    try:
        ranges = intake.byte_ranges(4_000)
    finally:
        intake.close()
    assert ranges is not None and len(ranges) > 5
    rows = [r.read() for r in ranges]
    ids = [i for batch in rows for i in batch.column("id").to_pylist()]
    assert ids == list(range(1, 2001))  # every row once, in order, none lost
    assert rows[0].column("cat").to_pylist()[:3] == ["b", "c", "a"]  # no "\r" in values


def _bad_csv(tmp_path: Path) -> Path:
    """Beyond the reader's first block (what opening the input parses)."""
    lines = ["id,x,cat", *(f"{i},{i / 7},{'abc'[i % 3]}" for i in range(1, 600_001))]
    lines[520_000] = '520000,"broken,a'  # file line 520,001: a quote that never ends
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_parse_error_names_the_line_in_the_file_streamed(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError) as caught:
        read_all(str(_bad_csv(tmp_path)), chunk_rows=5_000)
    text = str(caught.value)
    assert "at line 520,001" in text and '"broken' not in text and "\n" not in text
    assert "Row #" not in text


def test_a_csv_parse_error_names_the_line_in_the_file_in_byte_ranges(tmp_path: Path) -> None:
    intake = open_intake(IntakeRequest(uri=str(_bad_csv(tmp_path)), chunk_rows=5_000))
    try:
        ranges = intake.byte_ranges(1_000_000)
    finally:
        intake.close()
    assert ranges is not None
    messages = []
    for r in ranges:
        try:
            r.read()
        except InputFormatError as exc:
            messages.append(str(exc))
    (text,) = messages
    assert "at line 520,001" in text and '"broken' not in text and "Row #" not in text


def test_a_json_lines_error_names_the_line_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    rows = [f'{{"id": {i}, "x": {i / 7}}}' for i in range(200_000)]
    rows[147_500] = rows[147_500][:-1]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputFormatError, match="at line 147,501$"):
        read_all(str(path), chunk_rows=5_000)
