"""Frozen, typed results of the chain layer: never raw tuples or web3 ``AttributeDict``s.

Transport-level models (:class:`ContractCall`, :class:`TxReceipt`, :class:`LogEntry`,
:class:`BlockRef`) come first, then one model per thing the contracts keep or announce
(:class:`Grant`, :class:`Record`, :class:`CareEvent`, :class:`Provider`, :class:`ReceiptBatch`,
...). Ids are the NewTypes of :mod:`kizuna.types`; times are unix seconds (block time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from kizuna.types import Address, Commitment, RecordId, ScopeId

# --- transport --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractCall:
    """An unsigned call of one contract function: where, what (ABI-encoded), and how much ETH.

    Agents build these; a signer-backed sender sends them, an external wallet receives them as
    ``eth_sendTransaction`` params, a relayer simulates them.
    """

    to: Address
    data: bytes
    value: int = 0
    function: str = ""
    """The function's name, for messages (e.g. ``grant``)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One raw event log as the node reported it."""

    address: Address
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """The receipt of a mined transaction."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    sender: Address
    to: Address | None
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    logs: tuple[LogEntry, ...]

    @property
    def succeeded(self) -> bool:
        return self.status == 1


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block the caller has seen: number, hash and timestamp (unix seconds)."""

    number: int
    hash: bytes
    timestamp: int


# --- consent ledger ---------------------------------------------------------------------------


class CareEventKind(IntEnum):
    """Kinds of care events (``logCareEvent``); values mirror ``CareEventKind`` in Ids.sol."""

    ADVICE_REQUESTED = 0
    ACCESS_REQUESTED = 1
    BOOKING_REQUESTED = 2
    BOOKING_CONFIRMED = 3
    BOOKING_CANCELLED = 4
    VISIT_REPORTED = 5
    PRESCRIPTION_ISSUED = 6
    DATA_SENT = 7
    DATA_REQUESTED = 8
    DATA_REQUEST_ACKNOWLEDGED = 9
    DATA_REQUEST_FULFILLED_IN_PART = 10
    DATA_REQUEST_FULFILLED = 11
    DATA_REQUEST_DECLINED = 12


@dataclass(frozen=True, slots=True)
class Grant:
    """A patient's grant of one scope to a provider.

    ``live`` is the chain's (or the index's) verdict at the block it was read: not expired and
    made after the last ``revokeAll`` for this (patient, provider).
    """

    patient: Address
    provider: Address
    scope_id: ScopeId
    expires_at: int
    """Unix seconds, exclusive: the grant is live while ``block time < expires_at``."""
    granted_block: int
    live: bool


@dataclass(frozen=True, slots=True)
class RecordStatus:
    """What the ledger stores about a record (``recordOf``)."""

    record_id: RecordId
    patient: Address
    registered_at: int
    superseded: bool


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """What the ledger stores about a batch of records (``batchOf``): its owner, when it was
    registered (unix seconds) and how many records its Merkle root commits to."""

    patient: Address
    registered_at: int
    count: int


@dataclass(frozen=True, slots=True)
class BatchRecordStatus:
    """``batchRecordOf(root, recordId)``: the batch, and whether its owner superseded the record.
    It does not say the record is in the batch: a Merkle proof against the root does."""

    patient: Address
    registered_at: int
    count: int
    superseded: bool


@dataclass(frozen=True, slots=True)
class Record:
    """A registered record as its events announced it (from the event index)."""

    record_id: RecordId
    patient: Address
    commitment: Commitment
    scope_id: ScopeId
    block_number: int
    tx_hash: bytes
    supersedes: RecordId | None = None
    superseded_by: RecordId | None = None
    batch_root: bytes | None = None
    """The root of the record batch it was registered in (``RecordBatchRegistered``, the block
    and transaction above are that event's); ``None`` for a record registered alone."""


@dataclass(frozen=True, slots=True)
class CareEvent:
    """One logged care event (request, booking, report, ...): a pointer to an encrypted payload."""

    patient: Address
    provider: Address | None
    kind: CareEventKind
    actor: Address
    ref: Commitment
    flagged_for_review: bool
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class Guardian:
    """A guardian appointed by a patient, acting for them until ``until`` (unix seconds)."""

    patient: Address
    guardian: Address
    until: int


@dataclass(frozen=True, slots=True)
class EmergencyPolicy:
    """A patient's break-glass policy: allowed or not, for at most ``max_duration`` seconds."""

    allowed: bool
    max_duration: int


@dataclass(frozen=True, slots=True)
class EmergencyAccess:
    """A break-glass access opened by a verified provider; always flagged for review."""

    patient: Address
    provider: Address
    until: int
    reason_code: int
    block_number: int
    tx_hash: bytes
    log_index: int
    closed_by: Address | None = None
    closed_block: int | None = None
    reviewed: bool = False
    # Who marked it reviewed and when (Unix seconds): the service's record, not the chain's.
    reviewed_by: Address | None = None
    reviewed_at: int | None = None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A verified provider's open request for access to a patient's data."""

    patient: Address
    provider: Address
    open_until: int
    ref: Commitment
    block_number: int


# --- provider registry ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider's registry entry (``registered_at`` from the registry's view, or
    ``registered_block`` from the event index; the other is 0)."""

    address: Address
    umbral_public_key: bytes
    credential_commitment: bytes
    active: bool
    registered_at: int = 0
    registered_block: int = 0


# --- access log -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptBatch:
    """An anchored batch of read receipts: its Merkle root, size and time range."""

    batch_index: int
    root: bytes
    count: int
    from_time: int
    to_time: int
    anchored_by: Address | None = None
    block_number: int = 0
    tx_hash: bytes = b""


__all__ = [
    "AccessRequest",
    "BatchRecordStatus",
    "BatchStatus",
    "BlockRef",
    "CareEvent",
    "CareEventKind",
    "ContractCall",
    "EmergencyAccess",
    "EmergencyPolicy",
    "Grant",
    "Guardian",
    "LogEntry",
    "Provider",
    "ReceiptBatch",
    "Record",
    "RecordStatus",
    "TxReceipt",
]
