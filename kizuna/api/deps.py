"""FastAPI dependencies, as ``Annotated`` aliases routes declare in their signatures.

``State`` is the app's :class:`ApiState`; ``Ctx`` the services' :class:`ServiceContext`;
``CurrentSession`` the signed-in caller (401 without a live session token); ``ProviderSession``
and ``AuditorSession`` add a role check (403 without the role). ``ActingPatient`` is the
patient a patient route acts for: the signed-in address, or — with ``?patient=ADDRESS`` — a
ward of theirs, allowed only while the chain has the caller as that patient's live guardian.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kizuna.api.auth import Session as _Session
from kizuna.api.auth import SessionStore, SiweExpectations, utc_now
from kizuna.api.errors import NotAuthenticated
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
    read_pool: ThreadPoolExecutor = field(default_factory=lambda: read_pool(2))
    """Serves provider reads (``read_threads`` threads, made when the app starts). A read is
    CPU work between short waits (node, database): two threads let one compute while the
    other waits. More only contend for the interpreter lock — measured with 16 clients on 2
    instances: 1 thread 555 reads/s, 2 → 725, 4 → 680, 8 → 545, anyio's general pool ~530."""


def read_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kizuna-read")


def _state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.kizuna
    return state


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, and each such hop (queue, wake-up, GIL hand-over) cost more than the dependency.
async def get_state(request: Request) -> ApiState:
    return _state_of(request)


async def get_ctx(request: Request) -> ServiceContext:
    return _state_of(request).ctx


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
    sessions = _state_of(request).sessions
    token = credentials.credentials
    if sessions.local:
        return sessions.session(token, now=utc_now())
    return await run_in_threadpool(sessions.session, token, now=utc_now())


async def provider_session(session: Annotated[_Session, Depends(current_session)]) -> _Session:
    if not session.has("provider"):
        raise AccessDenied(f"{session.address} is not an active provider")
    return session


async def auditor_session(session: Annotated[_Session, Depends(current_session)]) -> _Session:
    if not session.has("auditor"):
        raise AccessDenied(f"{session.address} does not hold the auditor role")
    return session


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
    chain = _state_of(request).ctx.chain
    if not chain.ledger.is_guardian(ward, session.address):
        raise AccessDenied(f"{session.address} is not a live guardian of {ward} on chain: "
                           "only the patient or a guardian they appointed may act for them")
    return ward


State = Annotated[ApiState, Depends(get_state)]
Ctx = Annotated[ServiceContext, Depends(get_ctx)]
CurrentSession = Annotated[_Session, Depends(current_session)]
ProviderSession = Annotated[_Session, Depends(provider_session)]
AuditorSession = Annotated[_Session, Depends(auditor_session)]
ActingPatient = Annotated[Address, Depends(acting_patient)]

__all__ = ["ActingPatient", "ApiState", "AuditorSession", "Ctx", "CurrentSession",
           "ProviderSession", "State"]
