"""Data requests to providers (:mod:`kizuna.services.data_requests`): the patient asks, the
provider uploads files encrypted to the patient and answers; each step confirmed from its
on-chain care event. Either party reads the request, its note's envelope and its files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kizuna.api.convert import hexed, unhex
from kizuna.api.deps import CurrentSession, ProviderSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    DataRequestAnswerIn,
    DataRequestAnswerOut,
    DataRequestIn,
    DataRequestOut,
    DeliveryOut,
    Hex32,
)
from kizuna.api.streaming import consume_body, content_response
from kizuna.services import data_requests as dr
from kizuna.wire import data_requests as wire_dr
from kizuna.wire.onchain import SentTransaction

router = APIRouter(tags=["data requests"])

RequestId = Annotated[Hex32, Path(description="the request's id (its DataRequested ref)")]
_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "description": "a file's envelope, encrypted to the patient, streamed"}}
_ENVELOPE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/octet-stream": {}},
                   "description": "the envelope, streamed"}}


def _delivery(d: wire_dr.Delivery) -> DeliveryOut:
    return DeliveryOut(commitment=hexed(d.commitment), cid=d.cid, content_type=d.content_type,
                       size=d.size)


def request_out(r: wire_dr.DataRequest) -> DataRequestOut:
    """The answer for a request (one shape for every route)."""
    return DataRequestOut(
        request_id=hexed(r.request_id), patient=r.patient, provider=r.provider,
        types=list(r.fields.types), since=r.fields.since, until=r.fields.until,
        deadline_days=r.fields.deadline_days, deadline=r.deadline, nonce=hexed(r.nonce),
        note_ref=hexed(r.note_ref) if r.note_ref is not None else None,
        tx_hash=hexed(r.tx_hash), block_number=r.block_number, asked_at=r.asked_at,
        state=r.state, status=r.status, overdue=r.overdue, as_of=r.now,
        answers=[DataRequestAnswerOut(
            ref=hexed(a.ref), state=a.state, reason=a.reason, nonce=hexed(a.nonce),
            deliveries=[_delivery(d) for d in a.deliveries], tx_hash=hexed(a.tx_hash),
            block_number=a.block_number, answered_at=a.answered_at) for a in r.answers])


@router.post("/patient/data-requests", response_model=DataRequestOut, status_code=201,
             responses=error_responses(401, 409, 413, 422, 503))
def ask(body: DataRequestIn, session: CurrentSession, state: State) -> DataRequestOut:
    """Record a request the patient announced on-chain (``DataRequested``, ref = the
    commitment of these fields): nothing is kept unless the event matches."""
    return request_out(dr.ask(
        state.ctx, patient=session.address, provider=body.provider, types=body.types,
        since=body.since, until=body.until, deadline_days=body.deadline_days,
        nonce=unhex("nonce", body.nonce),
        note_id=unhex("note_id", body.note_id) if body.note_id is not None else None,
        note=unhex("note", body.note) if body.note is not None else None,
        transaction=SentTransaction.parse(body.tx_hash)))


@router.get("/patient/data-requests", response_model=list[DataRequestOut],
            responses=error_responses(401))
def patient_requests(session: CurrentSession, state: State) -> list[DataRequestOut]:
    """The signed-in patient's requests with their state (overdue by chain time), newest
    first."""
    return [request_out(r) for r in dr.requests_of_patient(state.ctx, session.address)]


@router.get("/patient/data-requests/tasks",
            responses={200: {"content": {"application/fhir+json": {}},
                             "description": "a FHIR searchset Bundle of Task resources"},
                       **error_responses(401)})
def patient_tasks(session: CurrentSession, state: State) -> Response:
    """The patient's requests as FHIR R4 ``Task`` resources (status, deadline in
    ``restriction.period``)."""
    tasks = [wire_dr.fhir_task(r) for r in dr.requests_of_patient(state.ctx, session.address)]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": len(tasks),
                              "entry": [{"resource": t} for t in tasks]}
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/provider/data-requests", response_model=list[DataRequestOut],
            responses=error_responses(401, 403))
def provider_requests(session: ProviderSession, state: State) -> list[DataRequestOut]:
    """The requests patients made to the signed-in provider, newest first."""
    return [request_out(r) for r in dr.requests_to_provider(state.ctx, session.address)]


@router.get("/data-requests/{request_id}", response_model=DataRequestOut,
            responses=error_responses(401, 404, 422))
def one_request(request_id: RequestId, session: CurrentSession,
                state: State) -> DataRequestOut:
    """One request, for its patient or its provider (anyone else: 404)."""
    return request_out(dr.get_request(state.ctx, unhex("request_id", request_id),
                                      reader=session.address))


@router.get("/data-requests/{request_id}/note", response_class=StreamingResponse,
            responses={**_ENVELOPE, **error_responses(401, 404, 422, 502, 503)})
def note(request_id: RequestId, session: CurrentSession, state: State) -> Response:
    """The note's envelope (encrypted to the provider)."""
    stream = dr.open_note(state.ctx, reader=session.address,
                          request_id=unhex("request_id", request_id))
    return content_response(stream, media_type="application/octet-stream")


@router.put("/provider/data-requests/{request_id}/deliveries/{message_id}",
            response_model=DeliveryOut, status_code=201, openapi_extra=_BODY,
            responses=error_responses(401, 403, 404, 409, 413, 422, 503))
async def upload_delivery(request: Request, request_id: RequestId,
                          message_id: Annotated[Hex32, Path(description="the envelope's id")],
                          session: ProviderSession, state: State) -> DeliveryOut:
    """Store one file of a coming answer (an envelope encrypted to the patient)."""
    rid, mid = unhex("request_id", request_id), unhex("message_id", message_id)

    def store(chunks: Any) -> wire_dr.Delivery:
        return dr.upload_delivery(state.ctx, provider=session.address, request_id=rid,
                                  message_id=mid, envelope=chunks)

    return _delivery(await consume_body(request, wire_dr.MAX_DELIVERY_BYTES, store))


@router.post("/provider/data-requests/{request_id}/answers", response_model=DataRequestOut,
             responses=error_responses(401, 403, 404, 409, 422, 503))
def answer(request_id: RequestId, body: DataRequestAnswerIn, session: ProviderSession,
           state: State) -> DataRequestOut:
    """Record the provider's answer once its care event (ref = the answer's commitment)
    is confirmed."""
    return request_out(dr.answer(
        state.ctx, provider=session.address, request_id=unhex("request_id", request_id),
        state=body.state, reason=body.reason,
        deliveries=[unhex(f"deliveries[{i}]", d) for i, d in enumerate(body.deliveries)],
        nonce=unhex("nonce", body.nonce), transaction=SentTransaction.parse(body.tx_hash)))


@router.get("/data-requests/{request_id}/deliveries/{commitment}/content",
            response_class=StreamingResponse,
            responses={**_ENVELOPE, **error_responses(401, 404, 422, 502, 503)})
def delivery_content(request_id: RequestId,
                     commitment: Annotated[Hex32, Path(description="the file's commitment")],
                     session: CurrentSession, state: State) -> Response:
    """A sent file's envelope (encrypted to the patient), for the request's two parties."""
    stream = dr.open_delivery(state.ctx, reader=session.address,
                              request_id=unhex("request_id", request_id),
                              commitment=unhex("commitment", commitment))
    return content_response(stream, media_type="application/octet-stream")
