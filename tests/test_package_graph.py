"""The package graph of ``kizuna``: no cycle between its subpackages but the intended gate.

Every module under ``kizuna/`` is parsed with :mod:`ast`; each runtime import (module level or
inside a function; not under ``if TYPE_CHECKING:``, which never runs) is an arrow from the
importing module's top-level subpackage (``kizuna.chain``, ``kizuna.crypto``, ...; a top-level
module such as ``kizuna/types.py`` is its own node) to the imported one's. The strongly
connected components of that graph must be single nodes, except the allowances below; a new
upward arrow that closes a cycle fails, naming the import lines that make it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kizuna"

ALLOWED_CYCLES: list[frozenset[str]] = [
    # The intended gate: crypto's re-encryption takes only an access.VerifiedGrant, and access
    # checks grants with crypto's signatures (docs/service.md, the trust model).
    frozenset({"kizuna.access", "kizuna.crypto"}),
]

Arrow = tuple[str, str]


def _node(module: str) -> str:
    """``kizuna.chain.index.store`` → ``kizuna.chain``; ``kizuna.types`` → itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # only the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base)
        target = f"{prefix}.{node.module}" if node.module else prefix
    else:
        target = node.module or ""
    # ``from kizuna import types`` imports the module kizuna.types.
    if target == "kizuna":
        return [f"kizuna.{alias.name}" for alias in node.names]
    return [target]


def package_graph() -> dict[Arrow, list[str]]:
    """Arrow between two top-level nodes → the import lines (``path:line``) that make it."""
    arrows: dict[Arrow, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target != "kizuna" and not target.startswith("kizuna."):
                    continue
                source, dest = _node(module), _node(target)
                if source != dest and source != "kizuna" and dest != "kizuna":
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    arrows[(source, dest)].append(where)
    return dict(arrows)


def strongly_connected(arrows: dict[Arrow, list[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm; components of more than one node."""
    edges: dict[str, set[str]] = defaultdict(set)
    for source, dest in arrows:
        edges[source].add(dest)
    nodes = sorted(set(edges) | {d for ds in edges.values() for d in ds})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for node in nodes:
        if node not in index:
            connect(node)
    return components


def test_the_only_package_cycles_are_the_allowed_ones() -> None:
    arrows = package_graph()
    unexpected = [c for c in strongly_connected(arrows) if c not in ALLOWED_CYCLES]
    report = []
    for component in unexpected:
        report.append("cycle " + " ↔ ".join(sorted(component)) + ":")
        for (source, dest), lines in sorted(arrows.items()):
            if source in component and dest in component:
                report.append(f"  {source} → {dest}: {', '.join(lines)}")
    assert not unexpected, "\n".join(report)


def test_the_allowed_cycles_still_exist() -> None:
    # An allowance that no longer matches a cycle is stale: remove it, so it cannot hide a
    # new arrow later.
    components = strongly_connected(package_graph())
    for allowed in ALLOWED_CYCLES:
        assert allowed in components, sorted(allowed)


def test_the_graph_sees_relative_function_level_imports_and_skips_type_checking() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kizuna.api import app\n"
        "def f():\n    from ..chain import models\n    from . import x\n")
    nodes = _runtime_imports(tree)
    targets = [t for n in nodes for t in _targets(n, "kizuna.services.audit", False)]
    assert targets == ["typing", "kizuna.chain", "kizuna.services"]
