"""Guard: no code under pairforge/, filters/, flows/ or prompts/ unpickles anything. Pickle (and joblib, torch.load
without weights_only, np.load with allow_pickle, pandas.read_pickle, yaml's unsafe loaders) runs code from the
file it reads; the pipeline reads corpora, model folders and published datasets that others wrote."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FOLDERS = ("pairforge", "filters", "flows", "prompts")
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve"}
UNPICKLING_CALLS = {"joblib.load", "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → dotted name it was imported as (``np`` → ``numpy``, ``load`` → ``torch.load``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *parts])


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_uses(source: str) -> list[str]:
    """Every import of a pickle module and every call that may unpickle, as ``line: what``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases) or ""
        if _unpickles(name, node, aliases):
            found.append(f"{node.lineno}: calls {name}")
    return found


def _unpickles(name: str, call: ast.Call, aliases: dict[str, str]) -> bool:
    if name.split(".")[0] in PICKLE_MODULES or name in UNPICKLING_CALLS:
        return True
    if name == "torch.load":
        return not _is_constant(_keyword(call, "weights_only"), True)
    if name == "numpy.load":
        allow = _keyword(call, "allow_pickle")
        return allow is not None and not _is_constant(allow, False)
    if name == "yaml.load":
        loader = _keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        return loader is None or (_dotted(loader, aliases) or "").split(".")[-1] not in SAFE_YAML_LOADERS
    return False


def test_the_code_never_unpickles() -> None:
    offenders = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            offenders += [f"{path.relative_to(REPO)}:{use}" for use in unsafe_uses(path.read_text(encoding="utf-8"))]
    assert not offenders, offenders


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import pickle as p",
        "from pickle import loads",
        "import dill",
        "import joblib\njoblib.load('m.joblib')",
        "from joblib import load\nload('m.joblib')",
        "import torch\ntorch.load('w.pt')",
        "import torch\ntorch.load('w.pt', weights_only=False)",
        "from torch import load as tload\ntload('w.pt')",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        "import numpy\nnumpy.load('a.npy', allow_pickle=flag)",
        "import pandas as pd\npd.read_pickle('x.pkl')",
        "import yaml\nyaml.load(text, Loader=yaml.Loader)",
        "import yaml\nyaml.unsafe_load(text)",
    ],
)
def test_the_guard_catches_each_unsafe_form(source: str) -> None:
    assert unsafe_uses(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load('w.pt', weights_only=True)",
        "import numpy as np\nnp.load('a.npy')\nnp.load('b.npy', allow_pickle=False, mmap_mode='r')",
        "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
        "import json\njson.load(f)",
        "model.load('x')",
    ],
)
def test_the_guard_lets_safe_loading_through(source: str) -> None:
    assert unsafe_uses(source) == [], source


def test_the_guard_fails_on_a_planted_module(tmp_path: Path) -> None:
    module = tmp_path / "planted.py"
    module.write_text(
        "from __future__ import annotations\n\nimport numpy as np\n\nX = np.load('x', allow_pickle=True)\n"
    )
    assert unsafe_uses(module.read_text()) == ["5: calls numpy.load"]
