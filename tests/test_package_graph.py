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


LEAF_PACKAGES = ("kizuna.wire",)
"""Packages whose modules are nodes of their own: ``kizuna.wire`` is a set of leaf modules, each
at its own layer (``wire.records`` needs only ``kizuna.types``, so ``db`` and ``access`` use it;
``wire.care`` needs ``crypto``'s keys). Taken as one node they would make a false cycle."""


def _node(module: str) -> str:
    """``kizuna.chain.index.store`` → ``kizuna.chain``; ``kizuna.types`` → itself;
    ``kizuna.wire.records`` → itself (:data:`LEAF_PACKAGES`)."""
    parts = module.split(".")
    if ".".join(parts[:2]) in LEAF_PACKAGES:
        return ".".join(parts[:3])
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


# --- the client side does not load the service ---------------------------------------------------

CLIENT_SIDE = ("kizuna.client", "kizuna.wire")
SERVICE_SIDE = ("kizuna.services", "kizuna.db", "kizuna.api")
LOCAL_MODE = "kizuna.client.local"
"""``LocalService``: the service's use cases in-process. The one client module that imports the
service at module level; it is itself imported only where a local service is opened."""
NOT_YET: dict[str, str] = {}
"""Known exceptions, each with what is left to do; an entry that no longer applies fails."""
WIRE_NEVER = ("sqlalchemy", "web3", "fastapi", "kizuna.chain.index", "kizuna.chain.connection",
              *SERVICE_SIDE)
"""What no module of kizuna.wire imports, at any level."""


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: its top level (and module-level ``if`` /
    ``try`` blocks), not function bodies, not ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody,
                              *[h.body for h in node.handlers]):
                    visit(block)

    visit(tree.body)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def client_side_service_imports() -> dict[str, list[str]]:
    """Client-side module → the service-side imports it makes at module level (``path:line``)."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if not _within(module, CLIENT_SIDE) or module == LOCAL_MODE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _module_level_imports(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if _within(target, SERVICE_SIDE):
                    found[module].append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                         f"imports {target}")
    return dict(found)


def test_the_client_side_imports_the_service_only_in_its_local_mode() -> None:
    # A participant's command talks to the API: importing kizuna.services, kizuna.db or
    # kizuna.api drags SQLAlchemy, web3 and FastAPI into every CLI start (issue 11, issue 12's
    # cli_get_s). Only kizuna.client.local (LocalService) may; function-level imports are lazy.
    found = client_side_service_imports()
    unexpected = {m: lines for m, lines in found.items() if m not in NOT_YET}
    assert not unexpected, "\n".join(line for lines in unexpected.values() for line in lines)
    stale = sorted(set(NOT_YET) - set(found))
    assert not stale, f"remove from NOT_YET (fixed): {stale}"


def test_the_wire_models_import_nothing_of_the_service_or_its_stack() -> None:
    bad = []
    for path in sorted((PACKAGE / "wire").rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if _within(target, WIRE_NEVER):
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {target}")
    assert not bad, bad


def test_the_client_side_rule_sees_module_level_imports_only() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from kizuna.services import care\n"
        "if TYPE_CHECKING:\n    from kizuna.db import Database\n"
        "try:\n    import kizuna.api.app\nexcept ImportError:\n    pass\n"
        "def local():\n    from kizuna.services.context import open_context\n")
    targets = [t for n in _module_level_imports(tree)
               for t in _targets(n, "kizuna.client.x", False)]
    assert [t for t in targets if _within(t, SERVICE_SIDE)] == ["kizuna.services",
                                                                  "kizuna.api.app"]
