"""The import graph of the product packages (pairforge/, filters/, flows/, prompts/), read from source by ``ast``.

Every import counts, at module top level or inside a function; imports under ``if TYPE_CHECKING:`` are kept apart
(they never run, so they cannot close a circle at import time, but they still say which way a layer leans).
``python -m tests.import_graph`` prints the circles and the upward imports; ``tests/test_imports.py`` keeps them at
zero.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("pairforge", "filters", "flows", "prompts")

# The layers, lowest first: a module may import its own layer and any layer below it, never one above. A module
# belongs to the layer of the longest prefix that names it (``pairforge.cli`` is the top layer, though the rest of
# ``pairforge`` is lower). One table, read by the test and by docs/architecture.md ("## Layers").
ROOT_PACKAGES = ("pairforge",)  # their entry in LAYERS covers the package's __init__ only

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "records",
        (
            "prompts",
            "pairforge",
            "pairforge.records",
            "pairforge.stats",
            "pairforge.mapping",
            "pairforge.text",
        ),
    ),
    (
        "config",
        (
            "pairforge.config",
            "pairforge.config_adjudicate",
            "pairforge.config_generate",
            "pairforge.config_inputs",
            "pairforge.config_judge",
            "pairforge.config_rules",
            "pairforge.config_stages",
            "pairforge.config_train",
            "pairforge.models",
            "pairforge.stages",
            "pairforge.workdir",
        ),
    ),
    (
        "readers",
        (
            "pairforge.shards",
            "pairforge.quarantine",
            "pairforge.diskfull",
            "pairforge.window",
            "pairforge.corpora",
            "pairforge.inputs",
            "pairforge.analysis",
            "pairforge.grounding",
            "pairforge.restated",
            "pairforge.human_counts",
            "pairforge.llm",
            "pairforge.ray_cluster",
            "pairforge.pinning",
            "pairforge.shard_task",
        ),
    ),
    ("dedup", ("pairforge.dedup", "pairforge.pool")),
    ("store", ("pairforge.store",)),
    ("plan", ("pairforge.plan",)),
    (
        "stages",
        (
            "pairforge.ingest",
            "pairforge.filter",
            "pairforge.generation",
            "pairforge.judge",
            "pairforge.adjudicate",
            "pairforge.negatives",
            "pairforge.train",
            "pairforge.reaper",
            "pairforge.report",
            "pairforge.samples",
            "pairforge.testing",
        ),
    ),
    ("evaluate", ("pairforge.evaluate",)),
    ("export", ("pairforge.export",)),
    ("wiring", ("pairforge.wiring",)),
    ("filters", ("filters",)),
    ("flows", ("flows",)),
    (
        "cli",
        (
            "pairforge.docs_config",
            "pairforge.cli",
            "pairforge.cli_common",
            "pairforge.cli_eval",
            "pairforge.cli_stages",
            "pairforge.cli_train",
            "pairforge.cli_versions",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Import:
    """One import of a product module by another: where it is written and whether it only runs for type checkers."""

    source: str
    target: str
    path: str
    line: int
    type_checking: bool


def module_name(path: Path, root: Path = REPO) -> str:
    """The dotted module name of a source file under ``root`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path = REPO, packages: Iterable[str] = PRODUCT_PACKAGES) -> dict[str, Path]:
    """Every product module under ``root``: dotted name -> source file."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``node``, with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, type_checking
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _walk_statement(statement, True)
            for statement in child.orelse:
                yield from _walk_statement(statement, type_checking)
        else:
            yield from _walk(child, type_checking)


def _walk_statement(statement: ast.stmt, type_checking: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(statement, ast.Import | ast.ImportFrom):
        yield statement, type_checking
    else:
        yield from _walk(statement, type_checking)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The product module ``name`` means: itself, or the nearest enclosing product module (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, source: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        # A relative import counts from the module's package (the module itself when it is a package's __init__).
        package = source.split(".")
        if not is_package:
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        # ``from a import b`` imports the submodule ``a.b`` when there is one, else a name in ``a``.
        yield f"{base}.{alias.name}" if alias.name != "*" else base


def find_imports(root: Path = REPO, packages: Iterable[str] = PRODUCT_PACKAGES) -> list[Import]:
    """Every import of a product module by a product module (self-imports left out), in file and line order, with the
    package ``__init__`` modules each import runs on the way."""
    modules = find_modules(root, packages)
    found: list[Import] = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, type_checking in _walk(tree):
            for name in _targets(node, source, path.name == "__init__.py"):
                target = _resolve(name, modules)
                if target is None or target == source:
                    continue
                rel = str(path.relative_to(root))
                found.append(Import(source, target, rel, node.lineno, type_checking))
                # Importing ``a.b.c`` first runs ``a/__init__`` and ``a/b/__init__``: those count as imports too
                # (a package's own modules excepted: their package is already being imported).
                package = target.rpartition(".")[0]
                while package:
                    if package in modules and not (source == package or source.startswith(package + ".")):
                        found.append(Import(source, package, rel, node.lineno, type_checking))
                    package = package.rpartition(".")[0]
    return found


def find_circles(imports: Iterable[Import]) -> list[list[str]]:
    """The import circles: every strongly connected component of more than one module (Tarjan's algorithm,
    iterative), each sorted, in sorted order. ``TYPE_CHECKING`` imports are left out: they never run."""
    graph: dict[str, set[str]] = {}
    for edge in imports:
        if not edge.type_checking:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return sorted(circles)


def layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int:
    """The position of ``module``'s layer in ``layers`` (0 is the lowest): the layer with the longest prefix that names
    it. A module no layer names is an error, so a new package must be placed in the table."""
    best, best_length = -1, -1
    for position, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            # the bare package name places only its __init__: a new pairforge module must be placed by name
            below = module.startswith(prefix + ".") and prefix not in ROOT_PACKAGES
            if (module == prefix or below) and len(prefix) > best_length:
                best, best_length = position, len(prefix)
    if best < 0:
        raise KeyError(f"{module} is in no layer of tests/import_graph.py LAYERS")
    return best


def find_upward_imports(
    imports: Iterable[Import], layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS
) -> list[Import]:
    """The imports from a lower layer to a higher one (``TYPE_CHECKING`` imports included: they still lean up)."""
    return [edge for edge in imports if layer_of(edge.target, layers) > layer_of(edge.source, layers)]


def main() -> int:
    """Print the circles and the upward imports of this checkout; exit 1 when there is any."""
    imports = find_imports()
    circles = find_circles(imports)
    upward = find_upward_imports(imports)
    for circle in circles:
        print("circle:", " <-> ".join(circle))
    for edge in upward:
        names = [name for name, _ in LAYERS]
        flag = " (TYPE_CHECKING)" if edge.type_checking else ""
        print(
            f"upward: {edge.path}:{edge.line} {edge.source} [{names[layer_of(edge.source)]}] imports "
            f"{edge.target} [{names[layer_of(edge.target)]}]{flag}"
        )
    print(f"{len(imports)} imports, {len(circles)} circles, {len(upward)} upward imports")
    return 1 if circles or upward else 0


if __name__ == "__main__":
    sys.exit(main())
