"""Patient routes: upload (streamed) and list / download their records, bind scope keys,
grant and revoke. Every on-chain step arrives signed by the patient (relayed) or as the hash of
a transaction their wallet sent; the service holds no patient key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from kizuna.api.convert import authorization, hexed, record_out, shaped, unhex
from kizuna.api.deps import CurrentSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    AuthorizationIn,
    GrantIn,
    GrantOut,
    GuardianOut,
    Hex32,
    InboxItemOut,
    ReadEntryOut,
    RecordOut,
    RevokeAllIn,
    RevokeIn,
    ScopeKeysIn,
    TxOut,
)
from kizuna.api.streaming import consume_body, content_response
from kizuna.errors import InputError
from kizuna.services import grants as grant_service
from kizuna.services import guardians as guardian_service
from kizuna.services import inbox as inbox_service
from kizuna.services import records as record_service
from kizuna.services.onchain import SentTransaction

router = APIRouter(prefix="/patient", tags=["patient"])

RecordIdPath = Annotated[Hex32, Path(description="the record id (0x + 64 hex digits)")]


@router.put(
    "/records/{record_id}", response_model=RecordOut, status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the envelope (ciphertext + capsule), streamed"}},
    responses=error_responses(401, 403, 409, 413, 422, 503))
async def upload(
    request: Request, record_id: RecordIdPath, session: CurrentSession, state: State,
    scope_id: Annotated[Hex32, Header(alias="X-Kizuna-Scope-Id")],
    registration: Annotated[str, Header(alias="X-Kizuna-Registration", max_length=16384,
                                        description="JSON AuthorizationIn: the signed "
                                        "RegisterRecord, or the wallet's tx hash")],
) -> RecordOut:
    """Store an envelope (streamed into the content store, constant memory) and register it
    on-chain for the signed-in patient; the record exists only once the chain confirmed it."""
    try:
        auth = authorization(AuthorizationIn.model_validate_json(registration))
    except ValueError as exc:
        raise InputError("X-Kizuna-Registration", f"not an authorization: {exc}") from None
    limit = state.settings.max_upload_bytes

    def store(chunks: object) -> record_service.RecordInfo:
        return record_service.upload_record(
            state.ctx, patient=session.address, record_id=unhex("record_id", record_id),
            scope_id=unhex("scope_id", scope_id), envelope=chunks,  # type: ignore[arg-type]
            registration=auth, max_size=limit, relayer=state.relayer)

    return record_out(await consume_body(request, limit, store))


@router.get("/records", response_model=list[RecordOut], responses=error_responses(401, 422))
def records(session: CurrentSession, state: State,
            content_type: str | None = None) -> list[RecordOut]:
    """The signed-in patient's records (metadata only)."""
    return [record_out(r) for r in record_service.list_records(
        state.ctx, patient=session.address, content_type=content_type)]


@router.get("/records/{record_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the envelope, streamed"},
                       **error_responses(401, 403, 404, 422, 502, 503)})
def download(record_id: RecordIdPath, session: CurrentSession, state: State) -> Response:
    """One of the patient's own envelopes, streamed (decrypted on the patient's side)."""
    stream = record_service.open_own_record(state.ctx, patient=session.address,
                                            record_id=unhex("record_id", record_id))
    return content_response(stream, media_type="application/octet-stream")


@router.post("/scope-keys", status_code=204, responses=error_responses(401, 422))
def scope_keys(body: ScopeKeysIn, session: CurrentSession, state: State) -> None:
    """Bind a scope's Umbral public keys to the patient (signed by their wallet)."""
    grant_service.register_scope_keys(
        state.ctx, patient=session.address, scope_id=unhex("scope_id", body.scope_id),
        delegating_key=unhex("delegating_key", body.delegating_key),
        verifying_key=unhex("verifying_key", body.verifying_key),
        signature=unhex("signature", body.signature))


@router.post("/grants", response_model=TxOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def grant(body: GrantIn, session: CurrentSession, state: State) -> TxOut:
    """Grant a provider scopes until a date: key fragments checked, the chain, then the
    fragments stored for the proxy."""
    result = grant_service.grant_access(
        state.ctx, patient=session.address, provider=body.provider,
        scope_ids=[unhex("scope_ids", s) for s in body.scope_ids], expires_at=body.expires_at,
        kfrags={unhex("kfrags", k): [unhex("kfrags", f) for f in v]
                for k, v in body.kfrags.items()},
        authorization=authorization(body.authorization), relayer=state.relayer)
    return TxOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number)


@router.post("/revocations", response_model=TxOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def revoke(body: RevokeIn, session: CurrentSession, state: State) -> TxOut:
    """Revoke one scope of a provider: the chain first, then the fragments deleted."""
    result = grant_service.revoke_access(
        state.ctx, patient=session.address, provider=body.provider,
        scope_id=unhex("scope_id", body.scope_id),
        authorization=authorization(body.authorization), relayer=state.relayer)
    return TxOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number)


@router.get("/grants", response_model=list[GrantOut], responses=error_responses(401, 503))
def grants(session: CurrentSession, state: State) -> list[GrantOut]:
    """The patient's grants (live and past), from the chain at the head."""
    return [shaped(GrantOut, g) for g in grant_service.grants_of(state.ctx,
                                                                 patient=session.address)]


@router.get("/guardians", response_model=list[GuardianOut], responses=error_responses(401, 503))
def guardians(session: CurrentSession, state: State) -> list[GuardianOut]:
    """The patient's live guardians."""
    return [shaped(GuardianOut, g) for g in guardian_service.guardians_of(
        state.ctx, patient=session.address)]


@router.get("/inbox", response_model=list[InboxItemOut], responses=error_responses(401, 503))
def inbox(session: CurrentSession, state: State) -> list[InboxItemOut]:
    """Access requests, reports, prescriptions and booking changes addressed to the patient."""
    return [shaped(InboxItemOut, i) for i in inbox_service.patient_inbox(
        state.ctx, patient=session.address)]


@router.get("/reads", response_model=list[ReadEntryOut], responses=error_responses(401, 503))
def reads(session: CurrentSession, state: State,
          since: int | None = Query(None, ge=0, lt=1 << 63)) -> list[ReadEntryOut]:
    """Who read which of the patient's records, and when (from the receipts)."""
    return [shaped(ReadEntryOut, r) for r in inbox_service.reads_of(
        state.ctx, patient=session.address, since=since)]


@router.post("/revocations/all", response_model=TxOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def revoke_all(body: RevokeAllIn, session: CurrentSession, state: State) -> TxOut:
    """Confirm the wallet's ``revokeAll``: every fragment of the pair deleted."""
    result = grant_service.revoke_all(state.ctx, patient=session.address,
                                      provider=body.provider,
                                      authorization=SentTransaction.parse(body.tx_hash))
    return TxOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number)
