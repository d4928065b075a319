"""The packages' layering, read from the source: ``api`` on top, then ``meter_sim``, then
``ledger``, with no arrow back up and no import cycle anywhere.

The graph is built with :mod:`ast` over the source files, without importing anything. Every
import statement counts wherever it sits (module level, inside a function, under
``TYPE_CHECKING``): an import moved into a function or behind ``TYPE_CHECKING`` to dodge a
cycle still ties the two modules together. ``from x import y`` is an edge to ``x.y`` when
``y`` is a submodule, else to ``x``.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "meter_sim", "api")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target``; ``where`` is the first such import (``path:line``)."""

    source: str
    target: str
    where: str


def module_files(root: Path, packages: Iterable[str]) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (source file, whether it is a package's ``__init__``)."""
    found: dict[str, tuple[Path, bool]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> list[str]:
    """The known modules that one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = node.module or ""
    if node.level:  # relative: level 1 is the importing module's own package
        anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    names = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            names.append(submodule)
        elif base in known:
            names.append(base)
    return names


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, Edge]]:
    """For each module of ``packages`` under ``root``: the modules of those packages it
    imports, each with where."""
    modules = module_files(root, packages)
    known = set(modules)
    graph: dict[str, dict[str, Edge]] = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        where = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, package, known):
                    if target != name:
                        graph[name].setdefault(target, Edge(name, target, f"{where}:{node.lineno}"))
    return graph


def cycles(graph: dict[str, dict[str, Edge]]) -> list[list[Edge]]:
    """One shortest cycle per strongly connected component that has one (as its edges)."""
    components = _strongly_connected(graph)
    found = []
    for component in components:
        if len(component) < 2:
            continue
        start = min(component)
        # Breadth-first from start, inside the component, back to start.
        came_from: dict[str, Edge] = {}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            edge = next(
                (e for e in graph[here].values() if e.target == start),
                None,
            )
            if edge is not None:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, came_from[path[0].source])
                found.append(path)
                break
            for target, e in sorted(graph[here].items()):
                if target in component and target not in came_from and target != start:
                    came_from[target] = e
                    queue.append(target)
    return found


def _strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit to mind)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _show(edges: Iterable[Edge]) -> str:
    return "\n".join(f"  {e.source} -> {e.target}  ({e.where})" for e in edges)


def _arrows_into(graph: dict[str, dict[str, Edge]], source: str, target: str) -> list[Edge]:
    """Edges from package ``source`` into package ``target``."""
    return [
        edge
        for name, edges in graph.items()
        if name.split(".")[0] == source
        for edge in edges.values()
        if edge.target.split(".")[0] == target
    ]


# ───────────────────────────── The packages ─────────────────────────────

GRAPH = import_graph(ROOT, PACKAGES)


def test_no_module_of_ledger_meter_sim_or_api_takes_part_in_an_import_cycle() -> None:
    found = cycles(GRAPH)
    assert not found, "import cycles:\n" + "\n\n".join(_show(c) for c in found)


def test_ledger_imports_neither_api_nor_meter_sim() -> None:
    upward = _arrows_into(GRAPH, "ledger", "api") + _arrows_into(GRAPH, "ledger", "meter_sim")
    assert not upward, "ledger imports a floor above it:\n" + _show(upward)


def test_meter_sim_never_imports_api() -> None:
    upward = _arrows_into(GRAPH, "meter_sim", "api")
    assert not upward, "meter_sim imports api:\n" + _show(upward)


def test_the_graph_holds_every_package_and_the_api_composition() -> None:
    """A walker that silently found nothing would pass the tests above."""
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert {"api.outbox", "api.intake", "api.chain_gate"} <= GRAPH["api.services"].keys()
    assert "ledger.errors" in GRAPH["api.chain_gate"]


# ───────────────────────────── The walker itself ─────────────────────────────


def test_lazy_type_only_and_relative_imports_of_submodules_all_close_a_cycle(
    tmp_path: Path,
) -> None:
    files = {
        "top/__init__.py": "",
        "top/a.py": "def f():\n    from top import b\n",  # lazy, names a submodule
        "top/b.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import thing\n"
        ),
        "top/c.py": "import top.a\n",
        "top/d.py": "from . import a\nfrom top import thing_of_init\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ["top"])
    assert {name: set(edges) for name, edges in graph.items()} == {
        "top": set(),
        "top.a": {"top.b"},
        "top.b": {"top.c"},
        "top.c": {"top.a"},
        "top.d": {"top.a", "top"},
    }
    (cycle,) = cycles(graph)
    assert [(e.source, e.target) for e in cycle] == [
        ("top.a", "top.b"),
        ("top.b", "top.c"),
        ("top.c", "top.a"),
    ]
    assert cycle[0].where == "top/a.py:2"


def test_a_package_with_no_cycle_shows_none(tmp_path: Path) -> None:
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "__init__.py").write_text("from flat import low\n")
    (tmp_path / "flat" / "low.py").write_text("import json\n")
    (tmp_path / "flat" / "high.py").write_text("from flat.low import x\nfrom flat import low\n")
    graph = import_graph(tmp_path, ["flat"])
    assert cycles(graph) == []
    assert graph["flat.high"]["flat.low"].where == "flat/high.py:1"
