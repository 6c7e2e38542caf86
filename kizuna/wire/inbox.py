"""What a participant's inbox lists, and who read a patient's records."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One thing for a participant to look at."""

    kind: str
    """``access-request``, a care kind (``report``, ``prescription``, ...), for a provider
    ``request-granted`` / ``request-closed`` / ``request-open``, or for both a data request's
    ``data-request-<status>`` (open, acknowledged, fulfilled-in-part, fulfilled, declined,
    overdue)."""
    patient: Address
    provider: Address | None
    actor: Address
    ref: Commitment
    cid: Cid | None
    """Where the encrypted message is (``None``: the service does not hold it)."""
    content_type: str | None
    block_number: int
    flagged_for_review: bool = False


@dataclass(frozen=True, slots=True)
class ReadEntry:
    """One read of a patient's record: who, which record (scope id only), when."""

    provider: Address
    record_id: RecordId
    scope_id: ScopeId
    served_at: int
    head_block: int
    request_id: bytes
    anchored: bool
