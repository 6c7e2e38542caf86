"""SMART Health Links: the patient registers, lists and revokes links (signed in); anyone
holding a link opens it (no session: the link is the authorization, and its key, which the
service never sees, is what opens the content). See :mod:`kizuna.sharing.links`.

* ``POST /patient/links``, ``GET /patient/links``, ``DELETE /patient/links/{link_id}``
* ``POST /shl/{link_id}`` — the manifest (``{recipient, passcode?, embeddedLengthMax?}``);
  401 ``{"remainingAttempts": n}`` for a wrong passcode; 404 once revoked, expired or locked
* ``GET /shl/{link_id}?recipient=`` — the one JWE of a ``U`` link
* ``GET /shl/{link_id}/files/{ticket}`` — a manifest's file ``location`` (one hour)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from kizuna.api.deps import ActingPatient, State
from kizuna.api.errors import error_response, error_responses
from kizuna.api.schemas import (
    LinkAccessOut,
    LinkIn,
    LinkOut,
    ManifestFileOut,
    ManifestIn,
    ManifestOut,
    WrongPasscodeOut,
)
from kizuna.sharing import links as shl_links

router = APIRouter(tags=["sharing"])

JOSE = "application/jose"
LinkId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             description="the link's manifest id")]


def _out(info: shl_links.LinkInfo, now: int) -> LinkOut:
    return LinkOut(link_id=info.link_id, path=f"/shl/{info.link_id}", label=info.label,
                   flag=info.flag, expires_at=info.expires_at, created_at=info.created_at,
                   revoked_at=info.revoked_at, attempts_left=info.attempts_left,
                   state=info.state(now), files=info.files,
                   accesses=[LinkAccessOut(at=a.at, recipient=a.recipient, outcome=a.outcome)
                             for a in info.accesses])


@router.post("/patient/links", response_model=LinkOut, status_code=201, tags=["patient"],
             responses=error_responses(401, 403, 413, 422, 503))
async def create_link(body: LinkIn, patient: ActingPatient, state: State) -> LinkOut:
    """Keep a new link's encrypted files (JWE, made on the patient's side) and its rules."""
    ctx = state.ctx
    info = await run_in_threadpool(
        shl_links.register, ctx, patient,
        files=[shl_links.NewFile(f.content_type, f.jwe) for f in body.files],
        label=body.label, expires_at=body.expires_at, passcode=body.passcode,
        max_attempts=body.max_attempts, direct=body.direct)
    return _out(info, info.created_at)


@router.get("/patient/links", response_model=list[LinkOut], tags=["patient"],
            responses=error_responses(401, 403, 503))
async def list_links(patient: ActingPatient, state: State) -> list[LinkOut]:
    """The patient's links, newest first, each with every access (time, recipient, outcome)."""
    import time

    found = await run_in_threadpool(shl_links.links_of, state.ctx, patient)
    now = int(time.time())
    return [_out(info, now) for info in found]


@router.delete("/patient/links/{link_id}", status_code=204, tags=["patient"],
               responses=error_responses(401, 403, 404, 503))
async def revoke_link(link_id: LinkId, patient: ActingPatient, state: State) -> Response:
    """End a link: from now on it answers 404 to everyone."""
    await run_in_threadpool(shl_links.revoke, state.ctx, patient, link_id)
    return Response(status_code=204)


@router.post("/shl/{link_id}", response_model=ManifestOut, response_model_exclude_none=True,
             responses={**error_responses(404, 413, 422, 503),
                        401: {"model": WrongPasscodeOut,
                              "description": "wrong or missing passcode"}})
async def manifest(link_id: LinkId, body: ManifestIn, request: Request,
                   state: State) -> ManifestOut | JSONResponse:
    """The link's manifest for whoever holds the link (no session)."""
    try:
        files = await run_in_threadpool(
            shl_links.open_manifest, state.ctx, link_id, recipient=body.recipient,
            passcode=body.passcode, embedded_max=body.embeddedLengthMax,
            base_url=str(request.base_url))
    except shl_links.WrongPasscode as exc:
        answer = error_response(exc)
        return JSONResponse(status_code=401, content={
            "remainingAttempts": exc.remaining,
            "error": {"kind": "WrongPasscode", "message": str(exc)}},
            headers={k: v for k, v in answer.headers.items()
                     if k.lower() not in ("content-length", "content-type")})
    return ManifestOut(files=[ManifestFileOut(**f) for f in files])


@router.get("/shl/{link_id}", response_class=Response,
            responses={200: {"content": {JOSE: {}}, "description": "the JWE"},
                       **error_responses(404, 422, 503)})
async def direct(link_id: LinkId, state: State,
                 recipient: Annotated[str, Query(min_length=1, max_length=200)]) -> Response:
    """The one file of a ``U`` link, as a compact JWE."""
    jwe = await run_in_threadpool(shl_links.open_direct, state.ctx, link_id,
                                  recipient=recipient)
    return Response(jwe, media_type=JOSE)


@router.get("/shl/{link_id}/files/{ticket}", response_class=Response,
            responses={200: {"content": {JOSE: {}}, "description": "the JWE"},
                       **error_responses(404, 422, 503)})
async def file(link_id: LinkId, state: State,
               ticket: Annotated[str, Path(min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9_-]+$")]) -> Response:
    """A file a manifest listed by ``location`` (valid one hour), as a compact JWE."""
    jwe = await run_in_threadpool(shl_links.open_file, state.ctx, link_id, ticket)
    return Response(jwe, media_type=JOSE)
