"""The service's side of SMART Health Links: keep a patient's encrypted files, serve them to
whoever holds the link, count passcode guesses, expire, revoke, and record every access.

The service holds JWE files it cannot open (the key is in the link, which it never sees) and a
scrypt hash of the passcode. All state is in the database (``shl_*`` tables), so every instance
of the service answers the same: a wrong guess takes one of ``attempts_left`` with one
conditional ``UPDATE`` (two instances cannot both spend the last one), and a link whose
guesses are spent is locked for everyone.

Answers follow the IG: a manifest is ``POST``-ed with ``{recipient, passcode?,
embeddedLengthMax?}``; a wrong passcode is 401 with ``remainingAttempts``; a link that is no
longer active (revoked, expired, locked) is 404 with the reason in the message; each file is
``embedded`` when it fits ``embeddedLengthMax``, else a ``location`` valid for
:data:`TICKET_TTL_S` seconds. A ``U`` link is one file, fetched with ``GET ?recipient=``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, func, insert, or_, select, update

from kizuna.db import schema as t
from kizuna.errors import AccessDenied, InputError, NotFoundError, QuotaExceeded
from kizuna.sharing.shl import JWE_CONTENT_TYPES, MAX_LABEL, b64url, check_jwe, unb64url
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext

MAX_FILES = 16
MAX_RECIPIENT = 200
DEFAULT_ATTEMPTS = 5
MAX_ATTEMPTS = 100
MIN_PASSCODE = 4
MAX_PASSCODE = 128
TICKET_TTL_S = 3600
"""How long a manifest's file ``location`` may be fetched (the IG: at most one hour)."""
MAX_ACCESSES_SHOWN = 1000
MAX_LIVE_LINKS = 100
"""Links a patient may have live at once (not revoked, not expired): each holds up to
:data:`MAX_FILES` files of the JSON body limit in the store, outside the records' quota."""
_SCRYPT = (1 << 14, 8, 1)  # n, r, p: ~16 MiB and tens of ms a guess


class LinkInactive(NotFoundError):
    """The link is no longer active (404, as the IG says): ``reason`` is revoked, expired or
    locked."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class WrongPasscode(AccessDenied):
    """A wrong (or missing) passcode for a ``P`` link; ``remaining`` guesses are left."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"wrong passcode: {remaining} attempt(s) left before the link locks")
        self.remaining = remaining


@dataclass(frozen=True, slots=True)
class NewFile:
    content_type: str
    jwe: str


@dataclass(frozen=True, slots=True)
class Access:
    at: int
    recipient: str
    outcome: str


@dataclass(slots=True)
class LinkInfo:
    link_id: str
    patient: str
    label: str | None
    flag: str
    expires_at: int | None
    created_at: int
    revoked_at: int | None
    attempts_left: int | None
    files: int
    accesses: list[Access] = field(default_factory=list)

    def state(self, now: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.attempts_left is not None and self.attempts_left <= 0:
            return "locked"
        return "active"


# --- passcodes ------------------------------------------------------------------------------


def hash_passcode(passcode: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64url): what the service keeps of a passcode."""
    n, r, p = _SCRYPT
    salt = os.urandom(16)
    digest = hashlib.scrypt(passcode.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${b64url(salt)}${b64url(digest)}"


def passcode_matches(passcode: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(passcode.encode()[:MAX_PASSCODE * 4],
                         salt=unb64url(salt, field="salt"), n=int(n), r=int(r), p=int(p),
                         dklen=32)
    return hmac.compare_digest(got, unb64url(digest, field="hash"))


# --- the patient's side of the API ------------------------------------------------------------


def register(ctx: ServiceContext, patient: Address, *, files: Sequence[NewFile],
             label: str | None, expires_at: int | None, passcode: str | None,
             max_attempts: int = DEFAULT_ATTEMPTS, direct: bool = False,
             now: int | None = None) -> LinkInfo:
    """Keep a patient's new link: its JWE files into the content store, its row and passcode
    hash into the database. Every input is checked first; nothing is kept on a refusal."""
    now = int(time.time()) if now is None else now
    if not files:
        raise InputError("files", "a link shares at least one file")
    if len(files) > MAX_FILES:
        raise InputError("files", f"at most {MAX_FILES} files a link")
    for i, f in enumerate(files):
        if f.content_type not in JWE_CONTENT_TYPES:
            raise InputError(f"files[{i}].content_type",
                             f"must be one of {', '.join(sorted(JWE_CONTENT_TYPES))}")
        check_jwe(f.jwe, field=f"files[{i}].jwe")
    if label is not None and len(label) > MAX_LABEL:
        raise InputError("label", f"at most {MAX_LABEL} characters")
    if expires_at is not None and expires_at <= now:
        raise InputError("expires_at", "is in the past")
    if passcode is not None and not MIN_PASSCODE <= len(passcode) <= MAX_PASSCODE:
        raise InputError("passcode", f"must be {MIN_PASSCODE} to {MAX_PASSCODE} characters")
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise InputError("max_attempts", f"must be 1 to {MAX_ATTEMPTS}")
    if direct and (passcode is not None or len(files) != 1):
        raise InputError("direct", "a direct (U) link has exactly one file and no passcode")
    flag = ("P" if passcode is not None else "") + ("U" if direct else "")
    with ctx.db.read() as conn:
        live = conn.execute(select(func.count()).select_from(t.shl_links).where(and_(
            t.shl_links.c.patient == str(patient), t.shl_links.c.revoked_at.is_(None),
            or_(t.shl_links.c.expires_at.is_(None), t.shl_links.c.expires_at > now)))
        ).scalar_one()
    if live >= MAX_LIVE_LINKS:
        raise QuotaExceeded("links", limit=MAX_LIVE_LINKS, used=int(live),
                            message=f"you have {live} live links, the most a patient may "
                            "have: unshare some first (kizuna patient links)")
    cids = ctx.store.put_many([f.jwe.encode("ascii") for f in files])
    link_id = b64url(secrets.token_bytes(32))
    with ctx.db.write() as conn:
        conn.execute(insert(t.shl_links).values(
            link_id=link_id, patient=str(patient), label=label, flag=flag,
            expires_at=expires_at,
            passcode_hash=hash_passcode(passcode) if passcode is not None else None,
            attempts_left=max_attempts if passcode is not None else None,
            created_at=now, revoked_at=None))
        conn.execute(insert(t.shl_files), [
            {"link_id": link_id, "idx": i, "content_type": f.content_type, "cid": str(cid),
             "size": len(f.jwe)} for i, (f, cid) in enumerate(zip(files, cids, strict=True))])
    return LinkInfo(link_id=link_id, patient=str(patient), label=label, flag=flag,
                    expires_at=expires_at, created_at=now, revoked_at=None,
                    attempts_left=max_attempts if passcode is not None else None,
                    files=len(files))


def links_of(ctx: ServiceContext, patient: Address) -> list[LinkInfo]:
    """The patient's links, newest first, each with its accesses (newest first, capped)."""
    with ctx.db.read() as conn:
        rows = conn.execute(select(t.shl_links).where(t.shl_links.c.patient == str(patient))
                            .order_by(t.shl_links.c.created_at.desc())).mappings().all()
        out: list[LinkInfo] = []
        for row in rows:
            files = conn.execute(select(t.shl_files.c.idx).where(
                t.shl_files.c.link_id == row["link_id"])).all()
            accesses = conn.execute(
                select(t.shl_accesses).where(t.shl_accesses.c.link_id == row["link_id"])
                .order_by(t.shl_accesses.c.seq.desc()).limit(MAX_ACCESSES_SHOWN)
            ).mappings().all()
            out.append(LinkInfo(
                link_id=row["link_id"], patient=row["patient"], label=row["label"],
                flag=row["flag"], expires_at=row["expires_at"], created_at=row["created_at"],
                revoked_at=row["revoked_at"], attempts_left=row["attempts_left"],
                files=len(files),
                accesses=[Access(a["at"], a["recipient"], a["outcome"]) for a in accesses]))
    return out


def revoke(ctx: ServiceContext, patient: Address, link_id: str, *,
           now: int | None = None) -> None:
    """End a link of the patient's (404 for a link that is not theirs); its files leave the
    content store's pins, its open file locations end."""
    now = int(time.time()) if now is None else now
    with ctx.db.write() as conn:
        done = conn.execute(update(t.shl_links).where(and_(
            t.shl_links.c.link_id == link_id, t.shl_links.c.patient == str(patient),
            t.shl_links.c.revoked_at.is_(None))).values(revoked_at=now)).rowcount
        if not done:
            exists = conn.execute(select(t.shl_links.c.revoked_at).where(and_(
                t.shl_links.c.link_id == link_id,
                t.shl_links.c.patient == str(patient)))).first()
            if exists is None:
                raise NotFoundError(f"you have no link {link_id[:60]!r}")
            return  # revoked already: revoking twice is the same as once
        conn.execute(delete(t.shl_tickets).where(t.shl_tickets.c.link_id == link_id))
        cids = [r[0] for r in conn.execute(select(t.shl_files.c.cid).where(
            t.shl_files.c.link_id == link_id)).all()]
    for cid in cids:
        ctx.store.unpin(cid)  # the collector removes the blocks (kizuna.storage.gc)


# --- the reader's side (no session) ----------------------------------------------------------


def _record(ctx: ServiceContext, link_id: str, recipient: str, outcome: str, now: int) -> None:
    with ctx.db.write() as conn:
        conn.execute(insert(t.shl_accesses).values(
            link_id=link_id, at=now, recipient=recipient[:MAX_RECIPIENT], outcome=outcome))


def _active(ctx: ServiceContext, link_id: str, recipient: str, now: int) -> dict[str, object]:
    """The link's row when it is active; :class:`LinkInactive` (recorded) otherwise; an
    unknown id is a plain 404 and records nothing (there is no patient to show it to)."""
    if not isinstance(recipient, str) or not recipient.strip():
        raise InputError("recipient", "say who is opening the link (the IG requires it)")
    if len(recipient) > MAX_RECIPIENT:
        raise InputError("recipient", f"at most {MAX_RECIPIENT} characters")
    with ctx.db.read() as conn:
        row = conn.execute(select(t.shl_links).where(
            t.shl_links.c.link_id == link_id)).mappings().first()
    if row is None:
        raise NotFoundError("no such link: it never existed, or the address is mistyped")
    if row["revoked_at"] is not None:
        _record(ctx, link_id, recipient, "refused-revoked", now)
        raise LinkInactive("revoked", "this link was revoked by the patient")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        _record(ctx, link_id, recipient, "refused-expired", now)
        raise LinkInactive("expired", "this link has expired")
    if row["attempts_left"] is not None and row["attempts_left"] <= 0:
        _record(ctx, link_id, recipient, "refused-locked", now)
        raise LinkInactive("locked", "this link is locked: too many wrong passcodes")
    return dict(row)


def _content(ctx: ServiceContext, cid: str) -> str:
    with ctx.store.get(cid) as stream:
        return stream.read().decode("ascii")


def open_manifest(ctx: ServiceContext, link_id: str, *, recipient: str,
                  passcode: str | None, embedded_max: int | None, base_url: str,
                  now: int | None = None) -> list[dict[str, str]]:
    """The manifest's ``files`` for a reader, after the passcode (a ``P`` link) is right."""
    now = int(time.time()) if now is None else now
    row = _active(ctx, link_id, recipient, now)
    if "U" in str(row["flag"]):
        _record(ctx, link_id, recipient, "refused-direct-only", now)
        raise InputError("link", "this is a direct (U) link: GET it with ?recipient=")
    stored = row["passcode_hash"]
    if stored is not None and (passcode is None
                               or not passcode_matches(passcode, str(stored))):
        with ctx.db.write() as conn:
            spent = conn.execute(update(t.shl_links).where(and_(
                t.shl_links.c.link_id == link_id, t.shl_links.c.attempts_left > 0))
                .values(attempts_left=t.shl_links.c.attempts_left - 1)
                .returning(t.shl_links.c.attempts_left)).first()
            conn.execute(insert(t.shl_accesses).values(
                link_id=link_id, at=now, recipient=recipient,
                outcome="wrong-passcode" if spent is not None else "refused-locked"))
        if spent is None:
            raise LinkInactive("locked", "this link is locked: too many wrong passcodes")
        raise WrongPasscode(int(spent[0]))
    with ctx.db.read() as conn:
        files = conn.execute(select(t.shl_files).where(t.shl_files.c.link_id == link_id)
                             .order_by(t.shl_files.c.idx)).mappings().all()
    out: list[dict[str, str]] = []
    tickets: list[dict[str, object]] = []
    for f in files:
        if embedded_max is not None and f["size"] <= embedded_max:
            out.append({"contentType": f["content_type"], "embedded": _content(ctx, f["cid"])})
            continue
        ticket = b64url(secrets.token_bytes(32))
        tickets.append({"ticket": ticket, "link_id": link_id, "idx": f["idx"],
                        "recipient": recipient, "expires_at": now + TICKET_TTL_S})
        out.append({"contentType": f["content_type"],
                    "location": f"{base_url.rstrip('/')}/shl/{link_id}/files/{ticket}"})
    with ctx.db.write() as conn:
        if tickets:
            conn.execute(delete(t.shl_tickets).where(t.shl_tickets.c.expires_at < now))
            conn.execute(insert(t.shl_tickets), tickets)
        conn.execute(insert(t.shl_accesses).values(
            link_id=link_id, at=now, recipient=recipient, outcome="manifest"))
    return out


def open_file(ctx: ServiceContext, link_id: str, ticket: str, *,
              now: int | None = None) -> str:
    """The JWE a manifest's ``location`` names, while the ticket and the link are live."""
    now = int(time.time()) if now is None else now
    with ctx.db.read() as conn:
        found = conn.execute(select(t.shl_tickets).where(and_(
            t.shl_tickets.c.ticket == ticket, t.shl_tickets.c.link_id == link_id))
        ).mappings().first()
    if found is None or found["expires_at"] <= now:
        raise NotFoundError("this file location is unknown or has expired: ask for the "
                            "manifest again")
    _active(ctx, link_id, found["recipient"], now)
    with ctx.db.read() as conn:
        cid = conn.execute(select(t.shl_files.c.cid).where(and_(
            t.shl_files.c.link_id == link_id, t.shl_files.c.idx == found["idx"]))).scalar_one()
    _record(ctx, link_id, found["recipient"], "file", now)
    return _content(ctx, str(cid))


def open_direct(ctx: ServiceContext, link_id: str, *, recipient: str,
                now: int | None = None) -> str:
    """The one JWE of a ``U`` link (``GET url?recipient=``)."""
    now = int(time.time()) if now is None else now
    row = _active(ctx, link_id, recipient, now)
    if "U" not in str(row["flag"]):
        _record(ctx, link_id, recipient, "refused-not-direct", now)
        raise InputError("link", "this link is not a direct (U) link: POST for its manifest")
    with ctx.db.read() as conn:
        cid = conn.execute(select(t.shl_files.c.cid).where(and_(
            t.shl_files.c.link_id == link_id, t.shl_files.c.idx == 0))).scalar_one()
    _record(ctx, link_id, recipient, "direct", now)
    return _content(ctx, str(cid))


__all__ = ["DEFAULT_ATTEMPTS", "MAX_FILES", "MAX_RECIPIENT", "TICKET_TTL_S", "Access",
           "LinkInactive", "LinkInfo", "NewFile", "WrongPasscode", "hash_passcode",
           "links_of", "open_direct", "open_file", "open_manifest", "passcode_matches",
           "register", "revoke"]
