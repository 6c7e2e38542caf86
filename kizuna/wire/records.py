"""Stored records as the service describes them, and the limits of their transfer."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.errors import InputError
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId

MAX_BULK_RECORD_BYTES = 4 << 20
"""The largest envelope a bulk download carries (it is held in memory once on each side):
FHIR resources are a few KB; a file is downloaded alone, streamed."""

PART_SIZE = 8 << 20
"""The largest part of a multi-part upload (8 MiB): what one request carries, and about what a
client holds."""


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A stored, registered record: owner, blinded scope, where and what (no label, no
    plaintext)."""

    record_id: RecordId
    patient: Address
    scope_id: ScopeId
    cid: Cid
    commitment: Commitment
    size: int
    content_type: str
    created_at: int
    epoch: int = 0
    """The scope key epoch the record is encrypted to (docs/keys.md "Epochs")."""
    batch_root: bytes | None = None
    """The root of the batch the record was registered in (None: registered alone)."""
    leaf_index: int | None = None
    proof: bytes | None = None
    """The record's Merkle proof in its batch, packed (kizuna.batch.pack_proof)."""


class EnvelopeTooLarge(InputError):
    """The uploaded envelope is larger than the configured limit (the API answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__("envelope", f"is larger than the limit of {limit} bytes")
        self.limit = limit
