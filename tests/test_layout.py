"""Guard: the top-level packages are this repo's, and the core never imports the orchestrator."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("name", ["pairforge", "flows", "filters", "prompts"])
def test_top_level_packages_resolve_inside_the_repo(name: str) -> None:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_never_imports_prefect_flows_or_filters() -> None:
    offenders = []
    for path in sorted((REPO / "pairforge").rglob("*.py")):
        if path.name == "cli.py" and path.parent.name == "pairforge":
            continue
        # the stage commands (cli_stages) sit above filters: `pairforge filter` hands the filter stage its filters
        banned = {"prefect", "prefect_dask", "flows"} | (set() if path.name.startswith("cli_") else {"filters"})
        for name in _imported_modules(path):
            if name.split(".")[0] in banned:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, offenders


def test_filters_and_prompts_do_not_import_prefect() -> None:
    for folder in ("filters", "prompts"):
        for path in (REPO / folder).rglob("*.py"):
            assert not any(n.split(".")[0] == "prefect" for n in _imported_modules(path)), path


def test_guard_detects_a_prefect_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from prefect import flow\nimport os\n")
    assert "prefect" in _imported_modules(module)
