"""The import graph of the product modules (tests/import_graph.py): no circle, no import from a lower layer to a
higher one; and the check itself finds what it must (function-level, relative, ``TYPE_CHECKING`` and package imports).
``python -m tests.import_graph`` prints the same findings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.import_graph import (
    Import,
    find_circles,
    find_imports,
    find_modules,
    find_upward_imports,
    layer_of,
)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return find_imports()


def _lines(edges: list[Import]) -> list[str]:
    return [f"{e.path}:{e.line} {e.source} -> {e.target}" for e in edges]


def test_no_import_circle_among_product_modules(imports: list[Import]) -> None:
    assert find_circles(imports) == []


def test_no_import_from_a_lower_layer_to_a_higher_one(imports: list[Import]) -> None:
    assert _lines(find_upward_imports(imports)) == []


def test_every_product_module_has_a_layer() -> None:
    unplaced = []
    for module in find_modules():
        try:
            layer_of(module)
        except KeyError:
            unplaced.append(module)
    assert unplaced == []


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("pairforge.records", "filters.base"),  # the core never imports filters ...
        ("pairforge.filter", "filters.chain"),  # (the filter stage is handed its filters)
        ("pairforge.export.publish", "flows.pipeline"),  # ... nor flows
        ("pairforge.store.versions", "pairforge.plan"),
        ("pairforge.dedup.index", "pairforge.negatives.mine"),
        ("pairforge.analysis.tokenize", "pairforge.dedup.index"),
        ("pairforge.config", "pairforge.train.run"),
        ("filters.base", "flows.pipeline"),
        ("flows.pipeline", "pairforge.cli"),  # only the CLI may import flows
    ],
)
def test_the_layer_table_puts_the_issue_rules_one_way(lower: str, higher: str) -> None:
    assert layer_of(lower) < layer_of(higher), (lower, higher)
    assert find_upward_imports([Import(lower, higher, "x.py", 1, False)])


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_check_finds_function_level_relative_and_package_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "app/__init__.py": "from app.low import x\n",
            "app/low.py": "import os\n\ndef f():\n    from app.high import y\n    return y\n",
            "app/high.py": "from . import low\nfrom .sub.leaf import z\n",
            "app/sub/__init__.py": "",
            "app/sub/leaf.py": "import typing\nif typing.TYPE_CHECKING:\n    from app import high\nz = 1\n",
        },
    )
    edges = {(e.source, e.target, e.type_checking) for e in find_imports(root, ["app"])}
    assert edges == {
        ("app", "app.low", False),
        ("app.low", "app.high", False),  # inside a function: still an import
        ("app.high", "app.low", False),  # relative
        ("app.high", "app.sub.leaf", False),
        ("app.high", "app.sub", False),  # importing app.sub.leaf runs app/sub/__init__ first
        ("app.sub.leaf", "app.high", True),
    }
    assert find_circles(find_imports(root, ["app"])) == [["app.high", "app.low"]]


def test_type_checking_imports_close_no_circle_but_still_lean(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.high import y\n",
            "app/high.py": "from app.low import x\n",
        },
    )
    edges = find_imports(root, ["app"])
    assert find_circles(edges) == []
    layers = (("low", ("app", "app.low")), ("high", ("app.high",)))
    assert [(e.source, e.target) for e in find_upward_imports(edges, layers)] == [("app.low", "app.high")]


def test_the_longest_prefix_names_the_layer() -> None:
    layers = (("low", ("a",)), ("high", ("a.cli",)))
    assert [layer_of(m, layers) for m in ("a", "a.b", "a.cli", "a.cli.x", "a.client")] == [0, 0, 1, 1, 0]
    with pytest.raises(KeyError, match="b is in no layer"):
        layer_of("b", layers)


def test_the_cli_module_loads_no_numba() -> None:
    """vLLM's engine process re-imports the main module (``python -m pairforge.cli``), and its CPU kernel scan breaks
    on llvmlite's objects ("'_lib_fn_wrapper' object has no attribute 'get'"): the CLI's own imports stay free of
    numba, which the stage modules load when a command runs."""
    probe = "import sys, pairforge.cli; print(sorted(m for m in ('numba', 'llvmlite.binding') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
