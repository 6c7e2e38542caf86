"""The interpreter's recursion limit, put back to a safe value once the libraries that raise it
have been imported.

py_ecc and py-evm (pulled in by eth-tester, a development dependency that web3's tester provider
and :mod:`kizuna.chain.transactions` import) call ``sys.setrecursionlimit(100_000)`` when they
are first imported. The limit is process-wide and also guards C code that recurses on the C
stack — the JSON decoder above all: with it raised, a request body of ~100,000 nested ``[`` made
the decoder overflow the C stack and the whole service died with a segmentation fault. Python's
default (1000) turns such input into a ``RecursionError`` instead.

Both libraries set the limit only at their first import, so importing them here, before anything
else in Kizuna can, and setting the limit afterwards makes the safe limit final: a later
``import`` finds them in ``sys.modules`` and changes nothing. Nothing in Kizuna needs deep
recursion (FHIR depth is bounded far below, ``kizuna.storage.fhir.validate.MAX_DEPTH``), and the
EVM code of eth-tester runs Kizuna's contracts, whose calls nest a few levels, well within it.
Request bodies are also bounded in depth before they are decoded (:mod:`kizuna.api.limits`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

SAFE_RECURSION_LIMIT = 1000
"""CPython's default: deep enough for Kizuna, shallow enough for the C stack of any thread."""

LIMIT_RAISERS = ("py_ecc", "eth")
"""Top-level packages that raise the recursion limit when imported (py_ecc, py-evm)."""


def restore_recursion_limit() -> None:
    """Import the packages of :data:`LIMIT_RAISERS` that are installed, then lower the limit
    to :data:`SAFE_RECURSION_LIMIT` if they (or anything) raised it above."""
    for name in LIMIT_RAISERS:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


__all__ = ["LIMIT_RAISERS", "SAFE_RECURSION_LIMIT", "restore_recursion_limit"]
