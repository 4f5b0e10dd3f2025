"""Errors decide by type: configuration mistakes are ``ConnectorConfigError`` (a
``ValueError``), an existing output is ``OutputExistsError`` (a ``FileExistsError``),
and nothing in the package raises the bare root ``ConnectorError``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

import connectors
from connectors import (
    ConnectorConfigError,
    IntakeRequest,
    OutputError,
    OutputExistsError,
    OutputRequest,
    UnknownSchemeError,
    open_intake,
    open_output,
    register_scheme,
)
from connectors import base as registry
from connectors.errors import CredentialsInUriError, config_error
from connectors.formats import FileOptions
from connectors.snowflake.options import read_settings

PACKAGE = Path(connectors.__file__).parent


def _root_constructions(tree: ast.AST) -> Iterator[int]:
    """Lines that call ``ConnectorError(...)`` or raise the bare class."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target: ast.expr | None = node.func
        elif isinstance(node, ast.Raise):
            target = node.exc
        else:
            continue
        name = getattr(target, "id", None) or getattr(target, "attr", None)
        if name == "ConnectorError":
            yield node.lineno


def test_no_bare_connector_error_is_raised_anywhere() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line in _root_constructions(ast.parse(path.read_text(), str(path)))]
    assert found == [], "raise a subclass of ConnectorError (errors.py draws the tree)"


def test_the_scan_finds_what_it_forbids() -> None:
    snippet = "raise ConnectorError('x')\nraise errors.ConnectorError\ne = ConnectorError()"
    assert sorted(_root_constructions(ast.parse(snippet))) == [1, 2, 3]


@pytest.mark.parametrize(("options", "match"), [
    ({"delimiter": ";;"}, "output option 'delimiter': String should have at most 1 character"),
    ({"delimitr": ";"}, r"output option 'delimitr': not a known option \(known options: "
                        r"endpoint_url, .*delimiter"),
    ({"endpoint_url": "ftp://x"}, "output option 'endpoint_url': must be an http"),
    ({"format": "xls"}, "output option 'format': Input should be 'csv', 'parquet' or 'jsonl'"),
])
def test_a_bad_file_output_option_is_a_config_error(
        tmp_path: Path, options: dict[str, str], match: str) -> None:
    with pytest.raises(ConnectorConfigError, match=match) as info:
        open_output(OutputRequest(str(tmp_path / "out.csv"), options=options))
    assert isinstance(info.value, ValueError)
    assert "Value error" not in str(info.value)


def test_other_file_configuration_mistakes_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "t.dat").write_text("a\n1\n")
    with pytest.raises(ConnectorConfigError, match="cannot tell the format"):
        open_intake(IntakeRequest(str(tmp_path / "t.dat")))
    with pytest.raises(ConnectorConfigError, match="do not apply to 'local' paths"):
        open_output(OutputRequest(str(tmp_path / "o.csv"), options={"region": "eu-west-1"}))
    with pytest.raises(ConnectorConfigError, match="chunk_rows must be >= 1"):
        IntakeRequest(str(tmp_path / "t.dat"), chunk_rows=0)
    with pytest.raises(UnknownSchemeError, match="no filesystem for 'nosuch://'"):
        open_intake(IntakeRequest("nosuch://bucket/t.csv"))
    assert issubclass(UnknownSchemeError, ConnectorConfigError)
    assert issubclass(CredentialsInUriError, ConnectorConfigError)


def test_an_existing_file_output_is_output_exists_error(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("precious\n")
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite") as info:
        open_output(OutputRequest(str(tmp_path / "out.csv")))
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, OutputError)
    assert not isinstance(info.value, ValueError)


def test_registering_a_taken_scheme_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})  # this test's registrations only
    with pytest.raises(ConnectorConfigError, match="'s3' is already registered") as info:
        register_scheme("s3", "m:Intake", "m:Output")
    assert isinstance(info.value, ValueError)
    register_scheme("mystore", "m:Intake", "m:Output")
    with pytest.raises(ConnectorConfigError, match="pass replace=True"):
        register_scheme("mystore", "m:Other", "m:Output")
    register_scheme("mystore", "m:Other", "m:Output", replace=True)
    with pytest.raises(UnknownSchemeError, match=r"no connector for 'mystore://'"):
        open_intake(IntakeRequest("mystore://x/y"))


def test_config_error_names_the_field_and_its_source_never_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        FileOptions.model_validate({"retries": "99", "endpoint_url": "http://k:s3cret@h"})
    hints = {"endpoint_url": "set AWS_PROFILE"}
    error = config_error(info.value, "input option '{field}'", hints=hints)
    assert str(error) == ("input option 'endpoint_url': must not carry credentials (use the "
                          "environment or a profile); set AWS_PROFILE (and 1 more)")
    assert "s3cret" not in str(error)


def test_a_bad_snowflake_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_PORT", "not-a-port")
    with pytest.raises(ConnectorConfigError,
                       match="^environment variable SNOWFLAKE_PORT: ") as info:
        read_settings()
    assert "not-a-port" not in str(info.value) and info.value.__cause__ is None
