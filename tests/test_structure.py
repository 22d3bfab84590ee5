"""The shape of the source tree: imports between persisty's modules form no cycle (not even
one hidden in a function), serving and the layers import persisty only at module level, and
no package reaches into another package's private modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# the packages whose modules import persisty only at the top (an import in a function hides
# a dependency, and so a cycle, from the reader)
TOP_LEVEL_ONLY = ("persisty.serve", "persisty.layers")

# cycles that remain, to be broken; each entry is the sorted list of the modules in one
# strongly connected component (this list only shrinks)
KNOWN_CYCLES: list[list[str]] = [
    # persisty.store's Database.files() opens persisty.files, which builds on persisty.store
    [
        "persisty._connect",
        "persisty.aio",
        "persisty.files",
        "persisty.files._async.base",
        "persisty.files._async.blobs",
        "persisty.files._async.maintenance",
        "persisty.files._async.open",
        "persisty.files._async.reader",
        "persisty.files._async.s3",
        "persisty.files._async.sqlchunks",
        "persisty.files._async.store",
        "persisty.files._async.uploads",
        "persisty.files._databases",
        "persisty.files._sync.base",
        "persisty.files._sync.blobs",
        "persisty.files._sync.maintenance",
        "persisty.files._sync.open",
        "persisty.files._sync.reader",
        "persisty.files._sync.s3",
        "persisty.files._sync.sqlchunks",
        "persisty.files._sync.store",
        "persisty.files._sync.uploads",
        "persisty.store",
        "persisty.store._async",
        "persisty.store._async.database",
        "persisty.store._sync",
        "persisty.store._sync.database",
    ],
]


@dataclass(frozen=True)
class Import:
    importer: str  # the module that imports
    target: str  # the module imported (a package when the name is not a module)
    line: int
    top_level: bool  # at module level (not in a function)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "persisty").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[Import]:
    """The imports of persisty modules in ``path``, except under ``if TYPE_CHECKING``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
            return
        base = node.module or ""
        if node.level:
            pkg = package
            for _ in range(node.level - 1):
                pkg = pkg.rpartition(".")[0]
            base = f"{pkg}.{base}" if base else pkg
        for a in node.names:
            full = f"{base}.{a.name}"
            yield full if full in MODULES else base

    def walk(body: list[ast.stmt], top: bool) -> Iterator[Import]:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse, top)
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                for t in targets(node):
                    if t == "persisty" or t.startswith("persisty."):
                        yield Import(name, t, node.lineno, top)
                continue
            inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody"):
                yield from walk(getattr(node, field, None) or [], inner)
            for handler in getattr(node, "handlers", None) or []:
                yield from walk(handler.body, inner)

    yield from walk(ast.parse(path.read_text()).body, True)


IMPORTS = [i for name, path in MODULES.items() for i in _imports(name, path)]


def _graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs (the packages above a module run first)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for i in IMPORTS:
        parts = i.target.split(".")
        for n in range(1, len(parts) + 1):
            above = ".".join(parts[:n])
            if above in MODULES and not (i.importer == above or i.importer.startswith(above + ".")):
                graph[i.importer].add(above)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_checker_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    """Counting imports in functions: a cycle hidden in a function is still a cycle."""
    cycles = _cycles(_graph())
    new = [c for c in cycles if c not in KNOWN_CYCLES]
    assert new == [], f"import cycles: {new}"
    gone = [c for c in KNOWN_CYCLES if c not in cycles]
    assert gone == [], f"broken cycles: remove them from KNOWN_CYCLES: {gone}"


def test_imports_of_persisty_are_at_module_level() -> None:
    local = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in IMPORTS
        if not i.top_level and i.importer.startswith(TOP_LEVEL_ONLY)
    ]
    assert local == []


def _private_imports() -> list[str]:
    """``importer -> target`` for each import of another package's private module."""
    found = set()
    for i in IMPORTS:
        parts = i.target.split(".")
        if len(parts) < 3 or not any(p.startswith("_") for p in parts[2:]):
            continue
        package = ".".join(parts[:2])
        if i.importer == package or i.importer.startswith(package + "."):
            continue
        found.add(f"{i.importer} -> {i.target}")
    return sorted(found)


# imports of another package's private modules that remain, to be replaced by the public
# surface (persisty.store, persisty.model …); this list only shrinks
KNOWN_PRIVATE_IMPORTS: list[str] = []


def test_no_imports_of_another_packages_private_modules() -> None:
    found = _private_imports()
    new = [f for f in found if f not in KNOWN_PRIVATE_IMPORTS]
    assert new == [], f"import the public surface instead: {new}"
    gone = [f for f in KNOWN_PRIVATE_IMPORTS if f not in found]
    assert gone == [], f"fixed: remove them from KNOWN_PRIVATE_IMPORTS: {gone}"
