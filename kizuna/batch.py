"""A batch of records registered under one Merkle root (docs/contracts.md "Batches").

A patient registers many records with one transaction: the chain stores the root of a Merkle
tree over the batch's leaves, the count and the patient; the leaves themselves live off-chain,
in the batch's *manifest* (the same facts a ``RecordRegistered`` event publishes for a record
registered alone: its id, its blinded scope id, the SHA-256 commitment of its envelope).

- **Leaf.** ``keccak256(keccak256(abi.encode(recordId, scopeId, commitment)))`` (the three
  words concatenated: ``abi.encode`` of ``bytes32`` values is their concatenation), built and
  folded with OpenZeppelin's ``MerkleProof`` rules (:mod:`kizuna.merkle`): a proof
  carries no left/right bits, an odd node is carried up unchanged. The double hash keeps a leaf
  from ever being read as an inner node.
- **Manifest.** ``b"KZBATCH\\x01"``, the count (4 bytes, big-endian), then each leaf's three
  words (96 bytes), in the batch's order. The root commits to every byte of it, so any copy
  whose leaves rebuild to the on-chain root is *the* manifest: where it is fetched from does not
  matter for trust, only for availability.
- A record id appears at most once in a batch, and a batch holds 1..``MAX_BATCH_RECORDS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kizuna.errors import InputError
from kizuna.merkle import MerkleTree, leaf_hash, process_proof
from kizuna.types import Commitment, RecordId, ScopeId

MANIFEST_MAGIC = b"KZBATCH\x01"
_COUNT_SIZE = 4
_LEAF_SIZE = 96
_HEADER_SIZE = len(MANIFEST_MAGIC) + _COUNT_SIZE

MAX_BATCH_RECORDS = 100_000
"""Records in one batch (a manifest of 9.6 MB; a proof of 17 words). A larger import is
several batches."""
MAX_MANIFEST_BYTES = _HEADER_SIZE + MAX_BATCH_RECORDS * _LEAF_SIZE
"""The largest manifest: a reader may stop reading a source that sends more."""


@dataclass(frozen=True, slots=True)
class BatchLeaf:
    """One record of a batch: what the chain would have said of it, registered alone."""

    record_id: RecordId
    scope_id: ScopeId
    commitment: Commitment

    def __post_init__(self) -> None:
        for name in ("record_id", "scope_id", "commitment"):
            value = getattr(self, name)
            if not isinstance(value, bytes | bytearray) or len(value) != 32:
                raise InputError(name, "must be 32 bytes")
        if not any(self.record_id):
            raise InputError("record_id", "must not be zero")

    def encoded(self) -> bytes:
        """``abi.encode(recordId, scopeId, commitment)``."""
        return bytes(self.record_id) + bytes(self.scope_id) + bytes(self.commitment)

    @property
    def hash(self) -> bytes:
        """The Merkle leaf (double keccak of the encoding)."""
        return leaf_hash(self.encoded())


def proof_leads_to(root: bytes, leaf: BatchLeaf, proof: Sequence[bytes]) -> bool:
    """True when ``leaf`` is in the batch of ``root`` by ``proof`` (``MerkleProof.verify``)."""
    return process_proof(proof, leaf.hash) == bytes(root)


def pack_proof(proof: Sequence[bytes]) -> bytes:
    """A proof as stored: its sibling words concatenated."""
    return b"".join(bytes(p) for p in proof)


def unpack_proof(packed: bytes) -> list[bytes]:
    """The sibling words of a packed proof (``InputError`` when it is not whole words)."""
    if len(packed) % 32:
        raise InputError("proof", "must be a whole number of 32-byte words")
    return [bytes(packed[i:i + 32]) for i in range(0, len(packed), 32)]


@dataclass(frozen=True)
class BatchManifest:
    """A batch's leaves in order, their tree and root."""

    leaves: tuple[BatchLeaf, ...]
    tree: MerkleTree = field(repr=False, compare=False)
    _positions: dict[bytes, int] = field(repr=False, compare=False)

    @classmethod
    def of(cls, leaves: Iterable[BatchLeaf]) -> BatchManifest:
        """The manifest of ``leaves`` (``InputError`` naming the leaf for an empty or too large
        batch or a record id given twice)."""
        ordered = tuple(leaves)
        if not ordered:
            raise InputError("leaves", "a batch needs at least one record")
        if len(ordered) > MAX_BATCH_RECORDS:
            raise InputError("leaves", f"a batch holds at most {MAX_BATCH_RECORDS} records, "
                                       f"got {len(ordered)}")
        positions: dict[bytes, int] = {}
        for index, leaf in enumerate(ordered):
            key = bytes(leaf.record_id)
            if key in positions:
                raise InputError(f"leaves[{index}].record_id",
                                 f"0x{key.hex()} is in the batch already "
                                 f"(leaves[{positions[key]}])")
            positions[key] = index
        return cls(leaves=ordered, tree=MerkleTree.build([leaf.hash for leaf in ordered]),
                   _positions=positions)

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def count(self) -> int:
        return len(self.leaves)

    def index_of(self, record_id: bytes) -> int:
        """The position of ``record_id`` (``InputError`` when it is not in the batch)."""
        try:
            return self._positions[bytes(record_id)]
        except KeyError:
            raise InputError("record_id", f"0x{bytes(record_id).hex()} is not in the batch "
                             f"0x{self.root.hex()}") from None

    def proof(self, index: int) -> list[bytes]:
        """The proof of the leaf at ``index``."""
        return self.tree.proof(index)

    def encode(self) -> bytes:
        """The manifest's bytes (see the module docstring)."""
        return (MANIFEST_MAGIC + self.count.to_bytes(_COUNT_SIZE, "big")
                + b"".join(leaf.encoded() for leaf in self.leaves))

    @classmethod
    def decode(cls, data: bytes, *, root: bytes | None = None) -> BatchManifest:
        """A manifest from its bytes; with ``root``, it must be that batch's (``InputError``
        naming ``manifest`` otherwise, or for any malformed byte)."""
        data = bytes(data)
        if not data.startswith(MANIFEST_MAGIC):
            raise InputError("manifest", "is not a Kizuna batch manifest (bad magic)")
        if len(data) < _HEADER_SIZE:
            raise InputError("manifest", "is truncated")
        count = int.from_bytes(data[len(MANIFEST_MAGIC):_HEADER_SIZE], "big")
        if not 1 <= count <= MAX_BATCH_RECORDS:
            raise InputError("manifest", f"declares {count} records (1 to "
                                         f"{MAX_BATCH_RECORDS} allowed)")
        if len(data) != _HEADER_SIZE + count * _LEAF_SIZE:
            raise InputError("manifest", f"declares {count} records but holds "
                             f"{len(data) - _HEADER_SIZE} bytes of leaves, not "
                             f"{count * _LEAF_SIZE}")
        leaves = []
        for i in range(count):
            at = _HEADER_SIZE + i * _LEAF_SIZE
            leaves.append(BatchLeaf(RecordId(data[at:at + 32]), ScopeId(data[at + 32:at + 64]),
                                    Commitment(data[at + 64:at + 96])))
        manifest = cls.of(leaves)
        if root is not None and manifest.root != bytes(root):
            raise InputError("manifest", f"its leaves lead to root 0x{manifest.root.hex()}, "
                                         f"not 0x{bytes(root).hex()}")
        return manifest


__all__ = ["MANIFEST_MAGIC", "MAX_BATCH_RECORDS", "MAX_MANIFEST_BYTES", "BatchLeaf",
           "BatchManifest", "pack_proof", "proof_leads_to", "unpack_proof"]
