"""The bad-input corpus: each case one ``error:`` line naming the fault, the right exit
code, nothing at the output path and nothing left beside it (unless the job can be
resumed, and then the line says how).

Cases run in this process through the assembled command line (click's runner), so the
corpus costs seconds; the commands and their error handling are the ones installed.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batch.cli.sample_data import TARGET, credit_table
from flows.cli import cli


@dataclass(frozen=True)
class Corpus:
    root: Path
    package: Path
    good: Path


@pytest.fixture(scope="module")
def corpus(credit, tmp_path_factory: pytest.TempPathFactory) -> Corpus:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("corpus")
    good = root / "good.csv"
    shutil.copy(credit.csv, good)
    table = credit_table(400, seed=21).drop_columns([TARGET])
    pq.write_table(table, root / "parquet-named.csv")
    (root / "gzip-named.csv").write_bytes(gzip.compress(good.read_bytes()))
    (root / "one-line.csv").write_bytes(b"a," * 3_000_000)
    (root / "empty.csv").write_bytes(b"")
    header = good.read_text().splitlines()
    names = header[0].split(",")
    (root / "duplicate.csv").write_text(",".join([*names, names[1]]) + "\n" + "\n".join(
        f"{line},1" for line in header[1:]) + "\n")
    pcsv.write_csv(table.drop_columns(["credit_score"]), root / "no-credit-score.csv")
    lines = [json.dumps(r) for r in table.to_pylist()]
    lines[300] = lines[300][:-1]
    (root / "broken.jsonl").write_text("\n".join(lines) + "\n")
    text = [",".join(["abc"] * len(names)) for _ in range(500)]
    (root / "all-text.csv").write_text(",".join(names) + "\n" + "\n".join(text) + "\n")
    (root / "a-file").write_text("not a folder\n")
    (root / "taken.csv").write_text("keep\n")
    broken_pkg = root / "broken-yaml"
    shutil.copytree(credit.package, broken_pkg)
    (broken_pkg / "model.yaml").write_text("name: [unclosed\nversion: 1\n")
    bad_field = root / "bad-field"
    shutil.copytree(credit.package, bad_field)
    manifest = (bad_field / "model.yaml").read_text()
    (bad_field / "model.yaml").write_text(manifest.replace("target:", "targett:", 1))
    (root / "importance.yaml").write_text("no_such_feature: 1\n")
    return Corpus(root, credit.package, good)


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    expect: str  # in the error line
    code: int = 1
    not_in: tuple[str, ...] = ()  # never in the line (a secret, a raw row)
    output: str = "out.csv"  # nothing here afterwards (relative to the case's folder)
    extra: dict[str, str] = field(default_factory=dict)


def _score(corpus_input: str, *more: str, output: str = "{out}") -> tuple[str, ...]:
    return ("score", "--model", "{pkg}", "--input", corpus_input, "--output", output,
            "--workers", "0", "--quiet", *more)


CASES = [
    # inputs
    Case("missing input", _score("{root}/nope.csv"), "nope.csv"),
    Case("empty file", _score("{root}/empty.csv"), "the file is empty"),
    Case("parquet bytes named .csv", _score("{root}/parquet-named.csv"),
         "this looks like Parquet, not csv: pass --input-format parquet"),
    Case("gzip bytes named .csv", _score("{root}/gzip-named.csv"),
         "this looks gzip-compressed"),
    Case("no line break at all", _score("{root}/one-line.csv"), "no line break in its first"),
    Case("a column named twice", _score("{root}/duplicate.csv"),
         "the header names column 'age' twice"),
    Case("a required column missing", _score("{root}/no-credit-score.csv"),
         "'credit_score'"),
    Case("a broken JSON line", _score("{root}/broken.jsonl"), "at line 301",
         not_in=('{{"',)),
    Case("every row bad: the budget", _score("{root}/all-text.csv"),
         "rows failed", not_in=("\n",)),
    # options
    Case("unknown input format", _score("{good}", "--input-format", "xml"),
         "Invalid value for '--input-format'", code=2),
    Case("zero chunk rows", _score("{good}", "--chunk-rows", "0"), "'--chunk-rows'", code=2),
    Case("an unknown option", _score("{good}", "--bogus"), "No such option '--bogus'", code=2),
    Case("an error rate above 1", _score("{good}", "--max-error-rate", "2"),
         "'--max-error-rate'", code=2),
    Case("a chunk size below 1KiB", _score("{good}", "--chunk-size", "10"), "--chunk-size"),
    Case("an unknown input option", _score("{good}", "--input-option", "bogus=1"),
         "input option 'bogus'"),
    Case("a misspelt output option", _score("{good}", "--output-option", "compresion=gzip"),
         "output option 'compresion'"),
    Case("a two-character delimiter", _score("{good}", "--delimiter", ";;"), "delimiter"),
    Case("an unknown encoding", _score("{good}", "--encoding", "klingon"), "klingon"),
    Case("a bad job id", _score("{good}", "--job-id", "../up"), "--job-id"),
    Case("a password as a Snowflake output option",
         _score("{good}", "--output-option", "password=hunter2",
                output="snowflake://acct/db/schema/t"),
         "snowflake output option 'password'", not_in=("hunter2",)),
    Case("a password in an endpoint URL",
         _score("{good}", "--output-option", "endpoint_url=http://u:hunter2@127.0.0.1:9",
                output="s3://bucket/out.csv"),
         "output option 'endpoint_url'", not_in=("hunter2",)),
    Case("credentials in an S3 URI", _score("s3://AKIAXYZ:hunter2@bucket/in.csv"),
         "credentials in the URI are not accepted", not_in=("hunter2", "AKIAXYZ")),
    Case("a password in a Snowflake URI", _score("snowflake://me:hunter2@acct/db/sch/t"),
         "set SNOWFLAKE_PASSWORD", not_in=("hunter2", "AWS")),
    Case("a monitoring store option that is unknown",
         _score("{good}", "--monitoring-store", "{root}/store", "--monitoring-store-option",
                "colour=red"), "monitoring store option 'colour'"),
    Case("a monitoring store option without the store",
         _score("{good}", "--monitoring-store-option", "region=eu-west-1"),
         "--monitoring-store-option is given without --monitoring-store"),
    # destinations
    Case("an output that exists", _score("{good}", output="{root}/taken.csv"),
         "already exists; pass --overwrite", output="../taken.csv.missing"),
    Case("an output under a file", _score("{good}", output="{root}/a-file/sub/out.csv"),
         "is a file, not a folder"),
    Case("an unknown output scheme", _score("{good}", output="nosuch://x/y.csv"), "nosuch"),
    # models and deployments
    Case("no such model", ("score", "--model", "{root}/no-pkg", "--input", "{good}",
                           "--output", "{out}"), "no-pkg"),
    Case("model.yaml that is not YAML", ("score", "--model", "{root}/broken-yaml", "--input",
                                         "{good}", "--output", "{out}"),
         "not valid YAML: line "),
    Case("model.yaml with a wrong field", ("package", "info", "{root}/bad-field"), "targett"),
    Case("an unknown deployment", ("deploy", "show", "nobody"), "no deployment named 'nobody'"),
    Case("importance of an unknown feature",
         ("baseline", "{pkg}", "--training-data", "{good}", "--importance",
          "{root}/importance.yaml"), "'no_such_feature'"),
    # jobs
    Case("show an unknown job", ("job", "show", "nojob"), "no job 'nojob'"),
    Case("discard an unknown job", ("job", "discard", "nojob"), "no job 'nojob'"),
    Case("discard with nothing named", ("job", "discard"), "name the jobs to discard"),
    # monitoring
    Case("drift of a deployment with no records", ("drift", "nobody"),
         "no baseline for 'nobody'"),
    Case("drift with a time that is not one", ("drift", "x", "--since", "soon"),
         "--since 'soon' is not a time"),
    Case("drift with an empty window", ("drift", "x", "--since", "2h", "--until", "3h"),
         "is not before --until"),
    Case("settings of an unknown deployment", ("deploy", "settings", "nobody"),
         "no deployment named 'nobody'"),
    Case("compact a store with a bad option", ("monitoring", "compact", "--store-option",
                                               "colour=red"), "'colour'"),
    Case("a report without --output", ("report", "x"), "Missing option '--output'", code=2),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(corpus: Corpus, case: Case,
                                                   tmp_path: Path) -> None:
    where = tmp_path / "case"
    where.mkdir()
    values = {"pkg": str(corpus.package), "root": str(corpus.root), "good": str(corpus.good),
              "out": str(where / "out.csv")}
    args = [a.format(**values) for a in case.args]
    result = CliRunner().invoke(cli, args, env={"BATCHPRED_HOME": str(tmp_path / "home"),
                                                **case.extra})
    assert result.exit_code == case.code, (result.exit_code, result.stderr, result.output)
    lines = result.stderr.strip().splitlines()
    error = [line for line in lines if line.startswith("error: ")]
    assert len(error) == 1 and lines[-1] == error[0], result.stderr
    assert case.expect in error[0], error[0]
    for text in case.not_in:
        assert text.format(**values) not in error[0].removeprefix("error: "), error[0]
    assert not (where / case.output).exists()
    left = sorted(p.name for p in where.iterdir())
    assert left == [] or "--resume" in error[0], left
