"""Sign-In with Ethereum (EIP-4361) and sessions.

The flow: ``GET /auth/nonce`` gives a fresh server nonce (stored, single use, valid for
``siwe_nonce_ttl_s``); the wallet signs an EIP-4361 message naming this service's domain and URI,
the chain id and that nonce; ``POST /auth/login`` with the message and the signature checks, in
order: the message parses (``siwe`` library, ABNF grammar), domain, URI, chain id, dates
(``Issued At`` not in the future nor older than ``siwe_max_age_s``, ``Expiration Time``,
``Not Before``), the signature (EIP-191 recovery must give the message's address), then spends the
nonce atomically (a replayed login finds it spent). A session token (32 random bytes, url-safe)
is returned once; the database keeps only ``HMAC-SHA256(session_secret, token)``.

Roles are read from the chain **at use, not at login** (design.md, trust model rule 6), by
:func:`live_roles` from the event index synced to the node's head (one ``eth_getBlockByNumber``
when nothing is new, then two indexed SQLite reads):

* ``patient`` — every address (anyone may own records);
* ``provider`` — active in the ``ProviderRegistry`` (registered, not suspended);
* ``auditor`` — holds ``keccak256("KIZUNA_AUDITOR_ROLE")`` in ``AccessLog``'s AccessControl.
  ``AccessLog`` declares only ``ANCHOR_ROLE``, but OpenZeppelin's ``AccessControl`` accepts any
  role id: the admin grants the auditor role with ``grantRole(AUDITOR_ROLE, account)``;
* ``registrar`` — holds ``REGISTRAR_ROLE`` (``keccak256("KIZUNA_REGISTRAR_ROLE")``) in the
  ``ProviderRegistry``;
* ``guardian`` — appointed (and not expired) by at least one patient in the ``ConsentLedger``;
  ``guardian_of`` lists those patients (from the event index; acting for a ward is checked on
  chain at each request, :func:`kizuna.api.deps.acting_patient`).

A login records the roles the chain gives at that moment (what ``/auth/login`` and
``/auth/me`` show). Each role-gated request (``ProviderSession``, ``AuditorSession``,
``RegistrarSession`` in :mod:`kizuna.api.deps`) reads its role again at the head; the provider's
read route leaves that to the access check, which reads the registry at the head in its own
batch. A role that is gone is refused with 403 (:class:`RoleMissing`: which role, at which
block) and leaves the session for good (:meth:`SessionStore.drop_role`); a session opened for
roles that are now all gone (``patient`` aside) is ended: every later request with its token is
refused with 403 (:class:`SessionEnded`, saying why) until it expires, and the wallet signs in
again for a session with the roles it holds then.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update

from kizuna.api.errors import NotAuthenticated
from kizuna.chain.agents.access_log import AUDITOR_ROLE
from kizuna.chain.agents.registry import REGISTRAR_ROLE
from kizuna.db import Database
from kizuna.db.schema import sessions, siwe_nonces
from kizuna.errors import AccessDenied, InputError
from kizuna.types import Address

if TYPE_CHECKING:  # siwe builds its ABNF grammar at import: each function below imports it
    from siwe import siwe as siwe_lib  # when called, so the API starts without it

    from kizuna.chain.index.fresh import FreshIndex
    from kizuna.chain.index.store import Standing

CHAIN_ROLES: dict[str, tuple[str, bytes]] = {
    "auditor": ("AccessLog", AUDITOR_ROLE),
    "registrar": ("ProviderRegistry", REGISTRAR_ROLE),
}
"""The session roles that are AccessControl roles: (contract, role id)."""


class RoleMissing(AccessDenied):
    """The caller does not hold, at the head, the role a route needs (403)."""


class SessionEnded(AccessDenied):
    """The session was opened for roles the chain no longer gives its address (403)."""


CLOCK_SKEW = timedelta(seconds=30)
"""How far in the future an ``Issued At`` may be (clocks of wallets drift)."""

Role = str  # "patient" | "provider" | "auditor" | "registrar" | "guardian"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is calling: the signed-in address and its roles at login (less those found gone
    since: a route re-reads the role it needs from the chain, see the module docstring)."""

    address: Address
    roles: tuple[Role, ...]
    expires_at: datetime
    guardian_of: tuple[Address, ...] = ()
    key: bytes = field(default=b"", repr=False)
    """The token's HMAC (the row's key), set when the store looked the session up."""

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
    from siwe import siwe as siwe_lib

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
    from siwe import siwe as siwe_lib

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
    from siwe import siwe as siwe_lib

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
    from siwe import siwe as siwe_lib

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


_ENDED = "!"
"""A ``roles`` text starting with it marks an ended session: ``!<role>@<block>`` (role names
and addresses never start with it)."""


def _roles_text(roles: tuple[Role, ...], wards: tuple[Address, ...]) -> str:
    """A session's ``roles`` column: ``role,role[;ward,ward]``."""
    text = ",".join(roles)
    return text + ";" + ",".join(wards) if wards else text


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
        with self._db.write() as conn:
            conn.execute(insert(sessions).values(
                token_hash=token_hash(self._key, token), address=session.address,
                roles=_roles_text(session.roles, session.guardian_of),
                expires_at=_unix(session.expires_at)))
        return token

    def drop_role(self, session: Session, role: Role, *, block: int) -> bool:
        """``session``'s address lost ``role`` on chain (as of ``block``): the session no
        longer names it, and when it was opened for roles that are now all gone (``patient``
        aside) it is ended. True when ended. Kept in the row (``roles``), so every instance
        sharing the database sees it at the next look-up."""
        if not session.key or role not in session.roles:
            return False
        left = tuple(r for r in session.roles if r != role)
        ended = all(r == "patient" for r in left)
        text = (f"{_ENDED}{role}@{block}" if ended
                else _roles_text(left, session.guardian_of))
        with self._db.write() as conn:
            conn.execute(update(sessions).where(sessions.c.token_hash == session.key)
                         .values(roles=text))
        return ended

    def session(self, token: str, *, now: datetime) -> Session:
        """The live session of ``token``; ``NotAuthenticated`` when unknown or expired.

        On every request, so kept to one indexed SELECT through the driver (kizuna.db.driver;
        addresses were checksummed when stored)."""
        row_key = token_hash(self._key, token)
        row = self._db.driver.first(self._by_hash, (row_key,))
        if row is None:
            raise NotAuthenticated("unknown session token")
        address, roles, expires_at = row
        if int(expires_at) <= _unix(now):
            raise NotAuthenticated("session expired; sign in again")
        text = str(roles)
        if text.startswith(_ENDED):
            role, _, block = text[len(_ENDED):].partition("@")
            raise SessionEnded(f"this session was ended: {address} lost the {role} role it was "
                               f"opened with (on chain, as of block {block}); sign in again")
        roles_text, _, wards = text.partition(";")
        return Session(address=cast(Address, address),
                       roles=tuple(r for r in roles_text.split(",") if r),
                       expires_at=_moment(int(expires_at)),
                       guardian_of=tuple(cast(Address, w) for w in wards.split(",") if w),
                       key=row_key)

    def close_session(self, token: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(sessions).where(
                sessions.c.token_hash == token_hash(self._key, token)))


__all__ = [
    "AUDITOR_ROLE",
    "CHAIN_ROLES",
    "REGISTRAR_ROLE",
    "LiveRoles",
    "RoleMissing",
    "Session",
    "SessionEnded",
    "SessionStore",
    "SiweExpectations",
    "live_roles",
    "new_nonce",
    "new_token",
    "parse_message",
    "roles_in",
    "session_expiry",
    "token_hash",
    "utc_now",
    "verify_message",
]


@dataclass(frozen=True, slots=True)
class LiveRoles:
    """The roles of an address at one block (see the module docstring)."""

    roles: tuple[Role, ...]
    guardian_of: tuple[Address, ...]
    block: int


def roles_in(standing: Standing) -> tuple[Role, ...]:
    """The session roles an index :class:`~kizuna.chain.index.store.Standing` gives: the one
    place a role name is tied to its chain fact (guardians aside)."""
    roles: list[Role] = ["patient"]
    if standing.provider_active:
        roles.append("provider")
    roles += [name for name, (contract, role) in CHAIN_ROLES.items()
              if standing.has_role(contract, role)]
    return tuple(roles)


def live_roles(index: FreshIndex, address: Address, *,
               wards: Callable[[Address], list[Address]] | None = None) -> LiveRoles:
    """The roles of ``address`` at the chain head (the event index synced to it first), and
    the patients it is guardian of."""
    standing = index.standing(address)
    roles = list(roles_in(standing))
    guardian_of = tuple(wards(address)) if wards is not None else ()
    if guardian_of:
        roles.append("guardian")
    return LiveRoles(roles=tuple(roles), guardian_of=guardian_of, block=standing.block.number)
