"""FastAPI dependencies, as ``Annotated`` aliases routes declare in their signatures.

``State`` is the app's :class:`ApiState`; ``Ctx`` the services' :class:`ServiceContext`;
``CurrentSession`` the signed-in caller (401 without a live session token, 403 for a session
ended because its roles are gone); ``ProviderSession``, ``AuditorSession`` and
``RegistrarSession`` add a role check *at the chain head*, on every request (403
``RoleMissing`` without the role; a role lost since login leaves the session, see
:mod:`kizuna.api.auth`). ``ActingPatient`` is the patient a patient route acts for: the
signed-in address, or — with ``?patient=ADDRESS`` — a ward of theirs, allowed only while the
chain has the caller as that patient's live guardian.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kizuna.api.auth import RoleMissing, SessionStore, SiweExpectations, roles_in, utc_now
from kizuna.api.auth import Session as _Session
from kizuna.api.errors import NotAuthenticated
from kizuna.api.readworkers import ReadWorkers
from kizuna.config import Settings
from kizuna.errors import AccessDenied
from kizuna.services.context import ServiceContext
from kizuna.services.onchain import checked_address
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.relayer import Relayer
    from kizuna.receipts.anchorer import Anchorer


@dataclass
class ApiState:
    """What the routes share: settings, the services' context, sessions, SIWE expectations."""

    settings: Settings
    ctx: ServiceContext
    sessions: SessionStore
    siwe: SiweExpectations
    session_ttl: timedelta
    ctx_wards: Callable[[Address], list[Address]] | None = None
    relayer: Relayer | None = None
    """Pays the gas of patients' signed actions (``relayer_key``); None: wallets send txs."""
    anchorer: Anchorer | None = None
    """Anchors receipt roots on a schedule and on demand (``anchorer_key``)."""
    read_workers: ReadWorkers = field(default_factory=lambda: ReadWorkers(2))
    """Serve provider reads (``read_threads`` threads, made when the app starts; see
    :mod:`kizuna.api.readworkers`)."""


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.kizuna
    return state


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, and each such hop (queue, wake-up, GIL hand-over) cost more than the dependency.
async def get_state(request: Request) -> ApiState:
    return state_of(request)


async def get_ctx(request: Request) -> ServiceContext:
    return state_of(request).ctx


_bearer = HTTPBearer(auto_error=False, description="the token POST /auth/login answered")


async def current_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> _Session:
    """The session of the bearer token, looked up on every request (a logout anywhere ends it
    at once). On SQLite the look-up is one indexed read of a local file, which never waits for
    a writer in WAL mode, so it runs right here; on a networked database it goes to a worker
    thread so the event loop never waits on the network."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("sign in first: Authorization: Bearer <token>")
    return await _lookup(state_of(request).sessions, credentials.credentials)


async def _lookup(sessions: SessionStore, token: str) -> _Session:
    if sessions.local:
        return sessions.session(token, now=utc_now())
    return await run_in_threadpool(sessions.session, token, now=utc_now())


BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}
"""The OpenAPI security of a route that reads its session with :func:`provider_of` (what the
``CurrentSession`` dependencies add to the document by themselves)."""


async def provider_of(request: Request) -> _Session:
    """The session of the read route, by a plain call (three nested dependencies cost ~40 µs,
    a few percent of a read). No role check here: the access check reads the provider's
    registry entry at the head in its own batch and refuses one that is not active
    (``ProviderNotRegistered`` / ``ProviderSuspended``); the route then calls
    :func:`recheck_role`. Declare ``openapi_extra=BEARER_SECURITY`` on the route."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("sign in first: Authorization: Bearer <token>")
    return await _lookup(state_of(request).sessions, token)


_MISSING = {
    "provider": "is not an active provider in the ProviderRegistry",
    "auditor": "does not hold the auditor role (AccessLog)",
    "registrar": "does not hold the registrar role (ProviderRegistry)",
}
_LOST = {
    "provider": "is no longer an active provider (suspended in the ProviderRegistry)",
    "auditor": "no longer holds the auditor role (revoked in AccessLog)",
    "registrar": "no longer holds the registrar role (revoked in the ProviderRegistry)",
}


def _gate(state: ApiState, session: _Session, role: str) -> RoleMissing | None:
    """``None`` when the chain gives ``session``'s address ``role`` at the head; else the
    refusal, after the session has let go of the role (and ended, when nothing it was opened
    for is left). Blocking: the index syncs to the node's head first."""
    standing = state.ctx.index.standing(session.address)
    if role in roles_in(standing):
        return None
    block = standing.block.number
    if not session.has(role):
        return RoleMissing(f"{session.address} {_MISSING[role]} (at block {block})")
    ended = state.sessions.drop_role(session, role, block=block)
    after = ("this session is ended: sign in again" if ended
             else "the session keeps its other roles")
    return RoleMissing(f"{session.address} {_LOST[role]} as of block {block}; {after}")


async def _holding(request: Request, session: _Session, role: str) -> _Session:
    refusal = await run_in_threadpool(_gate, state_of(request), session, role)
    if refusal is not None:
        raise refusal
    return session


async def recheck_role(request: Request, session: _Session, role: str) -> None:
    """After a refusal that may mean ``role`` is gone (the read route's access check said the
    provider is not active): let the session go of it as :func:`_holding` would. Costs a sync
    of the index, on refusals only."""
    await run_in_threadpool(_gate, state_of(request), session, role)


async def provider_session(request: Request,
                           session: Annotated[_Session, Depends(current_session)]) -> _Session:
    return await _holding(request, session, "provider")


async def auditor_session(request: Request,
                          session: Annotated[_Session, Depends(current_session)]) -> _Session:
    return await _holding(request, session, "auditor")


async def registrar_session(request: Request,
                            session: Annotated[_Session, Depends(current_session)]) -> _Session:
    return await _holding(request, session, "registrar")


def acting_patient(
    request: Request,
    session: Annotated[_Session, Depends(current_session)],
    patient: Annotated[str | None, Query(
        max_length=42, description="act for this patient (0x address): only their live "
        "guardian may; default the signed-in address")] = None,
) -> Address:
    """The signed-in address, or the ward named by ``patient`` when the chain (``isGuardian``
    at the latest block, not the session's login-time roles) has the caller as their live
    guardian: a guardian removed or expired a moment ago acts no more."""
    if patient is None:
        return session.address
    ward = checked_address("patient", patient)
    if ward == session.address:
        return ward
    chain = state_of(request).ctx.chain
    if not chain.ledger.is_guardian(ward, session.address):
        raise AccessDenied(f"{session.address} is not a live guardian of {ward} on chain: "
                           "only the patient or a guardian they appointed may act for them")
    return ward


State = Annotated[ApiState, Depends(get_state)]
Ctx = Annotated[ServiceContext, Depends(get_ctx)]
CurrentSession = Annotated[_Session, Depends(current_session)]
ProviderSession = Annotated[_Session, Depends(provider_session)]
AuditorSession = Annotated[_Session, Depends(auditor_session)]
RegistrarSession = Annotated[_Session, Depends(registrar_session)]
ActingPatient = Annotated[Address, Depends(acting_patient)]

__all__ = ["BEARER_SECURITY", "ActingPatient", "ApiState", "AuditorSession", "Ctx",
           "CurrentSession", "ProviderSession", "RegistrarSession", "State", "provider_of",
           "recheck_role", "state_of"]
