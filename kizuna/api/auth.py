"""Sign-In with Ethereum (EIP-4361) and sessions.

The flow: ``GET /auth/nonce`` gives a fresh server nonce (stored, single use, valid for
``siwe_nonce_ttl_s``); the wallet signs an EIP-4361 message naming this service's domain and URI,
the chain id and that nonce; ``POST /auth/login`` with the message and the signature checks, in
order: the message parses (``siwe`` library, ABNF grammar), domain, URI, chain id, dates
(``Issued At`` not in the future nor older than ``siwe_max_age_s``, ``Expiration Time``,
``Not Before``), the signature (EIP-191 recovery must give the message's address), then spends the
nonce atomically (a replayed login finds it spent). A session token (32 random bytes, url-safe)
is returned once; the database keeps only ``HMAC-SHA256(session_secret, token)``.

Roles are read from the chain at login (a session names them; each route still checks what
it needs, and the read path re-checks the chain at the head):

* ``patient`` — every address (anyone may own records);
* ``provider`` — active in the ``ProviderRegistry``;
* ``auditor`` — holds ``keccak256("KIZUNA_AUDITOR_ROLE")`` in ``AccessLog``'s AccessControl.
  ``AccessLog`` declares only ``ANCHOR_ROLE``, but OpenZeppelin's ``AccessControl`` accepts any
  role id: the admin grants the auditor role with ``grantRole(AUDITOR_ROLE, account)``;
* ``guardian`` — appointed (and not expired) by at least one patient in the ``ConsentLedger``;
  ``guardian_of`` lists those patients (from the event index).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from pydantic import ValidationError
from siwe import siwe as siwe_lib
from sqlalchemy import delete, insert, select, update

from kizuna.api.errors import NotAuthenticated
from kizuna.chain.agents.access_log import AUDITOR_ROLE
from kizuna.chain.transactions import node_errors
from kizuna.db import Database
from kizuna.db.schema import sessions, siwe_nonces
from kizuna.errors import InputError
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain


CLOCK_SKEW = timedelta(seconds=30)
"""How far in the future an ``Issued At`` may be (clocks of wallets drift)."""

Role = str  # "patient" | "provider" | "auditor" | "guardian"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is calling: the signed-in address and its roles at login."""

    address: Address
    roles: tuple[Role, ...]
    expires_at: datetime
    guardian_of: tuple[Address, ...] = ()

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class SiweExpectations:
    """What a login message must say to be accepted by this service."""

    domain: str
    uri: str
    chain_id: int
    max_age: timedelta
    nonce_ttl: timedelta


def new_nonce() -> str:
    """A fresh SIWE nonce: 17 alphanumeric characters (the ``siwe`` library's generator)."""
    return str(siwe_lib.generate_nonce())


def new_token() -> str:
    """A fresh session token (shown to the client once, never stored)."""
    return secrets.token_urlsafe(32)


def token_hash(key: bytes, token: str) -> bytes:
    """What the database keeps of a token: ``HMAC-SHA256(session_secret, token)``."""
    return hmac.digest(key, token.encode(), "sha256")  # OpenSSL's one-shot HMAC


def parse_message(message: str) -> siwe_lib.SiweMessage:
    """Parse an EIP-4361 message; ``InputError("message", why)`` when it is not one."""
    if len(message) > 4096:
        raise InputError("message", "is longer than 4096 characters")
    try:
        return siwe_lib.SiweMessage.from_message(message=message, abnf=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError("message", f"not a valid SIWE message ({where}: {first['msg']})") from None
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise InputError("message", f"not a valid SIWE message: {exc}") from None


def verify_message(parsed: siwe_lib.SiweMessage, signature: str, *,
                   expect: SiweExpectations, now: datetime,
                   nonce_issued_at: Callable[[str], datetime | None]) -> None:
    """Check everything but the nonce's single use; ``NotAuthenticated`` says what failed.

    ``nonce_issued_at`` returns when this service issued the nonce (``None``: never, or spent).
    """
    if parsed.domain != expect.domain:
        raise NotAuthenticated(f"SIWE domain {parsed.domain!r} is not {expect.domain!r}")
    if str(parsed.uri) != expect.uri:
        raise NotAuthenticated(f"SIWE URI {parsed.uri!r} is not {expect.uri!r}")
    if int(parsed.chain_id) != expect.chain_id:
        raise NotAuthenticated(f"SIWE chain id {parsed.chain_id} is not {expect.chain_id}")
    issued = siwe_lib.datetime_from_iso8601_string(str(parsed.issued_at))
    if issued > now + CLOCK_SKEW:
        raise NotAuthenticated("SIWE message issued in the future")
    if now - issued > expect.max_age:
        raise NotAuthenticated("SIWE message is too old (Issued At)")
    issued_nonce = nonce_issued_at(parsed.nonce)
    if issued_nonce is None:
        raise NotAuthenticated("SIWE nonce unknown or already used")
    if now - issued_nonce > expect.nonce_ttl:
        raise NotAuthenticated("SIWE nonce expired")
    try:
        parsed.verify(signature, domain=expect.domain, nonce=parsed.nonce, timestamp=now)
    except siwe_lib.ExpiredMessage:
        raise NotAuthenticated("SIWE message expired (Expiration Time)") from None
    except siwe_lib.NotYetValidMessage:
        raise NotAuthenticated("SIWE message not yet valid (Not Before)") from None
    except siwe_lib.VerificationError:
        raise NotAuthenticated("SIWE signature does not match the message's address") from None
    except (ValueError, TypeError) as exc:
        raise InputError("signature", f"not a signature: {exc}") from None


def session_expiry(parsed: siwe_lib.SiweMessage, *, now: datetime, ttl: timedelta) -> datetime:
    """A session ends after ``ttl`` or at the message's expiration time, whichever is first."""
    end = now + ttl
    if parsed.expiration_time is not None:
        end = min(end, siwe_lib.datetime_from_iso8601_string(str(parsed.expiration_time)))
    return end


def utc_now() -> datetime:
    return datetime.now(UTC)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SessionStore:
    """Nonces and sessions in the shared database (so every service instance accepts them)."""

    def __init__(self, db: Database, *, key: bytes) -> None:
        self._db = db
        self._key = key
        self.local = db.dialect == "sqlite"
        """Look-ups are reads of a local file (SQLite), not network round trips."""
        self._by_hash = (f"SELECT {sessions.c.address.name}, {sessions.c.roles.name}, "
                         f"{sessions.c.expires_at.name} FROM {sessions.name} "
                         f"WHERE {sessions.c.token_hash.name} = ?")

    # -- nonces ----------------------------------------------------------------------------------

    def issue_nonce(self, *, now: datetime) -> str:
        nonce = new_nonce()
        with self._db.write() as conn:
            conn.execute(insert(siwe_nonces).values(nonce=nonce, issued_at=_unix(now)))
            # Spent or long-expired nonces are dropped as new ones are issued.
            conn.execute(delete(siwe_nonces).where(siwe_nonces.c.issued_at < _unix(now) - 86400))
        return nonce

    def nonce_issued_at(self, nonce: str) -> datetime | None:
        """When ``nonce`` was issued, ``None`` when unknown or spent."""
        with self._db.read() as conn:
            row = conn.execute(select(siwe_nonces.c.issued_at, siwe_nonces.c.used_at)
                               .where(siwe_nonces.c.nonce == nonce)).first()
        if row is None or row.used_at is not None:
            return None
        return _moment(int(row.issued_at))

    def spend_nonce(self, nonce: str, *, now: datetime) -> bool:
        """Mark ``nonce`` used; False when another login spent it first (a replay)."""
        with self._db.write() as conn:
            done = conn.execute(update(siwe_nonces)
                                .where(siwe_nonces.c.nonce == nonce,
                                       siwe_nonces.c.used_at.is_(None))
                                .values(used_at=_unix(now)))
        return done.rowcount == 1

    # -- sessions --------------------------------------------------------------------------------

    def open_session(self, session: Session) -> str:
        """Store ``session``; return its token (shown once)."""
        token = new_token()
        roles = ",".join(session.roles)
        if session.guardian_of:
            roles += ";" + ",".join(session.guardian_of)
        with self._db.write() as conn:
            conn.execute(insert(sessions).values(
                token_hash=token_hash(self._key, token), address=session.address,
                roles=roles, expires_at=_unix(session.expires_at)))
        return token

    def session(self, token: str, *, now: datetime) -> Session:
        """The live session of ``token``; ``NotAuthenticated`` when unknown or expired.

        On every request, so kept to one indexed SELECT through the driver (kizuna.db.driver;
        addresses were checksummed when stored)."""
        row = self._db.driver.first(self._by_hash, (token_hash(self._key, token),))
        if row is None:
            raise NotAuthenticated("unknown session token")
        address, roles, expires_at = row
        if int(expires_at) <= _unix(now):
            raise NotAuthenticated("session expired; sign in again")
        roles_text, _, wards = str(roles).partition(";")
        return Session(address=cast(Address, address),
                       roles=tuple(r for r in roles_text.split(",") if r),
                       expires_at=_moment(int(expires_at)),
                       guardian_of=tuple(cast(Address, w) for w in wards.split(",") if w))

    def close_session(self, token: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(sessions).where(
                sessions.c.token_hash == token_hash(self._key, token)))


__all__ = [
    "AUDITOR_ROLE",
    "Session",
    "SessionStore",
    "SiweExpectations",
    "chain_roles",
    "new_nonce",
    "new_token",
    "parse_message",
    "session_expiry",
    "token_hash",
    "utc_now",
    "verify_message",
]


def chain_roles(chain: Chain, address: Address, *,
                wards: Callable[[Address], list[Address]] | None = None
                ) -> tuple[tuple[Role, ...], tuple[Address, ...]]:
    """The roles of ``address`` read from the chain now, and the patients it is guardian of."""
    roles: list[Role] = ["patient"]
    with node_errors(chain.decoder):
        if chain.registry.is_active_provider(address):
            roles.append("provider")
        access_log = chain.contract("AccessLog")
        if access_log.functions.hasRole(AUDITOR_ROLE, address).call():
            roles.append("auditor")
    guardian_of = tuple(wards(address)) if wards is not None else ()
    if guardian_of:
        roles.append("guardian")
    return tuple(roles), guardian_of
