"""Project-level contracts: layering, the README's commands, typing markers."""

from __future__ import annotations

import graphlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import resolve_check

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a tool installed beside this interpreter (a test dependency) at the root."""
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_import_layers_hold() -> None:
    result = _tool("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle between any two modules (imports inside functions included)."""
    graph = grimp.build_graph("batch", "connectors", "flows")
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_ruff_finds_nothing() -> None:
    """Lint rules, at most four positional parameters among them (pyproject's [tool.ruff])."""
    result = _tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_three_packages() -> None:
    result = _tool("mypy", "batch", "connectors", "flows")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_test_dependencies_resolve_without_backtracking() -> None:
    """With the newest pip, ".[test]" resolves with at most a few versions of any project
    (unbounded, pip 26.3 walked through every aiobotocore, s3fs and fsspec release).
    The check started when collection ended (``tests/conftest.py``): this waits for it."""
    result = resolve_check.result()
    assert result.returncode == 0, result.stdout
    assert "check-resolve: OK" in result.stdout


def test_batch_shows_its_rooms() -> None:
    """A handful of modules at the top of ``batch``; the rest lives in folders."""
    top = sorted(p.name for p in (ROOT / "batch").glob("*.py"))
    assert top == ["__init__.py", "deployments.py", "errors.py", "lazy.py", "settings.py"]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_starts_with_two_one_line_commands_and_ci_runs_the_test_one() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    install_and_run, install_and_test = blocks[0], blocks[1]
    assert "\n" not in install_and_run and "batchpred quickstart" in install_and_run
    assert "\n" not in install_and_test and "pytest" in install_and_test
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == install_and_test


def test_packages_ship_py_typed() -> None:
    for package in ("batch", "connectors", "flows"):
        assert (ROOT / package / "py.typed").exists(), package
