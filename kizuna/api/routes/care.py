"""Care messages between patients and providers: access requests, reports, prescriptions,
bookings. Each message is an envelope encrypted on the sender's side to the recipient (streamed
in), announced by the sender's own on-chain transaction (``requestAccess`` / ``logCareEvent``)
whose event must match; the recipient downloads it from their inbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response, StreamingResponse

from kizuna.api.convert import hexed, shaped, unhex
from kizuna.api.deps import CurrentSession, ProviderSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    AddressStr,
    CareMessageOut,
    Hex32,
    InboxKeyIn,
    InboxKeyOut,
    OwnInboxKeyOut,
)
from kizuna.api.streaming import consume_body, content_response
from kizuna.errors import NotFoundError
from kizuna.services import care
from kizuna.services import requests as request_service
from kizuna.wire.care import CareMessage, InboxKey
from kizuna.wire.onchain import SentTransaction

router = APIRouter(tags=["care"])

_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the message's envelope, encrypted to the recipient, streamed"}}
MessageId = Annotated[Hex32, Path(description="the envelope's random id (0x + 64 hex)")]
TxHash = Annotated[Hex32, Header(alias="X-Kizuna-Tx-Hash",
                                 description="the sender's announcing transaction")]


def _inbox_key(entry: InboxKey) -> InboxKeyOut:
    return InboxKeyOut(patient=entry.patient, public_key=hexed(entry.public_key.to_bytes()),
                       signature=hexed(entry.signature), statement=entry.statement.to_json())


@router.post("/patient/inbox-key", response_model=InboxKeyOut,
             responses=error_responses(401, 422, 503))
def publish_inbox_key(body: InboxKeyIn, session: CurrentSession, state: State) -> InboxKeyOut:
    """Publish the key providers encrypt messages to (the statement signed by the wallet)."""
    return _inbox_key(care.publish_inbox_key(
        state.ctx, patient=session.address, public_key=unhex("public_key", body.public_key),
        signature=unhex("signature", body.signature)))


@router.get("/patient/inbox-key", response_model=OwnInboxKeyOut,
            responses=error_responses(401, 503))
def own_inbox_key(session: CurrentSession, state: State) -> OwnInboxKeyOut:
    """The signed-in patient's own inbox key, or ``published: null`` when they have none yet
    (a new patient's page asks this at every visit: "none yet" is an answer, not an error)."""
    try:
        return OwnInboxKeyOut(published=_inbox_key(care.inbox_key_of(state.ctx,
                                                                     session.address)))
    except NotFoundError:
        return OwnInboxKeyOut(published=None)


@router.get("/patients/{patient}/inbox-key", response_model=InboxKeyOut,
            responses=error_responses(401, 404, 422))
def inbox_key(patient: AddressStr, session: CurrentSession, state: State) -> InboxKeyOut:
    """A patient's inbox key with the signed statement (a sender verifies it before use)."""
    return _inbox_key(care.inbox_key_of(state.ctx, patient))


@router.put("/provider/requests/{message_id}", response_model=CareMessageOut, status_code=201,
            openapi_extra=_BODY, responses=error_responses(401, 403, 409, 413, 422, 503))
async def request_access(request: Request, message_id: MessageId, session: ProviderSession,
                         state: State, tx_hash: TxHash,
                         patient: Annotated[AddressStr, Header(alias="X-Kizuna-Patient")],
                         ) -> CareMessageOut:
    """A provider's access request: its note (encrypted to the patient) stored once the
    provider's ``requestAccess`` transaction is confirmed with the note's commitment."""
    sent = SentTransaction.parse(tx_hash)

    def store(chunks: Any) -> CareMessage:
        return request_service.request_access(
            state.ctx, provider=session.address, patient=patient,
            message_id=unhex("message_id", message_id), envelope=chunks, transaction=sent)

    return shaped(CareMessageOut,
                  await consume_body(request, care.MAX_MESSAGE_BYTES, store))


@router.put("/care/messages/{message_id}", response_model=CareMessageOut, status_code=201,
            openapi_extra=_BODY, responses=error_responses(401, 403, 409, 413, 422, 503))
async def send_message(
    request: Request, message_id: MessageId, session: CurrentSession, state: State,
    tx_hash: TxHash,
    patient: Annotated[AddressStr, Header(alias="X-Kizuna-Patient")],
    kind: Annotated[str, Header(alias="X-Kizuna-Kind", max_length=64,
                                description="report, prescription, booking-request, ...")],
    provider: Annotated[AddressStr | None, Header(alias="X-Kizuna-Provider")] = None,
) -> CareMessageOut:
    """A report, prescription, booking or data message, announced by the sender's
    ``logCareEvent`` (its event must name this patient, kind and the envelope's commitment)."""
    sent = SentTransaction.parse(tx_hash)

    def store(chunks: Any) -> CareMessage:
        return care.send_message(state.ctx, sender=session.address, patient=patient,
                                 provider=provider, kind=kind,
                                 message_id=unhex("message_id", message_id), envelope=chunks,
                                 transaction=sent)

    return shaped(CareMessageOut, await consume_body(request, care.MAX_MESSAGE_BYTES, store))


@router.get("/care/messages/{ref}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the message's envelope, streamed"},
                       **error_responses(401, 403, 404, 422, 502, 503)})
def message_content(ref: Annotated[Hex32, Path(description="the message's commitment")],
                    session: CurrentSession, state: State) -> Response:
    """A message's envelope, for its patient, provider or sender only."""
    stream = care.open_message(state.ctx, reader=session.address, ref=unhex("ref", ref))
    return content_response(stream, media_type="application/octet-stream")


@router.get("/care/messages", response_model=list[CareMessageOut],
            responses=error_responses(401, 422))
def sent_messages(session: CurrentSession, state: State,
                  kind: str | None = None) -> list[CareMessageOut]:
    """The messages the signed-in participant sent."""
    return [shaped(CareMessageOut, m) for m in care.messages_sent_by(
        state.ctx, session.address, kind=kind)]
