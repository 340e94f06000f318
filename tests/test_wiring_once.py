"""The stage wiring and the shard-task protocol exist once: a stage's inputs are constructed only in
``pairforge/wiring.py`` (``stage_inputs``), and only ``pairforge/shard_task.py`` asks a workdir whether a shard task is
done, forgets it or marks it done. ``pairforge reselect`` is the one other construction: select's inputs from the
candidates of another workdir or version, not from a run plan."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PRODUCT = ("pairforge", "flows", "filters")
INPUT_TYPES = {"IngestInputs", "DedupInputs", "IndexInputs", "GenerateInputs", "ShardInputs", "SelectInputs",
               "ExportInputs"}  # fmt: skip
PROTOCOL = {"finished", "forget", "mark_done"}
ALLOWED_INPUTS = {"pairforge/wiring.py", "pairforge/negatives/reselect.py"}


def _calls(path: Path) -> list[tuple[str, int]]:
    """(called name, line) of every call in ``path``: a plain name or an attribute's last part."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            found.append((name, node.lineno))
    return found


def _offenders(names: set[str], allowed: set[str]) -> list[str]:
    offenders = []
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            where = path.relative_to(REPO).as_posix()
            if where not in allowed:
                offenders += [f"{where}:{line} {name}" for name, line in _calls(path) if name in names]
    return offenders


def test_stage_inputs_are_built_only_by_the_wiring() -> None:
    assert _offenders(INPUT_TYPES, ALLOWED_INPUTS) == []


def test_the_shard_task_protocol_is_written_once() -> None:
    assert _offenders(PROTOCOL, {"pairforge/shard_task.py"}) == []


def test_the_check_sees_a_construction_and_a_protocol_call(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("x = ShardInputs([])\nw.mark_done('s', 'k', 'key', None)\nprint(1)\n")
    assert _calls(module) == [("ShardInputs", 1), ("mark_done", 2), ("print", 3)]
