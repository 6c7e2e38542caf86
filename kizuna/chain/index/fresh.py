"""Reads that are never older than the chain head the index has seen.

The index is a cache; the chain is the source of truth. :class:`FreshIndex` is the API the
access check uses: every read first brings the index up to the node's current head (one cheap
``eth_getBlockByNumber("latest")`` when nothing is new), then answers *at that head*:

* :meth:`FreshIndex.decide` asks the ledger's ``hasAccess``/``accessExpiry`` views at exactly the
  head block the index reached, and returns an :class:`AccessDecision` naming that block;
* the index queries (:meth:`FreshIndex.grantees`, ...) see every event up to that head, so a
  revoke mined before the read is reflected in it;
* :meth:`FreshIndex.decide_at` refuses (``StaleRead``) a block older than the index's head;
* :meth:`FreshIndex.standing` is an account's provider activity and AccessControl roles at the
  head (what the API checks at every role-gated request: a suspension or a revoked role mined
  before the request is seen by it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kizuna.chain.index.store import EventIndex, Standing
from kizuna.chain.models import (
    AccessRequest,
    BlockRef,
    CareEvent,
    CareEventKind,
    EmergencyAccess,
    Grant,
    ReceiptBatch,
    Record,
)
from kizuna.errors import ConfigError
from kizuna.types import Address, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """The chain's answer to "may ``provider`` read ``scope_id`` of ``patient``?" at ``block``."""

    patient: Address
    provider: Address
    scope_id: ScopeId
    allowed: bool
    expires_at: int
    """Until when the access lasts (unix seconds, exclusive); 0 when denied."""
    block: BlockRef
    """The block the decision was made at: the index's head at the time of the read."""


class FreshIndex:
    """An :class:`EventIndex` plus the ledger, read at the head: the access check's API."""

    def __init__(self, chain: Chain, index: EventIndex) -> None:
        if index.lag != 0:
            # With a lag the index head trails the chain head the service has just seen, and
            # a decision there would be older than that head.
            raise ConfigError("FreshIndex needs an index without lag (lag=0)")
        self.chain = chain
        self.index = index

    def head(self) -> BlockRef:
        """Sync the index to the node's head and return it."""
        return self.index.sync()

    def decide(self, patient: Address, provider: Address, scope_id: ScopeId) -> AccessDecision:
        """Sync, then ask the ledger at the new head (never an older block)."""
        return self._decide(patient, provider, scope_id, self.index.sync())

    def decide_at(self, patient: Address, provider: Address, scope_id: ScopeId,
                  block: BlockRef) -> AccessDecision:
        """Decide at a given block; ``StaleRead`` if the index has seen a later head already."""
        self.index.require_fresh(block.number)
        return self._decide(patient, provider, scope_id, block)

    def _decide(self, patient: Address, provider: Address, scope_id: ScopeId,
                block: BlockRef) -> AccessDecision:
        ledger = self.chain.ledger
        expires_at = ledger.access_expiry(patient, provider, scope_id, block=block.number)
        allowed = ledger.has_access(patient, provider, scope_id, block=block.number)
        return AccessDecision(patient=patient, provider=provider, scope_id=scope_id,
                              allowed=allowed, expires_at=expires_at if allowed else 0,
                              block=block)

    # -- index reads at the head -------------------------------------------------------------

    def grantees(self, provider: Address) -> list[Address]:
        """Patients who granted ``provider`` a live scope, as of the current head."""
        head = self.index.sync()
        return self.index.grantees(provider, at=head)

    def grants_of(self, patient: Address) -> list[Grant]:
        head = self.index.sync()
        return self.index.grants_of(patient, at=head)

    def grants_to(self, provider: Address) -> list[Grant]:
        head = self.index.sync()
        return self.index.grants_to(provider, at=head)

    def scope_epoch(self, patient: Address, scope_id: ScopeId) -> int:
        """The key epoch of (patient, scope) at the current head (docs/keys.md "Epochs")."""
        self.index.sync()
        return self.index.scope_epoch(patient, scope_id)

    def records_of(self, patient: Address) -> list[Record]:
        self.index.sync()
        return self.index.records_of(patient)

    def registration(self, record_id: RecordId) -> Record | None:
        """A record's registration by id (patient, commitment, scope, block): what never
        changes once registered, so the index is synced only when it has not seen the record
        yet (no node round trip for a known one). Its ``superseded_by`` may be behind the
        head: ask :meth:`records_of` for that."""
        found = self.index.record(record_id)
        if found is None:
            self.index.sync()
            found = self.index.record(record_id)
        return found

    def manifest_arrived(self, root: bytes) -> bool:
        """:meth:`EventIndex.manifest_arrived`: the service stored batch ``root``'s manifest
        (no sync: a batch the index has not seen yet is projected by the sync that sees it)."""
        return self.index.manifest_arrived(root)

    def all_records_of(self, patient: Address) -> list[Record]:
        """Every record of ``patient`` as of the head, superseded versions too."""
        self.index.sync()
        return self.index.records_of(patient, include_superseded=True)

    def care_events(self, *, patient: Address | None = None, provider: Address | None = None,
                    kind: CareEventKind | None = None, limit: int = 1000) -> list[CareEvent]:
        self.index.sync()
        return self.index.care_events(patient=patient, provider=provider, kind=kind,
                                      limit=limit)

    def emergency_accesses(self, *, patient: Address | None = None,
                           provider: Address | None = None,
                           awaiting_review: bool | None = None) -> list[EmergencyAccess]:
        self.index.sync()
        return self.index.emergency_accesses(patient=patient, provider=provider,
                                             awaiting_review=awaiting_review)

    def access_requests(self, *, patient: Address | None = None,
                        provider: Address | None = None) -> list[AccessRequest]:
        head = self.index.sync()
        return self.index.access_requests(patient=patient, provider=provider, at=head)

    def receipt_batches(self) -> list[ReceiptBatch]:
        self.index.sync()
        return self.index.receipt_batches()

    def standing(self, account: Address) -> Standing:
        """Whether ``account`` is an active provider and which roles it holds, at the head
        (the block the answer is at is never older than the node's head when this began)."""
        self.index.sync()
        return self.index.standing(account)

    def provider_active(self, provider: Address) -> bool:
        """Whether ``provider`` is registered and not suspended, at the head."""
        return self.standing(provider).provider_active

    def has_role(self, contract: str, role: bytes, account: Address) -> bool:
        """Whether ``account`` holds AccessControl ``role`` in ``contract``, at the head."""
        return self.standing(account).has_role(contract, role)


__all__ = ["AccessDecision", "FreshIndex"]
