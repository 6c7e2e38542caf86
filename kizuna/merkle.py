"""Merkle trees (read receipts, record batches), verifiable on-chain with OpenZeppelin's
``MerkleProof``.

OpenZeppelin's ``MerkleProof.verify(proof, root, leaf)`` folds the proof with a *commutative*
keccak256 (the smaller of the two 32-byte words first), so a proof carries no left/right bits.
This module builds trees with the same rule:

- leaves are 32-byte hashes; callers hash their data twice (``leaf_hash``) so that a leaf can
  never be confused with an inner node (second-preimage safety, as OpenZeppelin advises);
- a level with an odd number of nodes carries its last node up unchanged (no duplication, so
  no two different leaf lists share a root by padding);
- the leaf order is the caller's (receipts in the order they were recorded), which keeps a
  receipt's position stable and lets an auditor rebuild the exact tree from the receipts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kizuna.errors import InputError
from kizuna.hashing import keccak  # re-exported: its callers import it from here

_WORD = 32


def leaf_hash(encoded: bytes) -> bytes:
    """``keccak256(bytes.concat(keccak256(encoded)))``: the leaf for ABI-encoded data."""
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative keccak256 of two 32-byte words."""
    return keccak(a + b) if a < b else keccak(b + a)


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    """The root that ``proof`` and ``leaf`` lead to (``MerkleProof.processProof``)."""
    computed = leaf
    for sibling in proof:
        computed = hash_pair(computed, sibling)
    return computed


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """True when ``leaf`` is under ``root`` by ``proof`` (``MerkleProof.verify``)."""
    return process_proof(proof, leaf) == root


@dataclass(frozen=True)
class MerkleTree:
    """A tree over 32-byte leaves. ``levels[0]`` are the leaves, ``levels[-1]`` is ``[root]``."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise InputError("leaves", "a Merkle tree needs at least one leaf")
        for position, leaf in enumerate(leaves):
            if len(leaf) != _WORD:
                raise InputError(f"leaves[{position}]", f"must be 32 bytes, got {len(leaf)}")
        level: tuple[bytes, ...] = tuple(leaves)
        levels = [level]
        while len(level) > 1:
            parents = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                parents.append(level[-1])
            level = tuple(parents)
            levels.append(level)
        return cls(levels=tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def proof(self, index: int) -> list[bytes]:
        """The sibling hashes from leaf ``index`` up to the root."""
        if not 0 <= index < self.size:
            raise InputError("index", f"no leaf {index} in a tree of {self.size}")
        proof: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof


__all__ = ["MerkleTree", "hash_pair", "keccak", "leaf_hash", "process_proof", "verify"]
