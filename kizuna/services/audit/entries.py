"""The audit log's entry: one per Kizuna event, read receipt or refused read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eth_utils.address import to_checksum_address

from kizuna.chain.index.events import DecodedEvent
from kizuna.types import Address, RecordId, ScopeId


class EntryKind(StrEnum):
    """What one log entry records (one per Kizuna event; ``READ`` per stored receipt)."""

    RECORD_REGISTERED = "record-registered"
    RECORD_BATCH_REGISTERED = "record-batch-registered"
    """Many records under one Merkle root: ``details`` hold the ``root`` and the ``count``."""
    RECORD_SUPERSEDED = "record-superseded"
    ACCESS_GRANTED = "access-granted"
    ACCESS_REVOKED = "access-revoked"
    ALL_ACCESS_REVOKED = "all-access-revoked"
    EMERGENCY_POLICY_SET = "emergency-policy-set"
    EMERGENCY_OPENED = "emergency-opened"
    EMERGENCY_CLOSED = "emergency-closed"
    ACCESS_REQUESTED = "access-requested"
    REQUEST_CLOSED = "request-closed"
    GUARDIAN_APPOINTED = "guardian-appointed"
    GUARDIAN_REMOVED = "guardian-removed"
    GUARDIAN_ACTED = "guardian-acted"
    CARE_EVENT = "care-event"
    RECEIPT_ROOT_ANCHORED = "receipt-root-anchored"
    PROVIDER_EVENT = "provider-registry"
    ROLE_GRANTED = "role-granted"
    ROLE_REVOKED = "role-revoked"
    ROLE_ADMIN_CHANGED = "role-admin-changed"
    READ = "read"
    REFUSED_READ = "refused-read"
    REFUSED_READS_SUPPRESSED = "refused-reads-suppressed"


_KINDS: Mapping[str, EntryKind] = {
    "RecordRegistered": EntryKind.RECORD_REGISTERED,
    "RecordBatchRegistered": EntryKind.RECORD_BATCH_REGISTERED,
    "RecordSuperseded": EntryKind.RECORD_SUPERSEDED,
    "AccessGranted": EntryKind.ACCESS_GRANTED,
    "AccessGrantedBatch": EntryKind.ACCESS_GRANTED,
    "AccessRevoked": EntryKind.ACCESS_REVOKED,
    "AllAccessRevoked": EntryKind.ALL_ACCESS_REVOKED,
    "EmergencyPolicySet": EntryKind.EMERGENCY_POLICY_SET,
    "EmergencyAccessOpened": EntryKind.EMERGENCY_OPENED,
    "EmergencyAccessClosed": EntryKind.EMERGENCY_CLOSED,
    "AccessRequested": EntryKind.ACCESS_REQUESTED,
    "AccessRequestClosed": EntryKind.REQUEST_CLOSED,
    "GuardianAppointed": EntryKind.GUARDIAN_APPOINTED,
    "GuardianRemoved": EntryKind.GUARDIAN_REMOVED,
    "GuardianActed": EntryKind.GUARDIAN_ACTED,
    "CareEventLogged": EntryKind.CARE_EVENT,
    "ReceiptRootAnchored": EntryKind.RECEIPT_ROOT_ANCHORED,
    # AccessLog's AccessControl: who may anchor, audit, administer (the ProviderRegistry's own
    # role events are provider-registry entries).
    "RoleGranted": EntryKind.ROLE_GRANTED,
    "RoleRevoked": EntryKind.ROLE_REVOKED,
    "RoleAdminChanged": EntryKind.ROLE_ADMIN_CHANGED,
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log. Fields an event does not carry are ``None`` / empty."""

    kind: EntryKind
    event: str
    """The contract event's name (``"read"`` for a receipt)."""
    block_number: int
    log_index: int
    tx_hash: bytes
    """The event's transaction; for a read, the anchoring transaction (empty while pending)."""
    time: int
    """Block timestamp (unix seconds); for a read, when the service served it."""
    patient: Address | None = None
    provider: Address | None = None
    scope_ids: tuple[ScopeId, ...] = ()
    record_id: RecordId | None = None
    flags: frozenset[str] = frozenset()
    """``flagged-for-review`` (emergency authority), ``superseded``, ``pending`` (a read whose
    receipt is not anchored yet)."""
    expires_at: int | None = None
    """A grant's expiry, an emergency access's or a request's end, a guardian's ``until``."""
    actor: Address | None = None
    """Who acted when it is not the patient: a guardian, the closer, the anchoring service."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The remaining event arguments (commitment, reason code, batch count, ...)."""


def _address_or_none(value: Any) -> Address | None:
    if isinstance(value, str) and int(value, 16):
        return to_checksum_address(value)
    return None


def event_entry(e: DecodedEvent, block_time: Callable[[int], int]) -> AuditEntry | None:
    a = dict(e.args)
    if e.contract == "ProviderRegistry":
        kind = EntryKind.PROVIDER_EVENT
    else:
        found = _KINDS.get(e.name)
        if found is None:
            return None
        kind = found
    patient = a.pop("patient", None)
    provider = a.pop("provider", None)
    scopes: tuple[ScopeId, ...] = ()
    if "scopeId" in a:
        scopes = (ScopeId(bytes(a.pop("scopeId"))),)
    elif "scopeIds" in a:
        scopes = tuple(ScopeId(bytes(s)) for s in a.pop("scopeIds"))
    record = a.pop("recordId", None) or a.pop("newRecordId", None)
    flags: set[str] = set()
    if a.pop("flaggedForReview", False):
        flags.add("flagged-for-review")
    expires = None
    for key in ("expiresAt", "until", "openUntil"):
        if key in a:
            expires = int(a.pop(key))
    actor = None
    for key in ("guardian", "closedBy", "actor", "anchoredBy", "sender"):
        if key in a:
            actor = _address_or_none(a.pop(key))
    return AuditEntry(
        kind=kind, event=e.name, block_number=e.block_number, log_index=e.log_index,
        tx_hash=e.tx_hash, time=block_time(e.block_number),
        patient=_address_or_none(patient), provider=_address_or_none(provider), scope_ids=scopes,
        record_id=RecordId(bytes(record)) if record is not None else None,
        flags=frozenset(flags), expires_at=expires, actor=actor,
        details={k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in a.items()},
    )
