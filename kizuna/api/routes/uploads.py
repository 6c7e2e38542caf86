"""Chunked uploads of one envelope (kizuna/services/uploads.py): start a session, send its
parts in order, complete it with the registration — which then runs exactly as
``PUT /patient/records/{record_id}`` does — or abort it. For clients that cannot stream a
request body (a browser over HTTP/1.1): they hold one part, not the whole envelope.

A guardian uploads for a ward with ``?patient=ADDRESS`` (as on the single upload); a session
belongs to the patient it was started for, and is 404 to everyone else."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from kizuna.api.convert import authorization, hexed, record_out, unhex
from kizuna.api.deps import ActingPatient, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import RecordOut, UploadCompleteIn, UploadIn, UploadOut
from kizuna.api.streaming import consume_body
from kizuna.services import uploads as upload_service
from kizuna.wire.records import PART_SIZE

router = APIRouter(prefix="/patient/uploads", tags=["patient"])

UploadIdPath = Annotated[str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$",
                                   description="the upload session's id")]


def _out(s: upload_service.UploadSession) -> UploadOut:
    return UploadOut(upload_id=s.upload_id, record_id=hexed(s.record_id),
                     scope_id=hexed(s.scope_id), epoch=s.epoch, size=s.size,
                     received=s.received, parts=s.parts, part_size=PART_SIZE,
                     min_part_size=upload_service.MIN_PART_SIZE)


@router.post("", response_model=UploadOut, status_code=201,
             responses=error_responses(401, 403, 409, 413, 422, 503))
def start(body: UploadIn, patient: ActingPatient, state: State) -> UploadOut:
    """Start a chunked upload of one envelope of ``size`` bytes: 409 when the record id is
    taken, the epoch is not the scope's current one, or the patient has 4 uploads open; 413
    over ``max_upload_bytes``; 403 beyond the storage quota."""
    return _out(upload_service.start_upload(
        state.ctx, patient=patient, record_id=unhex("record_id", body.record_id),
        scope_id=unhex("scope_id", body.scope_id), epoch=body.epoch, size=body.size,
        max_size=state.settings.max_upload_bytes))


@router.get("/{upload_id}", response_model=UploadOut,
            responses=error_responses(401, 403, 404, 422, 503))
def status(upload_id: UploadIdPath, patient: ActingPatient, state: State) -> UploadOut:
    """How far the upload got: after a part whose answer was lost, send part ``parts``."""
    return _out(upload_service.get_upload(state.ctx, patient=patient, upload_id=upload_id))


@router.put(
    "/{upload_id}/parts/{n}", response_model=UploadOut,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the next bytes of the envelope: at most part_size, at least "
        "min_part_size unless they are the last"}},
    responses=error_responses(401, 403, 404, 409, 413, 422, 503))
async def put_part(request: Request, upload_id: UploadIdPath,
                   n: Annotated[int, Path(ge=0, lt=1 << 31, description="the part's number, "
                                          "from 0, in order")],
                   patient: ActingPatient, state: State) -> UploadOut:
    """Store part ``n`` (streamed): 409 unless it is the next one, 413 over ``part_size``,
    422 for a part too small (not the last) or one that passes the declared size."""

    def store(chunks: object) -> upload_service.UploadSession:
        return upload_service.put_part(state.ctx, patient=patient, upload_id=upload_id, n=n,
                                       chunks=chunks)  # type: ignore[arg-type]

    return _out(await consume_body(request, PART_SIZE, store))


@router.post("/{upload_id}/complete", response_model=RecordOut, status_code=201,
             responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503))
def complete(upload_id: UploadIdPath, body: UploadCompleteIn, patient: ActingPatient,
             state: State) -> RecordOut:
    """Register the uploaded envelope: the same checks, registration and record as
    ``PUT /patient/records/{record_id}`` (409 while parts are missing). A failure keeps the
    session: complete it again, or abort it."""
    info = upload_service.complete_upload(
        state.ctx, patient=patient, upload_id=upload_id,
        registration=authorization(body.registration), max_size=state.settings.max_upload_bytes,
        relayer=state.relayer,
        supersedes=unhex("supersedes", body.supersedes) if body.supersedes else None)
    return record_out(info)


@router.delete("/{upload_id}", status_code=204,
               responses=error_responses(401, 403, 404, 422, 503))
async def abort(upload_id: UploadIdPath, patient: ActingPatient, state: State) -> Response:
    """Abort the upload: its parts are released."""
    await run_in_threadpool(upload_service.abort_upload, state.ctx, patient=patient,
                            upload_id=upload_id)
    return Response(status_code=204)
