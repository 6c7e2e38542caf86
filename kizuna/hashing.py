"""keccak256, the fast way: one home for the choice of implementation.

A top-level module (its own node in ``tests/test_package_graph.py``) so that both
:mod:`kizuna.signatures` and :mod:`kizuna.merkle` can use it without an upward arrow.
"""

from __future__ import annotations

try:  # safe-pysha3's C keccak: ~1 µs per hash here, against ~5 µs through eth_hash's backend
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - the dependency is declared; keep working without it
    from eth_hash.auto import keccak as _eth_keccak

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data`` (eth_hash)."""
        return _eth_keccak(data)
else:

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data`` (safe-pysha3)."""
        return bytes(_keccak_256(data).digest())


__all__ = ["keccak"]
