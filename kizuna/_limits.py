"""The interpreter's recursion limit, put back to a safe value once the libraries that raise it
have been imported.

py_ecc and py-evm (pulled in by eth-tester, a development dependency that web3's tester provider
and :mod:`kizuna.chain.transactions` import) call ``sys.setrecursionlimit(100_000)`` when they
are first imported. The limit is process-wide and also guards C code that recurses on the C
stack — the JSON decoder above all: with it raised, a request body of ~100,000 nested ``[`` made
the decoder overflow the C stack and the whole service died with a segmentation fault. Python's
default (1000) turns such input into a ``RecursionError`` instead.

Both libraries set the limit once, when their top-level package is first executed. Importing
them eagerly to put the limit back costs every process half a second (py-evm is large), so a
meta-path finder wraps their loaders instead: whenever ``eth`` or ``py_ecc`` is first imported,
by anything, the limit is put back the moment its package has executed. A library imported
before Kizuna was has its raise undone at once. Nothing in Kizuna needs deep recursion (FHIR
depth is bounded far below, ``kizuna.storage.fhir.validate.MAX_DEPTH``), and the EVM code of
eth-tester runs Kizuna's contracts, whose calls nest a few levels, well within it. Request
bodies are also bounded in depth before they are decoded (:mod:`kizuna.api.limits`).
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

SAFE_RECURSION_LIMIT = 1000
"""CPython's default: deep enough for Kizuna, shallow enough for the C stack of any thread."""

LIMIT_RAISERS = ("py_ecc", "eth")
"""Top-level packages that raise the recursion limit when imported (py_ecc, py-evm)."""


def _lower() -> None:
    if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


class _RestoringLoader(importlib.abc.Loader):
    """The real loader of a limit raiser; the limit is lowered once the package executed.
    Everything else (resources, ``is_package``...) is the real loader's."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            _lower()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _LimitGuard(importlib.abc.MetaPathFinder):
    """Finds the raisers with the other finders and hands back their spec, loader wrapped."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in LIMIT_RAISERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RestoringLoader(spec.loader)
                return spec
        return None


_GUARD = _LimitGuard()


def restore_recursion_limit() -> None:
    """Put the limit back now if a raiser (or anything) raised it already, and guard the
    raisers not imported yet so that importing them later puts it back too."""
    if _GUARD not in sys.meta_path:
        sys.meta_path.insert(0, _GUARD)
    _lower()


__all__ = ["LIMIT_RAISERS", "SAFE_RECURSION_LIMIT", "restore_recursion_limit"]
