"""Provider reads on the wire: what a read answers (a ciphertext's place and its re-encrypted
key), and the refused reads a patient or an auditor sees."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId


@dataclass(frozen=True, slots=True)
class ReadGrant:
    """What the provider gets back: where the ciphertext is and how to open its data key."""

    record_id: RecordId
    patient: Address
    scope_id: ScopeId
    cid: Cid
    content_type: str
    size: int
    capsule: bytes
    cfrags: tuple[bytes, ...]
    delegating_key: bytes
    """The patient's scope public key (the provider verifies the cfrags against it)."""
    verifying_key: bytes
    """The patient's Umbral verifying key (signed the key fragments)."""
    receipt_seq: int
    request_id: bytes
    head_block: int
    served_at: int
    leaf: bytes
    envelope: bytes | None = None
    """The whole envelope when it is small enough to travel with the answer; ``None``: fetch
    it by ``cid``. Either way the provider checks it against the on-chain commitment."""
    commitment: Commitment | None = None
    """The record's commitment as the service has it: for a record registered in a batch, the
    provider takes it only once ``proof`` leads from its leaf to ``batch_root`` and the chain
    says that root is the patient's batch (kizuna.client.chainview.batch_commitment)."""
    batch_root: bytes | None = None
    """The root of the batch the record was registered in (``None``: registered alone)."""
    proof: tuple[bytes, ...] = ()
    """The record's Merkle proof in its batch."""


@dataclass(frozen=True, slots=True)
class RefusedRead:
    """One recorded refusal."""

    seq: int
    provider: Address
    patient: Address
    record_id: RecordId
    reason: str
    refused_at: int
    head_block: int


@dataclass(frozen=True, slots=True)
class SuppressedRefusals:
    """Refusals of one hour counted but not recorded one by one (the rate limit)."""

    provider: Address
    patient: Address | None
    """``None``: past the provider's cap for the hour, counted for the provider only."""
    hour_start: int
    count: int
    last_at: int
    """When the last refusal of the hour was counted."""
    last_block: int
    """The head block the service had seen then."""


@dataclass(frozen=True, slots=True)
class AttemptedReads:
    """What a patient (or an auditor) sees of refused reads."""

    attempts: tuple[RefusedRead, ...]
    suppressed: tuple[SuppressedRefusals, ...]
