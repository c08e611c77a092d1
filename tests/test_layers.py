"""The layering is checked from the code: import-linter's contracts in pyproject.toml, and a planted
upward import that they must catch."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "headcheck"
PRINTING_PACKAGES = {"cli", "render"}


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([sys.executable, "-c", code, "--no-cache", str(REPO / "pyproject.toml")],
                          cwd=package_parent, env=env, capture_output=True, text=True)


def test_contracts_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, upward_import", [
    ("read/facts.py", "from ..judge import engine as _upward"),
    ("judge/engine.py", "from ..migration import run as _upward"),
    ("judge/engine.py", "from ..render import text as _upward"),
    ("read/hub.py", "import click as _upward"),
    ("model.py", "from .read import facts as _upward"),
    ("migration/run.py", "import torch as _upward"),  # migrate runs in the core install; only verify needs torch
])
def test_upward_import_is_caught(tmp_path, module, upward_import):
    """A copy of the package with one planted upward import breaks a contract."""
    shutil.copytree(PACKAGE, tmp_path / "headcheck", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "headcheck" / module
    target.write_text(target.read_text() + f"\n{upward_import}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_only_cli_and_render_print():
    """The library returns data: no print(), click.echo or writes to stdout/stderr below cli/ and render/."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in PRINTING_PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in {"print", "click.echo", "sys.stdout.write", "sys.stderr.write"}:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert offenders == []


def test_benchmarks_have_no_import_cycles():
    """import-linter covers headcheck; the benchmark helpers are checked here for cycles among themselves."""
    graph: dict[str, set[str]] = {}
    for path in (REPO / "benchmarks").glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported |= {node.module} if node.module else {alias.name for alias in node.names}
        graph[path.stem] = imported

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    cycles = [name for name in graph if reaches(name, name, {name})]
    assert cycles == []
