"""Provider routes: read a record (signed request → access check → re-encryption → receipt),
fetch ciphertext by CID, list the patients who granted them."""

from __future__ import annotations

import functools
import inspect

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from kizuna.access.check import ProviderNotRegistered
from kizuna.api.convert import read_answer, record_out, shaped
from kizuna.api.deps import (
    BEARER_SECURITY,
    CurrentSession,
    ProviderSession,
    State,
    provider_of,
    recheck_role,
    state_of,
)
from kizuna.api.direct import served_by, signed_read
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    AddressStr,
    EmergencyAccessOut,
    InboxItemOut,
    ReadIn,
    ReadOut,
    RecordOut,
)
from kizuna.api.streaming import content_response
from kizuna.errors import AccessDenied
from kizuna.services import content as content_service
from kizuna.services import grants as grant_service
from kizuna.services import inbox as inbox_service
from kizuna.services import records as record_service
from kizuna.services.read import serve_read

router = APIRouter(tags=["provider"])


async def read(http: Request) -> Response:
    """Serve one signed read request. The answer holds the ciphertext's CID and capsule
    fragments for the provider's key; the receipt is stored before this answer is sent."""
    state = state_of(http)
    # The read's arrival: its access check is decided at a head asked for after this moment,
    # possibly by a request another read sent while this one waited for a read thread.
    arrived = state.ctx.access.arrival()
    request, signature = await signed_read(http)
    # The hottest route: its session is read by a plain call, not three nested dependencies.
    session = await provider_of(http)
    if request.provider != session.address:
        raise AccessDenied("the read request names another provider than the session")
    # On the instance's read threads, not the general pool (kizuna.api.readworkers).
    try:
        grant = await state.read_workers.run(functools.partial(
            serve_read, state.ctx, request=request, signature=signature, arrived=arrived))
    except ProviderNotRegistered:
        # The access check found the reader not active at the head: a session opened as a
        # provider lets go of that role (and ends, if it was all it had), as at other routes.
        await recheck_role(http, session, "provider")
        raise
    # The ReadOut JSON written directly (returning the model would build, validate and dump it).
    return Response(read_answer(grant), media_type="application/json")


async def _read_documented(body: ReadIn) -> ReadOut:
    """What ``POST /provider/reads`` takes and answers, for the OpenAPI document only: the
    route is served by :func:`read` (:func:`kizuna.api.direct.served_by`), never by this."""
    raise AssertionError("/provider/reads is served by read()")


router.add_api_route(
    "/provider/reads", _read_documented, methods=["POST"], response_model=ReadOut,
    openapi_extra=BEARER_SECURITY, responses=error_responses(401, 403, 404, 422, 503),
    # Served by read() directly: the body parsed once, no pydantic pass, no dependency solving
    # (kizuna.api.direct; measured: ~38 µs less a read). ReadIn still makes the OpenAPI entry
    # and marks the route as one with a JSON body, so kizuna.api.limits bounds the body first.
    route_class_override=served_by(read), name="read",
    description=inspect.cleandoc(read.__doc__ or ""))


@router.get("/provider/patients", response_model=list[str], responses=error_responses(401, 403))
def patients(session: ProviderSession, state: State) -> list[str]:
    """Patients with at least one live grant to this provider (from the chain, at the head)."""
    return [str(a) for a in grant_service.patients_of(state.ctx, provider=session.address)]


@router.get("/content/{cid}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the envelope (ciphertext), streamed"},
                       **error_responses(401, 404, 422, 502, 503)})
def content(session: CurrentSession, state: State,
            cid: str = Path(max_length=128, description="CIDv1 of an envelope"),
            ) -> Response:
    """Ciphertext by CID, only to whoever may have it: a record's patient or live guardian,
    a provider shortly after a read of the record (``content_after_read_s``: the read route
    decides and leaves the receipt), a care message's parties. Anything else is 404, as an
    unknown CID. The store checks the bytes against their CID while streaming: tampered
    content aborts the response instead of being delivered."""
    stream = content_service.open_content(state.ctx, reader=session.address, cid=cid,
                                          read_window_s=state.settings.content_after_read_s)
    return content_response(stream, media_type="application/octet-stream")



@router.get("/provider/records", response_model=list[RecordOut],
            responses=error_responses(401, 403, 422, 503))
def readable(session: ProviderSession, state: State, patient: AddressStr | None = None,
             content_type: str | None = Query(None, max_length=200),
             since: int | None = Query(None, ge=0, lt=1 << 63),
             until: int | None = Query(None, ge=0, lt=1 << 63)) -> list[RecordOut]:
    """The records this provider may read now (live grants), by patient, type and date."""
    return [record_out(r) for r in record_service.readable_records(
        state.ctx, provider=session.address, patient=patient, content_type=content_type,
        since=since, until=until)]


@router.get("/provider/inbox", response_model=list[InboxItemOut],
            responses=error_responses(401, 403, 503))
def inbox(session: ProviderSession, state: State) -> list[InboxItemOut]:
    """Answers to this provider's requests, bookings and messages addressed to it."""
    return [shaped(InboxItemOut, i) for i in inbox_service.provider_inbox(
        state.ctx, provider=session.address)]


@router.get("/provider/emergencies", response_model=list[EmergencyAccessOut],
            responses=error_responses(401, 403, 503))
def emergencies(session: ProviderSession, state: State) -> list[EmergencyAccessOut]:
    """This provider's emergency (break-glass) accesses, newest first, each with its review:
    by which auditor and when, or awaiting review."""
    return [shaped(EmergencyAccessOut, e) for e in inbox_service.provider_emergencies(
        state.ctx, provider=session.address)]
