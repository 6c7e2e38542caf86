"""Auditor routes: the log decoded from the chain (and the service's receipts), the three
verifications, the FHIR export, emergency accesses awaiting review, anchoring on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from kizuna.api.convert import hexed, shaped, unhex
from kizuna.api.deps import AuditorSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    AddressStr,
    AnchorOut,
    AuditEntryOut,
    AuditReportOut,
    CheckReportOut,
    EmergencyAccessOut,
    ReceiptPageOut,
    ReceiptProofOut,
    ReviewIn,
)
from kizuna.errors import ConfigError
from kizuna.services import audit as audit_service
from kizuna.services import fhir_export
from kizuna.services import inbox as inbox_service
from kizuna.services.audit.receipts import (
    RECEIPT_PAGE_DEFAULT,
    RECEIPT_PAGE_MAX,
    ProvenReceipt,
    receipts_page,
)

router = APIRouter(prefix="/auditor", tags=["auditor"])

_ERRORS = error_responses(401, 403, 422, 503)


@router.get("/log", response_model=list[AuditEntryOut], responses=_ERRORS)
def log(session: AuditorSession, state: State, patient: AddressStr | None = None,
        provider: AddressStr | None = None, since: int | None = Query(None, ge=0, lt=1 << 63),
        until: int | None = Query(None, ge=0, lt=1 << 63)) -> list[AuditEntryOut]:
    """Every event (and every read receipt) for a patient, a provider or a time range."""
    entries = audit_service.full_log(state.ctx.chain, index=state.ctx.index.index,
                                     database=state.ctx.db, patient=patient, provider=provider,
                                     since=since, until=until)
    return [shaped(AuditEntryOut, e) for e in entries]


@router.get("/verification", response_model=AuditReportOut, responses=_ERRORS)
def verification(session: AuditorSession, state: State) -> AuditReportOut:
    """Receipts under anchored roots, a live grant (or emergency access) at each read's time,
    content commitments against the stored ciphertext."""
    report = audit_service.audit(state.ctx.chain, state.ctx.db, state.ctx.store,
                                 index=state.ctx.index.index)
    return AuditReportOut(ok=report.ok, receipts=shaped(CheckReportOut, report.receipts),
                          access=shaped(CheckReportOut, report.access),
                          content=shaped(CheckReportOut, report.content))


@router.get("/receipts", response_model=ReceiptPageOut, responses=_ERRORS)
def receipts(session: AuditorSession, state: State,
             cursor: str | None = Query(None, max_length=64, description=(
                 "the previous page's next_cursor (none: the first page)")),
             limit: int = Query(RECEIPT_PAGE_DEFAULT, ge=1, le=RECEIPT_PAGE_MAX)
             ) -> ReceiptPageOut:
    """The stored read receipts page by page, in ``seq`` order, each with its Merkle proof:
    the page recomputes each leaf from the signed fields and checks the proof against the
    root anchored on-chain (not against this)."""
    page = receipts_page(state.ctx.db, cursor=cursor, limit=limit)
    return ReceiptPageOut(receipts=[_receipt_out(p) for p in page.receipts],
                          next_cursor=page.next_cursor)


def _receipt_out(proven: ProvenReceipt) -> ReceiptProofOut:
    r = proven.row
    return ReceiptProofOut(
        seq=r.seq, request_id=hexed(r.request_id), provider=r.provider, patient=r.patient,
        record_id=hexed(r.record_id), scope_id=hexed(r.scope_id), request_json=r.request_json,
        signature=hexed(r.signature), leaf=hexed(r.leaf), served_at=r.served_at,
        head_block=r.head_block,
        batch_root=hexed(r.batch_root) if r.batch_root is not None else None,
        leaf_index=r.leaf_index, proof=[hexed(x) for x in proven.proof])


@router.get("/export", response_model=dict[str, Any], responses=_ERRORS)
def export(session: AuditorSession, state: State, patient: AddressStr | None = None,
           provider: AddressStr | None = None,
           since: int | None = Query(None, ge=0, lt=1 << 63, description=(
               "the period's start (Unix seconds, included)")),
           until: int | None = Query(None, ge=0, lt=1 << 63, description=(
               "the period's end (Unix seconds, included; not before since)"))
           ) -> dict[str, Any]:
    """A FHIR R4 collection Bundle: AuditEvent per read, Consent per grant, Provenance per
    record (with transaction hashes and CIDs), of a period when ``since`` / ``until`` are
    given (each resource by its own time)."""
    return fhir_export.export_bundle(state.ctx.chain, state.ctx.db, store=state.ctx.store,
                                     index=state.ctx.index.index, patient=patient,
                                     provider=provider, since=since, until=until)


@router.get("/inbox", response_model=list[EmergencyAccessOut], responses=_ERRORS)
def inbox(session: AuditorSession, state: State,
          patient: AddressStr | None = None) -> list[EmergencyAccessOut]:
    """Emergency (break-glass) accesses awaiting review."""
    return [shaped(EmergencyAccessOut, e)
            for e in inbox_service.auditor_inbox(state.ctx, patient=patient)]


@router.post("/reviews", response_model=EmergencyAccessOut,
             responses=error_responses(401, 403, 404, 422, 503))
def review(body: ReviewIn, session: AuditorSession, state: State) -> EmergencyAccessOut:
    """Mark an emergency access reviewed."""
    done = inbox_service.mark_reviewed(state.ctx, reviewer=session.address,
                                       tx_hash=unhex("tx_hash", body.tx_hash),
                                       log_index=body.log_index)
    return shaped(EmergencyAccessOut, done)


@router.post("/anchor", response_model=AnchorOut, responses=_ERRORS)
def anchor(session: AuditorSession, state: State) -> AnchorOut:
    """Anchor every pending receipt now (instead of waiting for the schedule)."""
    if state.anchorer is None:
        raise ConfigError("this instance has no anchorer key (KIZUNA_ANCHORER_KEY)")
    batches = state.anchorer.run_once()
    return AnchorOut(anchored=sum(b.count for b in batches),
                     roots=[hexed(b.root) for b in batches])


__all__ = ["router"]
