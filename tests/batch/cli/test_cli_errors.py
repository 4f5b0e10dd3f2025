"""Bad input through the command line: one clear line, non-zero exit, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _lines(text: str) -> list[str]:
    """stderr without the leading ``job <id>`` line."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[1:] if lines and lines[0].startswith("job ") else lines


def assert_failed_cleanly(res, out_dir: Path, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert res.returncode == 1, res.stdout + res.stderr
    lines = _lines(res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    leftovers = [p.name for p in out_dir.iterdir()] if out_dir.exists() else []
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["the file is empty"]),
        (b"loan_id,age\n1,30\n",
         ["has no columns 'income', 'loan_amount'", "it has: loan_id, age"]),
        # pyarrow puts the row ("Row #3: ") in the message in some runs, not in others
        ("quote", ["CSV parse error: ", "Expected 10 columns, got 9", "quoting"]),
        ("latin1", ["not valid UTF-8 in column 'state'", "--encoding"]),
    ],
    ids=["empty-file", "missing-column", "bad-quoting", "not-utf8"],
)
def test_bad_input_files(credit, batchpred, tmp_path: Path, content: bytes | str,
                         needles: list[str]) -> None:
    if isinstance(content, str):
        lines = credit.csv.read_bytes().splitlines()[:5]
        if content == "quote":
            header = lines[0].split(b",")
            row = lines[2].split(b",")
            row[header.index(b'"purpose"')] = b'"car'
            lines[2] = b",".join(row)
        else:
            lines[3] = lines[3].replace(b'"CA"', b'"Z\xfcrich"').replace(b'"TX"', b'"Z\xfcrich"')
            for state in (b'"NY"', b'"FL"', b'"IL"', b'"PA"', b'"OH"', b'"GA"', b'"NC"', b'"MI"'):
                lines[3] = lines[3].replace(state, b'"Z\xfcrich"')
        content = b"\n".join(lines) + b"\n"
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = batchpred("score", "--model", str(credit.package), "--input", str(source),
              "--output", str(out_dir / "scored.csv"))
    assert_failed_cleanly(res, out_dir, *needles)


def test_corrupt_artifact(credit, batchpred, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(credit.package, pkg)
    (pkg / "model.joblib").write_bytes(b"\x80\x04not a pickle at all")
    out_dir = tmp_path / "out"
    res = batchpred("score", "--model", str(pkg), "--input", str(credit.csv),
              "--output", str(out_dir / "scored.csv"))
    assert_failed_cleanly(res, out_dir, "model.joblib", "cannot load the artifact")


def test_model_yaml_with_a_wrong_field(credit, batchpred, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(credit.package, pkg)
    manifest = (pkg / "model.yaml").read_text().replace("type: binary", "type: binry")
    (pkg / "model.yaml").write_text(manifest)
    out_dir = tmp_path / "out"
    res = batchpred("score", "--model", str(pkg), "--input", str(credit.csv),
              "--output", str(out_dir / "scored.csv"))
    assert_failed_cleanly(res, out_dir, "model.yaml", "field 'target.type'")


def test_unknown_model_and_existing_output(credit, batchpred, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    res = batchpred("score", "--model", "no-such-thing", "--input", str(credit.csv),
              "--output", str(out_dir / "scored.csv"))
    assert_failed_cleanly(res, out_dir, "'no-such-thing' is neither a package directory")
    out_dir.mkdir()
    (out_dir / "scored.csv").write_text("keep me\n")
    res = batchpred("score", "--model", str(credit.package), "--input", str(credit.csv),
              "--output", str(out_dir / "scored.csv"))
    assert res.returncode == 1 and "--overwrite" in res.stderr
    assert (out_dir / "scored.csv").read_text() == "keep me\n"


def test_debug_shows_the_traceback(credit, batchpred, tmp_path: Path) -> None:
    res = batchpred("score", "--model", str(credit.package), "--input", str(tmp_path / "nope.csv"),
              "--output", str(tmp_path / "o.csv"), "--debug")
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "SourceNotFoundError" in res.stderr


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--chunk-size", "abc", "--chunk-size: 'abc' is not a size (examples: 8MB"),
        ("--chunk-size", "10B", "--chunk-size: '10B' is below the 1KiB minimum"),
        ("--job-id", "a/b", "--job-id: 'a/b' is not a job id: use 1-100 letters"),
    ],
)
def test_bad_option_values_name_the_option(credit, batchpred, tmp_path: Path, option: str,
                                           value: str, needle: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = batchpred("score", "--model", str(credit.package), "--input", str(credit.csv),
              "--output", str(out_dir / "scored.csv"), option, value)
    assert_failed_cleanly(res, out_dir, needle)
