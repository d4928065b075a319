"""The modules of ledger.chain import one way: none reaches itself again through any import
(at the top, inside a function or for type checking only), through the rest of ledger either."""

from __future__ import annotations

import ast
from pathlib import Path

import ledger

LEDGER = Path(ledger.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(LEDGER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Each ledger module -> the ledger modules it imports anywhere in its file
    (``from package import module`` counts as importing that module)."""
    paths = {_module_name(path): path for path in LEDGER.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0]
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    edges.add(submodule if submodule in paths else base)
        graph[name] = {edge for edge in edges if edge in paths and edge != name}
    return graph


def _path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A chain of imports from ``start`` back to ``start``, or None."""
    parent: dict[str, str] = {}
    todo = [start]
    while todo:
        module = todo.pop()
        for target in sorted(graph[module]):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if target not in parent:
                parent[target] = module
                todo.append(target)
    return None


def test_no_chain_module_reaches_itself_through_its_imports() -> None:
    graph = _graph()
    assert "ledger.chain.embedded" in graph["ledger.chain.node"]
    for module in sorted(m for m in graph if m.startswith("ledger.chain")):
        back = _path_back(graph, module)
        assert back is None, " -> ".join(back or [])


def test_the_node_opens_the_chain_without_the_backend_chooser() -> None:
    graph = _graph()
    assert "ledger.chain.backends" not in graph["ledger.chain.node"]
    assert "ledger.chain.backends" not in graph["ledger.chain.embedded"]
