"""Sign-In with Ethereum: ``GET /auth/nonce``, ``POST /auth/login``, ``GET /auth/me``,
``POST /auth/logout`` (the logic is in :mod:`kizuna.api.auth`)."""

from __future__ import annotations

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from kizuna.api import auth
from kizuna.api.deps import CurrentSession, State, _bearer
from kizuna.api.errors import NotAuthenticated, error_responses
from kizuna.api.schemas import LoginRequest, Me, NonceAnswer, SessionAnswer

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/nonce", response_model=NonceAnswer, responses=error_responses(503))
def nonce(state: State) -> NonceAnswer:
    """A fresh single-use nonce for a SIWE message, and what the message must name."""
    now = auth.utc_now()
    value = state.sessions.issue_nonce(now=now)
    return NonceAnswer(nonce=value, domain=state.siwe.domain, uri=state.siwe.uri,
                       chain_id=state.siwe.chain_id, expires_at=now + state.siwe.nonce_ttl)


@router.post("/login", response_model=SessionAnswer, responses=error_responses(401, 422, 503))
def login(body: LoginRequest, state: State) -> SessionAnswer:
    """Verify a signed SIWE message (domain, URI, chain id, nonce, dates, signature) and open a
    session; the roles come from the chain now (and are read again at every use)."""
    parsed = auth.parse_message(body.message)
    now = auth.utc_now()
    auth.verify_message(parsed, body.signature, expect=state.siwe, now=now,
                        nonce_issued_at=state.sessions.nonce_issued_at)
    if not state.sessions.spend_nonce(parsed.nonce, now=now):
        raise NotAuthenticated("SIWE nonce unknown or already used")
    address = to_checksum_address(str(parsed.address))
    live = auth.live_roles(state.ctx.index, address, wards=state.ctx_wards)
    roles, wards = live.roles, live.guardian_of
    session = auth.Session(address=address, roles=roles, guardian_of=wards,
                           expires_at=auth.session_expiry(parsed, now=now,
                                                          ttl=state.session_ttl))
    token = state.sessions.open_session(session)
    return SessionAnswer(token=token, address=address, roles=list(roles),
                         guardian_of=list(wards), expires_at=session.expires_at)


@router.get("/me", response_model=Me, responses=error_responses(401))
def me(session: CurrentSession) -> Me:
    """Who the session token belongs to."""
    return Me(address=session.address, roles=list(session.roles),
              guardian_of=list(session.guardian_of), expires_at=session.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401))
async def logout(request: Request, session: CurrentSession, state: State) -> None:
    """End this session (the token stops working on every instance)."""
    credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
    if credentials is None:
        raise NotAuthenticated("no token")
    state.sessions.close_session(credentials.credentials)
