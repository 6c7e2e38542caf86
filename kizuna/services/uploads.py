"""Chunked uploads: one envelope sent as a session of parts, then registered as a single upload.

A browser cannot stream a request body over HTTP/1.1, so without this it would hold a whole
encrypted file before sending it. With a session it encrypts and sends one part at a time::

    POST   /patient/uploads               record id, scope id, key epoch, size ──► session
                                          (checked as an upload's start: ids, current epoch,
                                          record id free, size under the limit and the quota)
    PUT    /patient/uploads/{id}/parts/{n} part n (in order, ≤ PART_SIZE; all but the last ≥
                                          MIN_PART_SIZE) ──► the content store, pinned
    GET    /patient/uploads/{id}          how far it got (resume after a dropped part)
    POST   /patient/uploads/{id}/complete the registration ──► the parts streamed, in order,
                                          through :func:`kizuna.services.records.upload_record`
                                          (the same intake, checks, registration and row as
                                          ``PUT /patient/records/{id}``) ──► the parts released
    DELETE /patient/uploads/{id}          abort: the parts released

A session is its owner's only (someone else's id answers 404, as an unknown one does). A
failed ``complete`` (a node down, a refused signature) keeps the session, so it can be
completed again; sessions untouched for the staging TTL are swept (:class:`UploadSweeper`,
the mechanism of :class:`kizuna.services.batches.StagedSweeper`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from kizuna.background import Sweep
from kizuna.chain.eip712 import SignedAction
from kizuna.db.records import load_record
from kizuna.db.schema import upload_parts, upload_sessions
from kizuna.errors import ConflictError, InputError, NotFoundError, QuotaExceeded
from kizuna.services.onchain import checked_address, checked_bytes32
from kizuna.services.quotas import room_for
from kizuna.services.records import (
    ALLOWED_CONTENT_TYPES,
    DEFAULT_MAX_ENVELOPE_BYTES,
    current_epoch,
    release_blobs,
    upload_record,
)
from kizuna.types import Address, Cid, RecordId, ScopeId
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.records import PART_SIZE, EnvelopeTooLarge, RecordInfo

if TYPE_CHECKING:
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext

log = logging.getLogger(__name__)

MIN_PART_SIZE = 1 << 20
"""The smallest part but the last (1 MiB): a 1 GiB envelope is at most 1,024 parts."""
MAX_OPEN_UPLOADS = 4
"""Sessions one patient may have open at once (their parts are stored until they end)."""


@dataclass(frozen=True, slots=True)
class UploadSession:
    """An upload in progress: what it is for, its declared size, and how far it got."""

    upload_id: str
    patient: Address
    record_id: RecordId
    scope_id: ScopeId
    epoch: int
    size: int
    received: int
    parts: int
    """Parts stored: the next one to send is number ``parts``."""
    created_at: int
    updated_at: int


def _session(row: object) -> UploadSession:
    r = row._mapping  # type: ignore[attr-defined]
    return UploadSession(upload_id=r["upload_id"], patient=Address(r["patient"]),
                         record_id=RecordId(bytes(r["record_id"])),
                         scope_id=ScopeId(bytes(r["scope_id"])), epoch=int(r["epoch"]),
                         size=int(r["size"]), received=int(r["received"]),
                         parts=int(r["parts"]), created_at=int(r["created_at"]),
                         updated_at=int(r["updated_at"]))


def _checked_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or len(upload_id) != 32 \
            or any(c not in "0123456789abcdef" for c in upload_id):
        raise NotFoundError("no such upload")
    return upload_id


def get_upload(ctx: ServiceContext, *, patient: str, upload_id: str) -> UploadSession:
    """The patient's upload session; ``NotFoundError`` for an unknown one and for another
    patient's (whose existence is not told)."""
    owner = checked_address("patient", patient)
    uid = _checked_id(upload_id)
    with ctx.db.read() as conn:
        row = conn.execute(select(upload_sessions).where(
            upload_sessions.c.upload_id == uid)).first()
    if row is None or row.patient != owner:
        raise NotFoundError(f"no upload {uid} of {owner}")
    return _session(row)


def start_upload(ctx: ServiceContext, *, patient: str, record_id: bytes, scope_id: bytes,
                 epoch: int | None, size: int,
                 max_size: int = DEFAULT_MAX_ENVELOPE_BYTES) -> UploadSession:
    """Open a session for one envelope of ``size`` bytes. Checked as the start of an upload
    is: the key epoch is the scope's current one and the record id is free (``ConflictError``),
    the size is positive (``InputError``) and at most ``max_size`` (``EnvelopeTooLarge``) and
    fits the patient's storage quota (``QuotaExceeded``); at most :data:`MAX_OPEN_UPLOADS`
    sessions at once (``ConflictError``: finish or abort one)."""
    owner = checked_address("patient", patient)
    rid = RecordId(checked_bytes32("record_id", record_id))
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError("size", "must be a positive number of bytes")
    if size > max_size:
        raise EnvelopeTooLarge(max_size)
    key_epoch = current_epoch(ctx, owner, sid, epoch)
    if load_record(ctx.db, rid) is not None:
        raise ConflictError(f"record 0x{rid.hex()} exists already")
    room = room_for(ctx.db, ctx.quota, owner)
    if room is not None and size > room:
        raise QuotaExceeded("bytes", limit=ctx.quota.max_bytes,
                            used=ctx.quota.max_bytes - room + size,
                            message=f"{owner} would store {ctx.quota.max_bytes - room + size} "
                                    f"bytes of envelopes, over the quota of "
                                    f"{ctx.quota.max_bytes}")
    now = int(time.time())
    session = UploadSession(upload_id=secrets.token_hex(16), patient=owner, record_id=rid,
                            scope_id=sid, epoch=key_epoch, size=size, received=0, parts=0,
                            created_at=now, updated_at=now)
    with ctx.db.write() as conn:
        open_now = conn.execute(select(func.count()).select_from(upload_sessions).where(
            upload_sessions.c.patient == owner)).scalar_one()
        if open_now >= MAX_OPEN_UPLOADS:
            raise ConflictError(f"{owner} has {open_now} uploads open, the most at once: "
                                "complete or abort one first")
        conn.execute(upload_sessions.insert().values(
            upload_id=session.upload_id, patient=owner, record_id=rid, scope_id=sid,
            epoch=key_epoch, size=size, received=0, parts=0, created_at=now, updated_at=now))
    return session


def _bounded(chunks: Iterable[bytes], limit: int, field: str) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise InputError(field, f"is larger than {limit} bytes")
        yield chunk


def put_part(ctx: ServiceContext, *, patient: str, upload_id: str, n: int,
             chunks: Iterable[bytes]) -> UploadSession:
    """Store part ``n`` (streamed into the content store) and append it to the session. Parts
    come in order (``ConflictError`` naming the part expected: after a dropped answer, ask the
    session how far it got); a part is at most :data:`PART_SIZE` bytes, at least
    :data:`MIN_PART_SIZE` unless it is the last, and never takes the total past the declared
    size (``InputError`` naming ``part``)."""
    session = get_upload(ctx, patient=patient, upload_id=upload_id)
    if isinstance(n, bool) or not isinstance(n, int) or n != session.parts:
        raise ConflictError(f"upload {session.upload_id} expects part {session.parts} next, "
                            f"not part {n} ({session.received} of {session.size} bytes stored)")
    left = session.size - session.received
    if left <= 0:
        raise ConflictError(f"upload {session.upload_id} has all its {session.size} bytes: "
                            "complete it")
    counted = [0]

    def counting() -> Iterator[bytes]:
        for chunk in _bounded(chunks, min(PART_SIZE, left), "part"):
            counted[0] += len(chunk)
            yield chunk

    cid = ctx.store.put(counting(), pin=True)
    size = counted[0]
    try:
        if size == 0:
            raise InputError("part", "is empty")
        if size < MIN_PART_SIZE and size < left:
            raise InputError("part", f"is {size} bytes: a part other than the last is at "
                                     f"least {MIN_PART_SIZE} bytes")
        now = int(time.time())
        with ctx.db.write() as conn:
            moved = conn.execute(update(upload_sessions).where(
                upload_sessions.c.upload_id == session.upload_id,
                upload_sessions.c.parts == n).values(
                    parts=n + 1, received=session.received + size, updated_at=now)).rowcount
            if moved != 1:  # aborted, swept or raced by the same part meanwhile
                raise ConflictError(f"upload {session.upload_id} moved on while part {n} "
                                    "was sent: ask how far it got")
            conn.execute(upload_parts.insert().values(
                upload_id=session.upload_id, n=n, cid=cid, size=size))
    except SqlIntegrityError:
        release_blobs(ctx, [cid])
        raise ConflictError(f"part {n} of upload {session.upload_id} is stored already") \
            from None
    except BaseException:
        release_blobs(ctx, [cid])
        raise
    return get_upload(ctx, patient=patient, upload_id=session.upload_id)


def _part_cids(ctx: ServiceContext, upload_id: str) -> list[Cid]:
    with ctx.db.read() as conn:
        return [Cid(c) for c in conn.execute(select(upload_parts.c.cid).where(
            upload_parts.c.upload_id == upload_id).order_by(upload_parts.c.n)).scalars()]


def _parts_stream(ctx: ServiceContext, cids: list[Cid]) -> Iterator[bytes]:
    for cid in cids:
        with ctx.store.get(cid) as stream:
            yield from stream


def complete_upload(
    ctx: ServiceContext,
    *,
    patient: str,
    upload_id: str,
    registration: SignedAction | SentTransaction,
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    allowed_content_types: Iterable[str] = ALLOWED_CONTENT_TYPES,
    relayer: Relayer | None = None,
    supersedes: bytes | None = None,
) -> RecordInfo:
    """Register the session's envelope: its parts, in order, are the envelope of
    :func:`kizuna.services.records.upload_record` (every check, the registration and the row
    are that function's; its errors are this one's). ``ConflictError`` while bytes are
    missing. On success the session and its parts are gone; on failure they are kept (try
    again, or abort)."""
    session = get_upload(ctx, patient=patient, upload_id=upload_id)
    if session.received != session.size:
        raise ConflictError(f"upload {session.upload_id} has {session.received} of its "
                            f"{session.size} bytes: send part {session.parts} first")
    cids = _part_cids(ctx, session.upload_id)
    info = upload_record(ctx, patient=session.patient, record_id=session.record_id,
                         scope_id=session.scope_id, envelope=_parts_stream(ctx, cids),
                         registration=registration, max_size=max_size,
                         allowed_content_types=allowed_content_types, relayer=relayer,
                         supersedes=supersedes, epoch=session.epoch)
    _drop(ctx, [session.upload_id])
    return info


def abort_upload(ctx: ServiceContext, *, patient: str, upload_id: str) -> None:
    """Delete the patient's session and release its parts (``NotFoundError`` as
    :func:`get_upload`)."""
    session = get_upload(ctx, patient=patient, upload_id=upload_id)
    _drop(ctx, [session.upload_id])


def _drop(ctx: ServiceContext, upload_ids: list[str]) -> None:
    if not upload_ids:
        return
    with ctx.db.write() as conn:
        cids = [Cid(c) for c in conn.execute(select(upload_parts.c.cid).where(
            upload_parts.c.upload_id.in_(upload_ids))).scalars()]
        conn.execute(delete(upload_parts).where(upload_parts.c.upload_id.in_(upload_ids)))
        conn.execute(delete(upload_sessions).where(
            upload_sessions.c.upload_id.in_(upload_ids)))
    release_blobs(ctx, cids)


# --- the sweep of abandoned sessions -----------------------------------------------------------


def sweep_uploads(ctx: ServiceContext, *, ttl_s: float, now: float | None = None) -> int:
    """Delete sessions untouched for ``ttl_s`` and release their parts; how many."""
    cutoff = int((time.time() if now is None else now) - ttl_s)
    with ctx.db.read() as conn:
        stale = list(conn.execute(select(upload_sessions.c.upload_id).where(
            upload_sessions.c.updated_at < cutoff)).scalars())
    for start in range(0, len(stale), 500):
        with contextlib.suppress(NotFoundError):
            _drop(ctx, stale[start:start + 500])
    if stale:
        log.info("upload sessions: %d untouched for %.0f s deleted", len(stale), ttl_s)
    return len(stale)


class UploadSweeper(Sweep):
    """:func:`sweep_uploads` every ``interval_s`` seconds on a background thread."""

    def __init__(self, ctx: ServiceContext, *, ttl_s: float, interval_s: float) -> None:
        super().__init__(lambda: sweep_uploads(ctx, ttl_s=ttl_s), name="kizuna-upload-sweep",
                         interval_s=interval_s)


__all__ = [
    "MAX_OPEN_UPLOADS",
    "MIN_PART_SIZE",
    "UploadSession",
    "UploadSweeper",
    "abort_upload",
    "complete_upload",
    "get_upload",
    "put_part",
    "start_upload",
    "sweep_uploads",
]
