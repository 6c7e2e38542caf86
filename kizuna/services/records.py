"""A patient's records on the service side: upload an envelope, register it, list, download.

The service receives only envelopes (docs/envelope.md): ciphertext + capsule, encrypted on the
patient's side. An upload::

    envelope stream ──► intake: preamble checked (magic, version, record id, content type),
                        size counted (limit → EnvelopeTooLarge), SHA-256 commitment computed
                    ──► content store (streamed: constant memory)      → CID
                    ──► chain: the patient's signed RegisterRecord relayed (its commitment must
                        equal the computed one), or the patient's own registerRecord tx awaited
                        and its RecordRegistered event checked
                    ──► ``records`` row (only now: the chain confirmed)

On any failure after the store accepted the bytes (chain node down, a refused signature, an event
that does not match) the blob is unpinned and no row is written, so nothing is half-registered
and a retry with the same envelope starts from scratch. That lifecycle — store, confirm, then
re-pin and row in one write transaction, release on failure — is :func:`keep_stored`, which
care messages and batch staging use too. A retry whose first attempt did reach
the chain (the answer was lost) is recognised: the record is on-chain with this commitment for
this patient, so the row is written without a second registration.

The server never learns a record's scope *label*: it stores the blinded scope id only; the
patient's side maps its labels to ids (``kizuna.crypto.scopes``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from sqlalchemy import Connection, and_, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from kizuna.access.check import registered_status
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.relayer import RelayRefused
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db.records import load_record, load_records, record_from_row
from kizuna.db.schema import (
    care_messages,
    data_request_deliveries,
    data_requests,
    record_batches,
    shl_files,
    staged_envelopes,
    upload_parts,
)
from kizuna.db.schema import records as records_table
from kizuna.errors import (
    AccessDenied,
    ConflictError,
    EnvelopeFormatError,
    InputError,
    NotFoundError,
    StorageError,
)
from kizuna.services.onchain import (
    checked_address,
    checked_bytes32,
    prepare,
    require_event,
    signed_field,
    submit,
)
from kizuna.services.quotas import metered, room_for
from kizuna.storage.envelope import MAX_PREAMBLE_SIZE, TAG_SIZE, EnvelopeHeader, read_header
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId
from kizuna.wire.onchain import PreparedAction, SentTransaction
from kizuna.wire.records import MAX_BULK_RECORD_BYTES, EnvelopeTooLarge, RecordInfo

if TYPE_CHECKING:
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext

DEFAULT_MAX_ENVELOPE_BYTES = 1 << 30
"""1 GiB: a large DICOM study fits; the API passes its configured limit."""

ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset({
    "application/fhir+json",
    "application/fhir+ndjson",
    "application/pdf",
    "application/dicom",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/tiff",
    "image/webp",
    "text/plain",
    "application/octet-stream",
})
"""Media types (parameters ignored) an envelope may declare: FHIR, documents, images, DICOM."""

_READ_CHUNK = 1 << 18


# --- the intake: checks and hashes an envelope while it streams into the store ----------------


class EnvelopeIntake:
    """Wraps an upload stream: checks the preamble, counts bytes, computes the commitment.

    Iterate :meth:`chunks` into the content store; once it is exhausted, ``header``,
    ``size`` and ``commitment`` are known. Any check failing raises from inside the iteration,
    so the store's put aborts and keeps nothing.
    """

    def __init__(self, *, record_id: RecordId, max_size: int,
                 allowed_content_types: Iterable[str] = ALLOWED_CONTENT_TYPES) -> None:
        self.record_id = record_id
        self.max_size = max_size
        self.allowed = frozenset(t.lower() for t in allowed_content_types)
        self._hasher = CommitmentHasher()
        self.header: EnvelopeHeader | None = None

    @property
    def size(self) -> int:
        return self._hasher.size

    @property
    def commitment(self) -> Commitment:
        return self._hasher.commitment

    def chunks(self, source: Iterable[bytes]) -> Iterator[bytes]:
        head = bytearray()
        for chunk in source:
            if not chunk:
                continue
            if self._hasher.size + len(head) + len(chunk) > self.max_size:
                raise EnvelopeTooLarge(self.max_size)
            if self.header is None:
                head += chunk
                if len(head) < MAX_PREAMBLE_SIZE:
                    continue
                self._check_preamble(bytes(head))
                chunk, head = bytes(head), bytearray()
            self._hasher.update(chunk)
            yield chunk
        if self.header is None:
            self._check_preamble(bytes(head))
            self._hasher.update(bytes(head))
            yield bytes(head)
        assert self.header is not None
        if self._hasher.size < self.header.size + TAG_SIZE:
            raise EnvelopeFormatError("the envelope has a header but no segments")
        self._hasher.finish()

    def _check_preamble(self, head: bytes) -> None:
        header = read_header(head)  # EnvelopeFormatError: magic, version, lengths, truncation
        if header.record_id != self.record_id:
            raise InputError("envelope", f"its header names record 0x{header.record_id.hex()}, "
                                         f"not 0x{self.record_id.hex()}")
        base = header.content_type.split(";", 1)[0].strip().lower()
        if base not in self.allowed:
            raise InputError("envelope", f"content type {header.content_type!r} is not accepted "
                                         f"(accepted: {', '.join(sorted(self.allowed))})")
        self.header = header


def envelope_chunks(source: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]
                    ) -> Iterable[bytes]:
    """An upload as chunks of at most 256 KiB: bytes sliced, a file read, an iterable as is."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return (data[i:i + _READ_CHUNK] for i in range(0, max(len(data), 1), _READ_CHUNK))
    read = getattr(source, "read", None)
    if read is not None:
        return iter(lambda: read(_READ_CHUNK), b"")
    return source


# --- upload -----------------------------------------------------------------------------------


def upload_record(
    ctx: ServiceContext,
    *,
    patient: str,
    record_id: bytes,
    scope_id: bytes,
    envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
    registration: SignedAction | SentTransaction,
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    allowed_content_types: Iterable[str] = ALLOWED_CONTENT_TYPES,
    relayer: Relayer | None = None,
    supersedes: bytes | None = None,
    epoch: int | None = None,
) -> RecordInfo:
    """Store ``envelope`` and register it on-chain for ``patient``; the row last.

    ``registration`` is the patient's signed ``RegisterRecord`` (relayed; it must name this
    patient, record id and scope, and its commitment must equal the envelope's) or the hash of
    a ``registerRecord`` transaction the patient's wallet sent (its ``RecordRegistered`` event
    must match). With ``supersedes`` the record is a new version of that (own, current) record:
    the signature names it, and ``RecordSuperseded`` must be in the receipt too. ``epoch`` is
    the scope key epoch the envelope is encrypted to: it must be the scope's current one
    (``ConflictError`` otherwise; ``None`` counts as 0). A signature
    needs the service's ``relayer``. Raises ``ConflictError`` when the record id is taken,
    ``QuotaExceeded`` when the patient's storage quota (``ctx.quota``) or the relayer's gas
    budget for them is used up (before the body is read), ``EnvelopeTooLarge``,
    ``EnvelopeFormatError`` / ``InputError`` for a bad envelope,
    ``NodeUnreachable`` / ``StoreUnavailable`` when a dependency is down (nothing kept then).
    """
    owner = checked_address("patient", patient)
    rid = RecordId(checked_bytes32("record_id", record_id))
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    old = RecordId(checked_bytes32("supersedes", supersedes)) if supersedes is not None else None
    key_epoch = current_epoch(ctx, owner, sid, epoch)
    if old is not None:
        _check_supersedable(ctx, owner, old, rid)
    if isinstance(registration, SignedAction):
        _check_signed_registration(registration, owner, rid, sid, old)
    elif not isinstance(registration, SentTransaction):
        raise TypeError(f"registration must be a SignedAction or SentTransaction, "
                        f"not {type(registration).__name__}")
    if _row(ctx, rid) is not None:
        raise ConflictError(f"record 0x{rid.hex()} exists already")
    # Quotas before a byte is read: the wallet's storage, the relayer's gas for it today.
    room = room_for(ctx.db, ctx.quota, owner)
    if isinstance(registration, SignedAction) and relayer is not None:
        relayer.require_budget(owner)

    intake = EnvelopeIntake(record_id=rid, max_size=max_size,
                            allowed_content_types=allowed_content_types)
    cid = store_envelope(ctx, intake, envelope, wallet=owner, room=room)
    header = intake.header
    assert header is not None

    def register() -> None:
        _register(ctx, relayer, owner, rid, sid, intake.commitment, registration, old)

    def row(conn: Connection, _: None) -> RecordInfo:
        info = RecordInfo(record_id=rid, patient=owner, scope_id=sid, cid=cid,
                          commitment=intake.commitment, size=intake.size,
                          content_type=header.content_type, created_at=int(time.time()),
                          epoch=key_epoch)
        conn.execute(records_table.insert().values(
            record_id=rid, patient=owner, scope_id=sid, cid=cid, commitment=info.commitment,
            size=info.size, content_type=info.content_type, created_at=info.created_at,
            epoch=info.epoch))
        return info

    try:
        return keep_stored(ctx, [cid], confirm=register, rows=row)
    except SqlIntegrityError:
        raise ConflictError(f"record 0x{rid.hex()} exists already") from None


def current_epoch(ctx: ServiceContext, patient: Address, scope_id: ScopeId,
                  declared: int | None) -> int:
    """The scope key epoch the envelope says it is encrypted to (``None``: 0, a client that
    predates epochs), which must be the scope's epoch at the head (docs/keys.md "Epochs"):
    after a revocation, a record encrypted to an old epoch's key would be open to whoever kept
    that epoch's fragments. ``ConflictError`` otherwise (re-encrypt to the current epoch)."""
    wanted = 0 if declared is None else checked_epoch("epoch", declared)
    current = ctx.index.scope_epoch(patient, scope_id)
    if wanted != current:
        raise ConflictError(f"scope 0x{scope_id.hex()[:16]}... is in key epoch {current}, the "
                            f"envelope is encrypted to epoch {wanted}: encrypt to the current "
                            "epoch's key (a revocation moved it)")
    return current


def _check_supersedable(ctx: ServiceContext, patient: Address, old: RecordId,
                        new: RecordId) -> None:
    """``old`` is one of ``patient``'s records (here and on chain — registered alone, or in a
    batch of the patient's with the row's proof: ``NotFoundError``) and still current on chain
    (``ConflictError``: a version supersedes only the newest one) — unless ``new`` is on chain
    already (a retry whose first answer was lost)."""
    previous = _row(ctx, old)
    status = registered_status(ctx.chain, previous) if previous is not None else None
    if previous is None or previous.patient != patient or status is None \
            or status.patient != patient:
        raise NotFoundError(f"{patient} has no record 0x{old.hex()} to supersede")
    if status.superseded and ctx.chain.ledger.record_of(new) is None:
        raise ConflictError(f"record 0x{old.hex()} is superseded already: supersede its "
                            "newest version")


# --- the envelope lifecycle (records, care messages, staging) -----------------------------------

_Confirmed = TypeVar("_Confirmed")
_Kept = TypeVar("_Kept")

BLOB_USERS = (
    records_table.c.cid, staged_envelopes.c.cid, upload_parts.c.cid, care_messages.c.cid,
    record_batches.c.manifest_cid, data_requests.c.note_cid, data_request_deliveries.c.cid,
    shl_files.c.cid,
)
"""Every column that names a blob of the content store: a blob one of them names is in use
and is never released."""


def store_envelope(ctx: ServiceContext, intake: EnvelopeIntake,
                   envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes], *,
                   wallet: Address, room: int | None) -> Cid:
    """Stream ``envelope`` through ``intake`` (preamble, size, commitment) into the store,
    pinned, metered against ``wallet``'s storage quota (``room``: :func:`room_for`'s answer,
    asked before any byte was read). The first step of the lifecycle (:func:`keep_stored`)."""
    return ctx.store.put(intake.chunks(metered(envelope_chunks(envelope), wallet=wallet,
                                               quota=ctx.quota, room=room)), pin=True)


def keep_stored(ctx: ServiceContext, cids: Sequence[Cid], *,
                confirm: Callable[[], _Confirmed],
                rows: Callable[[Connection, _Confirmed], _Kept]) -> _Kept:
    """The rest of an envelope's lifecycle once the store holds ``cids`` (pinned): ``confirm``
    (the chain's event, say), then in ONE write transaction the blobs pinned again and
    ``rows(conn, confirmed)`` written; its answer is returned. On any failure (``confirm``'s,
    the rows', a ``SqlIntegrityError`` the caller turns into a conflict) the blobs no row uses
    are released (:func:`release_blobs`) and the error propagates.

    The same envelope sent twice at once has one CID. When one attempt fails while the other
    is between its store and its row, the loser's release and the winner's re-pin + row are
    two write transactions, so they never interleave: either the release sees the winner's row
    and keeps the blob, or it ran first and the re-pin restores it (SQLite's write transactions
    are exclusive; on PostgreSQL a narrow window remains)."""
    try:
        confirmed = confirm()
        with ctx.db.write() as conn:
            ctx.store.pin_many(cids)  # one flush for a staging request's ~500
            return rows(conn, confirmed)
    except BaseException:
        release_blobs(ctx, cids)
        raise


def release_blob(ctx: ServiceContext, cid: Cid) -> None:
    """:func:`release_blobs` of one blob."""
    release_blobs(ctx, [cid])


def release_blobs(ctx: ServiceContext, cids: Iterable[Cid]) -> None:
    """Unpin blobs after a failed upload, message or staging (or a staged envelope or an upload
    session that expired) — except those a row uses (:data:`BLOB_USERS`: a record, a staged
    envelope, an upload's part, a care message...): the same envelope uploaded twice at once
    has one CID, and the attempt that lost must not unpin what the one that won kept. The check
    and the unpin run in a write transaction, as do the winner's pin and row insert
    (:func:`keep_stored`), so the two never interleave."""
    wanted = list(dict.fromkeys(cids))
    if not wanted:
        return
    with ctx.db.write() as conn:  # serialised with the winner's pin + insert (keep_stored)
        used: set[str] = set()
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            for column in BLOB_USERS:
                used.update(conn.execute(select(column).where(column.in_(part))).scalars())
        for cid in wanted:
            if cid not in used:
                with contextlib.suppress(StorageError):
                    ctx.store.unpin(cid)


def _check_signed_registration(action: SignedAction, patient: Address, record_id: RecordId,
                               scope_id: ScopeId, supersedes: RecordId | None) -> None:
    if action.kind != "RegisterRecord":
        raise InputError("signature", f"a {action.kind} signature cannot register a record")
    if signed_field(action, "patient", "address") != patient:
        raise InputError("signature", f"signed for patient {action.patient}, not {patient}")
    if signed_field(action, "recordId", "bytes32") != record_id:
        raise InputError("signature", "signed for another record id")
    if signed_field(action, "scopeId", "bytes32") != scope_id:
        raise InputError("signature", "signed for another scope id")
    signed_old = signed_field(action, "supersedes", "bytes32")
    if signed_old != (supersedes if supersedes is not None else bytes(32)):
        raise InputError("signature", "signed for another superseded record"
                         if supersedes is not None or any(signed_old)
                         else "signed as a new version, but nothing is superseded")
    signed_field(action, "commitment", "bytes32")
    signed_field(action, "deadline", "uint")


def _register(ctx: ServiceContext, relayer: Relayer | None, patient: Address,
              record_id: RecordId, scope_id: ScopeId, commitment: Commitment,
              registration: SignedAction | SentTransaction,
              supersedes: RecordId | None) -> None:
    if isinstance(registration, SignedAction):
        signed = signed_field(registration, "commitment", "bytes32")
        if signed != commitment:
            raise InputError("signature", "the signed commitment is not the envelope's "
                                          f"(signed 0x{signed.hex()}, computed "
                                          f"0x{commitment.hex()})")
    try:
        receipt = submit(ctx.chain, relayer, registration)
    except RelayRefused:
        # Its nonce is spent or the id is taken: maybe an earlier attempt with this very
        # signature reached the chain and only its answer was lost (then the row is due).
        if _already_registered(ctx, patient, record_id, commitment):
            return
        raise
    require_event(ctx.chain, receipt, "RecordRegistered", expected={
        "patient": patient, "recordId": record_id, "commitment": commitment,
        "scopeId": scope_id})
    if supersedes is not None:
        require_event(ctx.chain, receipt, "RecordSuperseded", expected={
            "patient": patient, "oldRecordId": supersedes, "newRecordId": record_id})


def _already_registered(ctx: ServiceContext, patient: Address, record_id: RecordId,
                        commitment: Commitment) -> bool:
    """Whether ``record_id`` was registered alone for ``patient`` with ``commitment`` (an
    earlier attempt whose answer was lost); ``ConflictError`` when the id is taken otherwise —
    also by a leaf of a batch (the index's row of the id; the ledger cannot tell)."""
    status = ctx.chain.ledger.record_of(record_id)
    if status is None:
        return False
    if status.patient != patient:
        raise ConflictError(f"record 0x{record_id.hex()} is registered to another patient")
    record = ctx.index.registration(record_id)  # by id, registered alone or in a batch
    if record is not None and record.batch_root is not None:
        raise ConflictError(f"record 0x{record_id.hex()} is registered already, in batch "
                            f"0x{record.batch_root.hex()}")
    if record is not None and record.patient == patient:
        if record.commitment != commitment:
            raise ConflictError(f"record 0x{record_id.hex()} is registered with another "
                                "commitment")
        return True
    raise ConflictError(f"record 0x{record_id.hex()} is registered already")


def prepare_registration(ctx: ServiceContext, *, patient: str, record_id: bytes,
                         commitment: bytes, scope_id: bytes, deadline: int,
                         supersedes: bytes | None = None) -> PreparedAction:
    """For a wallet: the ``registerRecord`` transaction and the ``RegisterRecord`` typed data
    (gasless, nonce read from the chain). The client computed ``commitment`` itself."""
    owner = checked_address("patient", patient)
    rid = RecordId(checked_bytes32("record_id", record_id))
    com = Commitment(checked_bytes32("commitment", commitment))
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    old = RecordId(checked_bytes32("supersedes", supersedes)) if supersedes is not None else None
    ledger = ctx.chain.ledger
    call = (ledger.register_record_call(rid, com, sid, sender=owner) if old is None
            else ledger.supersede_record_call(old, rid, com, sid, sender=owner))
    typed = ledger.register_record_typed_data(patient=owner, record_id=rid, commitment=com,
                                              scope_id=sid, deadline=deadline, supersedes=old)
    return prepare(ctx.chain, call, sender=owner, typed=typed)


# --- reading the service's records ------------------------------------------------------------


def _row(ctx: ServiceContext, record_id: RecordId) -> RecordInfo | None:
    return load_record(ctx.db, record_id)


def get_record(ctx: ServiceContext, record_id: bytes) -> RecordInfo:
    """The record's row, or ``NotFoundError``."""
    rid = RecordId(checked_bytes32("record_id", record_id))
    info = _row(ctx, rid)
    if info is None:
        raise NotFoundError(f"no record 0x{rid.hex()}")
    return info


def list_records(ctx: ServiceContext, *, patient: str,
                 scope_ids: Sequence[bytes] | None = None,
                 content_type: str | None = None, since: int | None = None,
                 until: int | None = None) -> list[RecordInfo]:
    """A patient's records, oldest first; optionally only some scopes, one media type (base
    type, parameters ignored) or an upload-time range ``[since, until)``."""
    owner = checked_address("patient", patient)
    conditions = [records_table.c.patient == owner]
    if scope_ids is not None:
        ids = [checked_bytes32(f"scope_ids[{i}]", s) for i, s in enumerate(scope_ids)]
        if not ids:
            return []
        conditions.append(records_table.c.scope_id.in_(ids))
    if since is not None:
        conditions.append(records_table.c.created_at >= since)
    if until is not None:
        conditions.append(records_table.c.created_at < until)
    with ctx.db.read() as conn:
        rows = conn.execute(select(records_table).where(and_(*conditions)).order_by(
            records_table.c.created_at, records_table.c.record_id)).all()
    found = [record_from_row(row) for row in rows]
    if content_type is not None:
        wanted = content_type.split(";", 1)[0].strip().lower()
        found = [r for r in found if r.content_type.split(";", 1)[0].strip().lower() == wanted]
    return found


def readable_records(ctx: ServiceContext, *, provider: str, patient: str | None = None,
                     content_type: str | None = None, since: int | None = None,
                     until: int | None = None) -> list[RecordInfo]:
    """The records ``provider`` may read now: the current versions (not superseded) in a scope
    with a live grant, as of the chain head (each read is decided again, at its own head, by
    the access check)."""
    grantee = checked_address("provider", provider)
    only = checked_address("patient", patient) if patient is not None else None
    scopes: dict[Address, list[bytes]] = {}
    for grant in ctx.index.grants_to(grantee):
        if only is None or grant.patient == only:
            scopes.setdefault(grant.patient, []).append(bytes(grant.scope_id))
    found: list[RecordInfo] = []
    for owner, ids in sorted(scopes.items()):
        current = {bytes(r.record_id) for r in ctx.index.records_of(owner)}  # not superseded
        found += [r for r in list_records(ctx, patient=owner, scope_ids=ids,
                                          content_type=content_type, since=since, until=until)
                  if bytes(r.record_id) in current]
    return found


def get_own_record(ctx: ServiceContext, *, patient: str, record_id: bytes) -> RecordInfo:
    """One of the patient's own records by id — a primary-key lookup, whatever the number of
    records the patient has (``NotFoundError`` for an unknown id, ``AccessDenied`` for a record
    of someone else)."""
    owner = checked_address("patient", patient)
    info = get_record(ctx, record_id)
    if info.patient != owner:
        raise AccessDenied(f"record 0x{info.record_id.hex()} is not {owner}'s")
    return info


def registered_block(ctx: ServiceContext, record_id: bytes) -> int | None:
    """The block whose ``RecordRegistered`` event registered ``record_id`` — for a record of a
    batch, its batch's ``RecordBatchRegistered`` (from the event index, which has the batch's
    records once it has its manifest) —, ``None`` when the index has none. A hint for clients:
    they read the event from that one block of their own node instead of scanning the chain
    for it."""
    found = ctx.index.registration(RecordId(checked_bytes32("record_id", record_id)))
    return found.block_number if found is not None else None


MAX_BULK_RECORDS = 256
"""Records one bulk download may name."""


def own_envelopes(ctx: ServiceContext, *, patient: str,
                  record_ids: Sequence[bytes]) -> Iterator[tuple[RecordInfo, bytes]]:
    """The envelopes of some of the patient's own records, in the order asked: the bulk path
    of a history read back (one request for many records, not one each). Every id is checked
    before anything is read (``NotFoundError``, ``AccessDenied`` as :func:`get_own_record`;
    ``InputError`` naming ``record_ids`` for none, too many or an envelope larger than
    :data:`MAX_BULK_RECORD_BYTES`); then one envelope at a time is read from the store."""
    if not record_ids:
        raise InputError("record_ids", "name at least one record")
    if len(record_ids) > MAX_BULK_RECORDS:
        raise InputError("record_ids", f"at most {MAX_BULK_RECORDS} records at once, "
                                        f"got {len(record_ids)}")
    owner = checked_address("patient", patient)
    ids = [RecordId(checked_bytes32("record_ids", r)) for r in record_ids]
    rows = load_records(ctx.db, list(ids))  # one query for all, not one each
    infos = []
    for rid in ids:  # the errors of get_own_record, in the order asked
        info = rows.get(bytes(rid))
        if info is None:
            raise NotFoundError(f"no record 0x{rid.hex()}")
        if info.patient != owner:
            raise AccessDenied(f"record 0x{info.record_id.hex()} is not {owner}'s")
        infos.append(info)
    for info in infos:
        if info.size > MAX_BULK_RECORD_BYTES:
            raise InputError("record_ids", f"record 0x{info.record_id.hex()} is {info.size} "
                                            "bytes: download it alone (streamed)")

    def envelopes() -> Iterator[tuple[RecordInfo, bytes]]:
        for info in infos:
            with ctx.store.get(info.cid) as stream:
                yield info, stream.read()

    return envelopes()


def open_own_record(ctx: ServiceContext, *, patient: str, record_id: bytes) -> ContentStream:
    """The envelope of one of the patient's own records, as a stream (``AccessDenied`` for a
    record of someone else — reads by others go through the read path and leave receipts)."""
    return ctx.store.get(get_own_record(ctx, patient=patient, record_id=record_id).cid)


__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "MAX_BULK_RECORDS",
    "EnvelopeIntake",
    "current_epoch",
    "envelope_chunks",
    "get_own_record",
    "get_record",
    "keep_stored",
    "list_records",
    "open_own_record",
    "own_envelopes",
    "prepare_registration",
    "readable_records",
    "registered_block",
    "release_blob",
    "release_blobs",
    "store_envelope",
    "upload_record",
]
