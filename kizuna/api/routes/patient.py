"""Patient routes: upload (streamed, optionally as a new version of a record) and list /
download their records, bind scope keys, grant and revoke, leave an emergency kit. Every
on-chain step arrives signed by the patient (relayed) or as the hash of a transaction their
wallet sent; the service holds no patient key.

A guardian acts for a ward with ``?patient=ADDRESS`` on the routes that take
:data:`~kizuna.api.deps.ActingPatient` (records, upload, grants, revocations, inbox, reads,
guardians): allowed only while the chain has the caller as the ward's live guardian (403
otherwise). The guardian's own ``...For`` transaction is the authorization then — a signature
of the guardian cannot stand for the patient's."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from kizuna.api.auth import roles_in
from kizuna.api.convert import authorization, hexed, record_out, shaped, unhex
from kizuna.api.deps import ActingPatient, CurrentSession, State
from kizuna.api.errors import PayloadTooLarge, error_responses
from kizuna.api.limits import too_deep
from kizuna.api.schemas import (
    AttemptedReadsOut,
    AuthorizationIn,
    BatchIn,
    BatchOut,
    EmergencyKitIn,
    EmergencyKitOut,
    GrantIn,
    GrantOut,
    GuardianOut,
    Hex32,
    InboxItemOut,
    KfragsIn,
    KfragsOut,
    ReadEntryOut,
    RecordIdsIn,
    RecordOut,
    RevokeAllIn,
    RevokeIn,
    RevokeOut,
    ScopeEpochOut,
    ScopeKeysIn,
    StagedIdsOut,
    StagedOut,
    TxOut,
)
from kizuna.api.streaming import check_declared_length, consume_body, content_response
from kizuna.errors import AccessDenied, InputError
from kizuna.jsondepth import MAX_JSON_DEPTH
from kizuna.services import batches as batch_service
from kizuna.services import emergency as emergency_service
from kizuna.services import grants as grant_service
from kizuna.services import guardians as guardian_service
from kizuna.services import inbox as inbox_service
from kizuna.services import records as record_service
from kizuna.services import refusals as refusal_service
from kizuna.wire.batches import StagedInfo
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.records import RecordInfo

router = APIRouter(prefix="/patient", tags=["patient"])

_ACTING_ERRORS = error_responses(401, 403, 422, 503)

RecordIdPath = Annotated[Hex32, Path(description="the record id (0x + 64 hex digits)")]


@router.put(
    "/records/{record_id}", response_model=RecordOut, status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the envelope (ciphertext + capsule), streamed"}},
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503))
async def upload(
    request: Request, record_id: RecordIdPath, patient: ActingPatient, state: State,
    scope_id: Annotated[Hex32, Header(alias="X-Kizuna-Scope-Id")],
    registration: Annotated[str, Header(alias="X-Kizuna-Registration", max_length=16384,
                                        description="JSON AuthorizationIn: the signed "
                                        "RegisterRecord, or the wallet's tx hash")],
    supersedes: Annotated[Hex32 | None, Header(
        alias="X-Kizuna-Supersedes",
        description="a new version of this record of the patient's (its newest): the "
        "signature names it, the chain marks it superseded")] = None,
    epoch: Annotated[int | None, Header(
        alias="X-Kizuna-Scope-Epoch", ge=0, lt=1 << 64,
        description="the scope key epoch the envelope is encrypted to; it must be the "
        "scope's current one (409 otherwise; absent: 0)")] = None,
) -> RecordOut:
    """Store an envelope (streamed into the content store, constant memory) and register it
    on-chain for the patient; the record exists only once the chain confirmed it. With
    ``X-Kizuna-Supersedes`` it is a new version: 404 when the old record is not the patient's,
    409 when it is superseded already."""
    try:
        auth = authorization(AuthorizationIn.model_validate_json(registration))
    except ValueError as exc:
        raise InputError("X-Kizuna-Registration", f"not an authorization: {exc}") from None
    limit = state.settings.max_upload_bytes

    def store(chunks: object) -> RecordInfo:
        return record_service.upload_record(
            state.ctx, patient=patient, record_id=unhex("record_id", record_id),
            scope_id=unhex("scope_id", scope_id), envelope=chunks,  # type: ignore[arg-type]
            registration=auth, max_size=limit, relayer=state.relayer,
            supersedes=unhex("X-Kizuna-Supersedes", supersedes) if supersedes else None,
            epoch=epoch)

    return record_out(await consume_body(request, limit, store))


@router.get("/records", response_model=list[RecordOut],
            responses=error_responses(401, 403, 422, 503))
def records(patient: ActingPatient, state: State,
            content_type: str | None = None) -> list[RecordOut]:
    """The patient's records (metadata only)."""
    return [record_out(r) for r in record_service.list_records(
        state.ctx, patient=patient, content_type=content_type)]


@router.get("/records/{record_id}", response_model=RecordOut,
            responses=error_responses(401, 403, 404, 422, 503))
def record(record_id: RecordIdPath, patient: ActingPatient, state: State) -> RecordOut:
    """One of the patient's records (metadata only), found by its id: the cost does not grow
    with the number of records the patient has. ``block_number`` names the block of its
    ``RecordRegistered`` event. 404: no such record; 403: someone else's."""
    rid = unhex("record_id", record_id)
    info = record_service.get_own_record(state.ctx, patient=patient, record_id=rid)
    return record_out(info).model_copy(
        update={"block_number": record_service.registered_block(state.ctx, rid)})


@router.get("/records/{record_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the envelope, streamed"},
                       **error_responses(401, 403, 404, 422, 502, 503)})
def download(record_id: RecordIdPath, session: CurrentSession, state: State) -> Response:
    """One of the patient's own envelopes, streamed (decrypted on the patient's side)."""
    stream = record_service.open_own_record(state.ctx, patient=session.address,
                                            record_id=unhex("record_id", record_id))
    return content_response(stream, media_type="application/octet-stream")


@router.post("/records/contents", response_class=StreamingResponse,
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "for each record asked, in order: its id (32 "
                              "bytes), the envelope's length (8 bytes, big-endian), the "
                              "envelope"},
                        **error_responses(401, 403, 404, 422, 502, 503)})
def download_many(body: RecordIdsIn, session: CurrentSession, state: State) -> Response:
    """Many of the patient's own envelopes in one answer (a history read back: one request
    for up to 256 records, not one each); decrypted and checked on the patient's side as
    single downloads are. Every id is checked before a byte is sent (404 unknown, 403 not
    the patient's, 422 a record over 4 MiB: download it alone)."""
    found = record_service.own_envelopes(
        state.ctx, patient=session.address,
        record_ids=[unhex("record_ids", r) for r in body.record_ids])

    def framed() -> Iterator[bytes]:
        # Sent ~1 MiB at a time: each piece a sync generator yields costs the event loop a
        # hop to a worker thread, ~256 of them a request when sent one envelope a piece.
        pieces: list[bytes] = []
        size = 0
        for info, envelope in found:
            pieces.append(bytes(info.record_id) + len(envelope).to_bytes(8, "big") + envelope)
            size += len(pieces[-1])
            if size >= 1 << 20:
                yield b"".join(pieces)
                pieces, size = [], 0
        if pieces:
            yield b"".join(pieces)

    return StreamingResponse(framed(), media_type="application/octet-stream")


@router.post(
    "/staged", response_model=list[StagedOut], status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "for each envelope: record id (32 bytes), scope id (32), key epoch (8, "
        "big-endian), length (8, big-endian), the envelope; at most 1,000 envelopes and "
        "max_upload_bytes"}},
    responses=error_responses(401, 403, 409, 413, 422, 503))
async def stage(request: Request, patient: ActingPatient, state: State) -> list[StagedOut]:
    """Store envelopes for a batch registration (``POST /patient/batches``), streamed, each
    checked as a single upload is (422 naming ``envelopes[i]`` and the field; 409 for an id
    that is a record, or an envelope encrypted to an old key epoch); written to the store as
    one write. They count against the storage quota (403 beyond) and expire if no batch
    registers them (``staged_ttl_s``). Restaging an id replaces it; a request that fails
    keeps nothing."""
    limit = state.settings.max_upload_bytes

    def store(chunks: object) -> list[StagedInfo]:
        return batch_service.stage_envelopes(
            state.ctx, patient=patient,
            items=batch_service.parse_frames(chunks, max_size=limit),  # type: ignore[arg-type]
            max_size=limit)

    return [StagedOut(record_id=hexed(s.record_id), commitment=hexed(s.commitment), cid=s.cid,
                      size=s.size) for s in await consume_body(request, limit, store)]


@router.get("/staged", response_model=StagedIdsOut, responses=_ACTING_ERRORS)
def staged(patient: ActingPatient, state: State) -> StagedIdsOut:
    """The patient's staged envelopes not registered yet (a resumed import skips them)."""
    return StagedIdsOut(record_ids=sorted(hexed(r) for r in batch_service.staged_ids(
        state.ctx, patient=patient)))


_BATCH_IN_SCHEMA = {k: v for k, v in BatchIn.model_json_schema(
    ref_template="#/components/schemas/{model}").items() if k != "$defs"}
"""BatchIn, documented: the route reads its body itself (a limit of its own), so FastAPI does
not see the model; AuthorizationIn and SignedActionIn are in the document through other
routes."""

MAX_BATCH_BODY_BYTES = 14 << 20
"""A batch body: the manifest of the largest batch (9.6 MB) as base64, and its signature."""


@router.post(
    "/batches", response_model=BatchOut, status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": _BATCH_IN_SCHEMA}}}},
    responses=error_responses(401, 403, 409, 413, 422, 429, 503))
async def register_batch(request: Request, patient: ActingPatient, state: State) -> BatchOut:
    """Register staged envelopes as one batch: the manifest's leaves must be envelopes the
    patient staged with those scopes and commitments (422 naming ``leaves[i]``); the signed
    RegisterBatch is relayed (or the wallet's transaction awaited) and its event checked;
    then the records exist. A retry after a lost answer finishes without a second
    transaction. The body is JSON (``BatchIn``) of up to 14 MiB: a manifest of 100,000
    records is larger than the 1 MiB other JSON bodies may have."""
    body = await _json_body(request, MAX_BATCH_BODY_BYTES)
    try:
        parsed = BatchIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    try:
        manifest = base64.b64decode(parsed.manifest, validate=True)
    except (binascii.Error, ValueError):  # ValueError: a character that is not even ASCII
        raise InputError("manifest", "is not base64") from None
    auth = authorization(parsed.registration)
    info = await run_in_threadpool(
        batch_service.register_batch, state.ctx, patient=patient, manifest=manifest,
        registration=auth, relayer=state.relayer)
    return BatchOut(root=hexed(info.root), count=info.count, block_number=info.block_number,
                    tx_hash=hexed(info.tx_hash))


async def _json_body(request: Request, limit: int) -> bytes:
    """The body of a JSON route with its own size limit (413 beyond; counted as it arrives)
    and the depth check every JSON body gets (kizuna.api.limits)."""
    check_declared_length(request, limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        parts.append(chunk)
    body = b"".join(parts)
    if too_deep(body):
        raise InputError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body


@router.get("/batches/{root}/manifest", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the batch manifest (kizuna/batch.py)"},
                       **error_responses(401, 403, 404, 422, 502, 503)})
def batch_manifest(root: Annotated[Hex32, Path(description="the batch's Merkle root")],
                   session: CurrentSession, state: State) -> Response:
    """The manifest of a batch registered here: for its patient, a live guardian of theirs,
    or an auditor (it holds what ``RecordRegistered`` events publish for records registered
    alone: ids, blinded scope ids, commitments)."""
    owner, data = batch_service.batch_manifest(state.ctx, root=unhex("root", root))
    if owner != session.address and not state.ctx.chain.ledger.is_guardian(
            owner, session.address) and "auditor" not in roles_in(
            state.ctx.index.standing(session.address)):
        raise AccessDenied(f"batch {root} is not {session.address}'s, nor of a patient they "
                           "are a guardian of, and they are no auditor")
    return Response(data, media_type="application/octet-stream")


@router.post("/scope-keys", status_code=204, responses=error_responses(401, 422))
def scope_keys(body: ScopeKeysIn, session: CurrentSession, state: State) -> None:
    """Bind a scope's Umbral public keys of one key epoch to the patient (signed by their
    wallet)."""
    grant_service.register_scope_keys(
        state.ctx, patient=session.address, scope_id=unhex("scope_id", body.scope_id),
        delegating_key=unhex("delegating_key", body.delegating_key),
        verifying_key=unhex("verifying_key", body.verifying_key),
        signature=unhex("signature", body.signature), epoch=body.epoch)


@router.get("/scope-epochs/{scope_id}", response_model=ScopeEpochOut,
            responses=error_responses(401, 403, 422, 503))
def scope_epoch(scope_id: Annotated[Hex32, Path(description="the scope id")],
                patient: ActingPatient, state: State) -> ScopeEpochOut:
    """The scope's key epoch at the chain head: new records are encrypted to its key, and a
    revocation moves it (re-issue fragments with ``POST /patient/kfrags``)."""
    return ScopeEpochOut(scope_id=scope_id, epoch=grant_service.scope_epoch(
        state.ctx, patient=patient, scope_id=unhex("scope_id", scope_id)))


@router.post("/kfrags", response_model=KfragsOut,
             responses=error_responses(401, 403, 404, 422, 503))
def reissue_kfrags(body: KfragsIn, patient: ActingPatient, state: State) -> KfragsOut:
    """Fragments of one key epoch for a live grant (no chain action): the rekey after a
    revocation, for the grantees that remain (403 without a live grant)."""
    return KfragsOut(kfrags_stored=grant_service.reissue_kfrags(
        state.ctx, patient=patient, provider=body.provider,
        scope_id=unhex("scope_id", body.scope_id), epoch=body.epoch,
        kfrags=[unhex("kfrags", f) for f in body.kfrags]))


@router.post("/grants", response_model=TxOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def grant(body: GrantIn, patient: ActingPatient, state: State) -> TxOut:
    """Grant a provider scopes until a date: key fragments checked, the chain, then the
    fragments stored for the proxy."""
    result = grant_service.grant_access(
        state.ctx, patient=patient, provider=body.provider,
        scope_ids=[unhex("scope_ids", s) for s in body.scope_ids], expires_at=body.expires_at,
        kfrags={unhex("kfrags", k): [unhex("kfrags", f) for f in v]
                for k, v in body.kfrags.items()},
        authorization=authorization(body.authorization), relayer=state.relayer)
    return TxOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number)


@router.post("/revocations", response_model=RevokeOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def revoke(body: RevokeIn, patient: ActingPatient, state: State) -> RevokeOut:
    """Revoke one scope of a provider: the chain first, then the fragments deleted."""
    result = grant_service.revoke_access(
        state.ctx, patient=patient, provider=body.provider,
        scope_id=unhex("scope_id", body.scope_id),
        authorization=authorization(body.authorization), relayer=state.relayer)
    return RevokeOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number,
                     kfrags_deleted=result.kfrags_deleted)


_ACTING = _ACTING_ERRORS


@router.get("/grants", response_model=list[GrantOut], responses=_ACTING)
def grants(patient: ActingPatient, state: State) -> list[GrantOut]:
    """The patient's live grants at the chain head (revoked, ended and expired ones are not
    listed: `kizuna audit log` has the history)."""
    return [shaped(GrantOut, g) for g in grant_service.grants_of(state.ctx, patient=patient)]


@router.get("/guardians", response_model=list[GuardianOut], responses=_ACTING)
def guardians(patient: ActingPatient, state: State) -> list[GuardianOut]:
    """The patient's live guardians."""
    return [shaped(GuardianOut, g) for g in guardian_service.guardians_of(
        state.ctx, patient=patient)]


@router.get("/inbox", response_model=list[InboxItemOut], responses=_ACTING)
def inbox(patient: ActingPatient, state: State) -> list[InboxItemOut]:
    """Access requests, reports, prescriptions and booking changes addressed to the patient."""
    return [shaped(InboxItemOut, i) for i in inbox_service.patient_inbox(
        state.ctx, patient=patient)]


@router.get("/reads", response_model=list[ReadEntryOut], responses=_ACTING)
def reads(patient: ActingPatient, state: State,
          since: int | None = Query(None, ge=0, lt=1 << 63)) -> list[ReadEntryOut]:
    """Who read which of the patient's records, and when (from the receipts)."""
    return [shaped(ReadEntryOut, r) for r in inbox_service.reads_of(
        state.ctx, patient=patient, since=since)]


@router.get("/reads/attempted", response_model=AttemptedReadsOut, responses=_ACTING)
def attempted_reads(patient: ActingPatient, state: State,
                    since: int | None = Query(None, ge=0, lt=1 << 63)) -> AttemptedReadsOut:
    """Read requests of providers that the access check refused (no grant, revoked, expired,
    ...), and the hours whose further refusals were only counted (the rate limit)."""
    return shaped(AttemptedReadsOut, refusal_service.attempted_reads(
        state.ctx, patient=patient, since=since))


@router.post("/revocations/all", response_model=RevokeOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def revoke_all(body: RevokeAllIn, patient: ActingPatient, state: State) -> RevokeOut:
    """Confirm the wallet's ``revokeAll`` (a guardian's ``revokeAllFor``): every fragment of
    the pair deleted."""
    result = grant_service.revoke_all(state.ctx, patient=patient,
                                      provider=body.provider,
                                      authorization=SentTransaction.parse(body.tx_hash))
    return RevokeOut(tx_hash=hexed(result.tx_hash), block_number=result.block_number,
                     kfrags_deleted=result.kfrags_deleted)


@router.get("/emergency-kits", response_model=list[EmergencyKitOut], responses=_ACTING)
def emergency_kits(patient: ActingPatient, state: State) -> list[EmergencyKitOut]:
    """The patient's emergency kit, by provider: which scopes a break-glass access of each may
    open, and how many fragments the service keeps for it (the fragments are not shown)."""
    return [EmergencyKitOut(provider=provider, scope_ids=[hexed(s) for s in scopes],
                            kfrags_left=count)
            for provider, scopes, count in emergency_service.kits_of(state.ctx, patient=patient)]


@router.post("/emergency-kits", response_model=EmergencyKitOut,
             responses=error_responses(401, 403, 404, 422, 503))
def emergency_kit(body: EmergencyKitIn, session: CurrentSession,
                  state: State) -> EmergencyKitOut:
    """Leave key fragments of some scopes for one provider's break-glass access (replacing its
    earlier kit; empty ``kfrags``: none). They must verify against the patient's registered
    scope keys (403 when a scope has none) and the provider's registry key (404: not a
    registered provider; 403: suspended); the proxy gets them only once that provider's
    emergency access is open on chain."""
    left = emergency_service.leave_kit(
        state.ctx, patient=session.address, provider=body.provider,
        kfrags={unhex("kfrags", k): [unhex("kfrags", f) for f in v]
                for k, v in body.kfrags.items()}, epoch=body.epoch)
    return EmergencyKitOut(
        provider=body.provider, kfrags_left=left,
        scope_ids=[hexed(s) for s in emergency_service.kit_scopes(
            state.ctx, patient=session.address, provider=body.provider)])
