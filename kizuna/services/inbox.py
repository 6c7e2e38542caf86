"""Each role's inbox, from the chain (the event index at the head) plus where the messages are.

* **patient** — open access requests, and the care events providers (or guardians) logged for
  them: reports, prescriptions, booking confirmations and cancellations, data sent. Each item
  carries the CID of its encrypted message when the service holds it (``care_messages``).
* **provider** — the answers to its access requests (granted / declined or closed / still
  open) and the booking requests, cancellations and advice requests patients sent it.
* **both** — each data request between them (:mod:`kizuna.services.data_requests`) with its
  status, overdue by chain time.
* **auditor** — emergency (break-glass) accesses awaiting review; :func:`mark_reviewed`.
* **who read what** — the patient's read receipts (``ReceiptStore``): provider, record, when,
  and at which chain head the access was checked.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from kizuna.chain.models import CareEventKind, EmergencyAccess
from kizuna.errors import NotFoundError
from kizuna.receipts.store import StoredReceipt
from kizuna.services import care, data_requests
from kizuna.services.onchain import checked_address
from kizuna.types import Address, Commitment
from kizuna.wire.care import ACCESS_REQUEST, KIND_NAMES, CareMessage
from kizuna.wire.data_requests import DataRequest
from kizuna.wire.inbox import InboxItem, ReadEntry

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext


_TO_PATIENT = {CareEventKind.BOOKING_CONFIRMED, CareEventKind.BOOKING_CANCELLED,
               CareEventKind.VISIT_REPORTED, CareEventKind.PRESCRIPTION_ISSUED,
               CareEventKind.DATA_SENT}
_TO_PROVIDER = {CareEventKind.BOOKING_REQUESTED, CareEventKind.BOOKING_CANCELLED,
                CareEventKind.ADVICE_REQUESTED, CareEventKind.DATA_SENT}


def patient_inbox(ctx: ServiceContext, *, patient: str, limit: int = 500) -> list[InboxItem]:
    """Requests and care events addressed to ``patient``, newest first."""
    owner = checked_address("patient", patient)
    fresh = ctx.index
    head = fresh.head()
    requests = fresh.index.access_requests(patient=owner, at=head)
    events = [e for e in fresh.index.care_events(patient=owner, limit=limit)
              if e.actor != owner and e.kind in _TO_PATIENT]
    messages = care.messages_by_refs(ctx, [r.ref for r in requests] + [e.ref for e in events])
    items = [_item(ACCESS_REQUEST, owner, r.provider, r.provider, r.ref, r.block_number,
                   messages) for r in requests]
    items += [_item(KIND_NAMES[e.kind], owner, e.provider, e.actor, e.ref, e.block_number,
                    messages, flagged=e.flagged_for_review) for e in events]
    items += _data_requests(data_requests.requests_of_patient(ctx, owner))
    return sorted(items, key=lambda i: i.block_number, reverse=True)


def _data_requests(found: list[DataRequest]) -> list[InboxItem]:
    """One item per data request, its kind ``data-request-<status>`` (overdue by chain time),
    at the block of its latest step; ``ref`` is the request's id."""
    items = []
    for r in found:
        last = r.answers[-1] if r.answers else None
        items.append(InboxItem(kind=f"data-request-{r.status}", patient=r.patient,
                               provider=r.provider,
                               actor=r.provider if last is not None else r.patient,
                               ref=r.request_id, cid=None, content_type=None,
                               block_number=last.block_number if last else r.block_number))
    return items


def provider_inbox(ctx: ServiceContext, *, provider: str, limit: int = 500) -> list[InboxItem]:
    """Answers to ``provider``'s access requests, and what patients sent it, newest first."""
    me = checked_address("provider", provider)
    fresh = ctx.index
    head = fresh.head()
    open_now = {(r.patient, bytes(r.ref)) for r in fresh.index.access_requests(provider=me,
                                                                               at=head)}
    granted: dict[Address, int] = {}
    for grant in fresh.index.grants_to(me, at=head):  # the patient's latest live grant
        granted[grant.patient] = max(granted.get(grant.patient, -1), grant.granted_block)
    items: list[InboxItem] = []
    for sent in care.messages_sent_by(ctx, me, kind=ACCESS_REQUEST):
        if granted.get(sent.patient, -1) >= sent.block_number:
            state = "request-granted"  # a grant made after the request answers it
        elif (sent.patient, bytes(sent.ref)) in open_now:
            state = "request-open"
        else:
            state = "request-closed"
        items.append(InboxItem(kind=state, patient=sent.patient, provider=me, actor=me,
                               ref=sent.ref, cid=sent.cid, content_type=sent.content_type,
                               block_number=sent.block_number))
    events = [e for e in fresh.index.care_events(provider=me, limit=limit)
              if e.actor != me and e.kind in _TO_PROVIDER]
    messages = care.messages_by_refs(ctx, [e.ref for e in events])
    items += [_item(KIND_NAMES[e.kind], e.patient, me, e.actor, e.ref, e.block_number,
                    messages) for e in events]
    items += _data_requests(data_requests.requests_to_provider(ctx, me))
    return sorted(items, key=lambda i: i.block_number, reverse=True)


def _item(kind: str, patient: Address, provider: Address | None, actor: Address,
          ref: Commitment, block: int, messages: dict[bytes, CareMessage], *,
          flagged: bool = False) -> InboxItem:
    held = messages.get(bytes(ref))
    return InboxItem(kind=kind, patient=patient, provider=provider, actor=actor, ref=ref,
                     cid=held.cid if held else None,
                     content_type=held.content_type if held else None, block_number=block,
                     flagged_for_review=flagged)


# --- auditor ----------------------------------------------------------------------------------


def auditor_inbox(ctx: ServiceContext, *, patient: str | None = None) -> list[EmergencyAccess]:
    """Emergency accesses not reviewed yet (optionally of one patient), newest first."""
    fresh = ctx.index
    fresh.head()
    return fresh.index.emergency_accesses(
        patient=checked_address("patient", patient) if patient is not None else None,
        awaiting_review=True)


def provider_emergencies(ctx: ServiceContext, *, provider: str) -> list[EmergencyAccess]:
    """Every emergency access ``provider`` opened, newest first, each with its review state
    (who marked it reviewed and when, or not yet): what the provider's page shows."""
    fresh = ctx.index
    fresh.head()
    return fresh.index.emergency_accesses(provider=checked_address("provider", provider),
                                          awaiting_review=None)


def mark_reviewed(ctx: ServiceContext, *, reviewer: str, tx_hash: bytes,
                  log_index: int) -> EmergencyAccess:
    """Mark one emergency access (named by its event) reviewed by ``reviewer``; the access
    is returned as reviewed now."""
    who = checked_address("reviewer", reviewer)
    fresh = ctx.index
    fresh.head()
    for access in fresh.index.emergency_accesses(awaiting_review=None):
        if access.tx_hash == bytes(tx_hash) and access.log_index == log_index:
            at = int(time.time())
            fresh.index.mark_reviewed(access, reviewer=who, at=at)
            return replace(access, reviewed=True, reviewed_by=who, reviewed_at=at)
    raise NotFoundError(f"no emergency access opened in 0x{bytes(tx_hash).hex()}#{log_index}")


# --- who read what ----------------------------------------------------------------------------


def reads_of(ctx: ServiceContext, *, patient: str,
             since: int | None = None, limit: int = 1000) -> list[ReadEntry]:
    """Who read which of the patient's records and when, oldest first (from the receipts)."""
    owner = checked_address("patient", patient)
    found: list[StoredReceipt] = ctx.receipts.select(patient=owner, from_time=since, limit=limit)
    return [ReadEntry(provider=r.request.provider, record_id=r.request.record_id,
                      scope_id=r.scope_id, served_at=r.served_at, head_block=r.head_block,
                      request_id=r.request.request_id, anchored=r.batch_root is not None)
            for r in found]


__all__ = ["InboxItem", "ReadEntry", "auditor_inbox", "mark_reviewed", "patient_inbox",
           "provider_emergencies", "provider_inbox", "reads_of"]
