"""Data requests: a patient asks a provider for their records (right of access, HIPAA
§164.524 / GDPR Art. 15), and the provider answers, each step a care event on-chain.

A request is structured (FHIR resource types, a period, a deadline in days) plus an optional
note encrypted to the provider's registry key. Its on-chain trace is
``logCareEvent(patient, DataRequested, ref, provider, 0)`` sent by the patient, where ``ref``
is :func:`request_commitment` — a SHA-256 over the canonical JSON of the fields, the note
envelope's commitment and a random nonce, so the chain (and anyone reading it) learns nothing of
what was asked, yet the patient can later prove it by revealing the fields. That event also
opens the request on the ledger for the provider it names (``dataRequestOf``). The provider's
answers (acknowledged, fulfilled in part, fulfilled, declined with a reason) are its own
``answerDataRequest(patient, request id, kind, ref)`` with ``ref`` = :func:`answer_commitment`
(request id, state, reason, the commitments of the envelopes it sends, a nonce). The request is
the provider's authority for these answers — a provider the patient never granted anything
answers it — and only for them: it gives no read access, and the ledger takes no answer after
``fulfilled`` or ``declined`` nor from any other provider (docs/contracts.md "Data requests").

States: ``open`` → ``acknowledged`` → ``fulfilled-in-part`` (any number) → ``fulfilled`` /
``declined``. *Overdue* is not a state that is stored: a request not fulfilled or declined is
overdue once the chain's head time passes ``asked_at + deadline_days`` days (``asked_at`` is the
time of the block that holds the request's event).

A fulfilment's files are envelopes encrypted to the patient's inbox key, uploaded first
(:func:`upload_delivery`) and then named by the answer; the patient's client decrypts them and
registers them as its own records with a Provenance naming the provider and the request
(:mod:`kizuna.client.data_requests`).

The rules both sides apply — the fields, the commitments, the states and which answer may
follow which, the FHIR Task — and the types returned live in :mod:`kizuna.wire.data_requests`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from kizuna.chain.models import CareEventKind, TxReceipt
from kizuna.db.schema import data_request_answers, data_request_deliveries, data_requests
from kizuna.errors import AccessDenied, ConflictError, InputError, NotFoundError
from kizuna.services.onchain import checked_address, checked_bytes32, require_event, wait_for
from kizuna.services.quotas import room_for
from kizuna.services.records import (
    ALLOWED_CONTENT_TYPES,
    EnvelopeIntake,
    keep_stored,
    store_envelope,
)
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId
from kizuna.wire.data_requests import (
    ANSWER_STATES,
    CLOSED,
    MAX_DELIVERY_BYTES,
    MAX_NOTE_BYTES,
    OPEN,
    Answer,
    AskFields,
    DataRequest,
    Delivery,
    answer_commitment,
    can_become,
    check_answer,
    checked_fields,
    request_commitment,
)
from kizuna.wire.onchain import SentTransaction

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext


def _chain_time(ctx: ServiceContext) -> int:
    return int(ctx.index.head().timestamp)


def _block_time(ctx: ServiceContext, receipt: TxReceipt) -> int:
    # the index's block times (kept by hash): the audit log then needs not ask for this block
    return ctx.index.index.block_times.time(receipt.block_number, receipt.block_hash)


def _load(ctx: ServiceContext, rows: Sequence[Any], now: int) -> list[DataRequest]:
    ids = [bytes(r._mapping["request_id"]) for r in rows]
    with ctx.db.read() as conn:
        answers = conn.execute(select(data_request_answers).where(
            data_request_answers.c.request_id.in_(ids)).order_by(
            data_request_answers.c.block_number)).all() if ids else []
        files = conn.execute(select(data_request_deliveries).where(
            data_request_deliveries.c.request_id.in_(ids),
            data_request_deliveries.c.answer_ref.is_not(None)).order_by(
            data_request_deliveries.c.position)).all() if ids else []
    by_answer: dict[bytes, list[Delivery]] = {}
    for f in files:
        m = f._mapping
        by_answer.setdefault(bytes(m["answer_ref"]), []).append(Delivery(
            commitment=Commitment(bytes(m["commitment"])), cid=Cid(m["cid"]),
            content_type=m["content_type"], size=int(m["size"])))
    by_request: dict[bytes, list[Answer]] = {}
    for a in answers:
        m = a._mapping
        ref = bytes(m["ref"])
        by_request.setdefault(bytes(m["request_id"]), []).append(Answer(
            ref=Commitment(ref), state=m["state"], reason=m["reason"], nonce=bytes(m["nonce"]),
            deliveries=tuple(by_answer.get(ref, ())), tx_hash=bytes(m["tx_hash"]),
            block_number=int(m["block_number"]), answered_at=int(m["answered_at"])))
    found = []
    for r in rows:
        m = r._mapping
        found.append(DataRequest(
            request_id=Commitment(bytes(m["request_id"])), patient=m["patient"],
            provider=m["provider"],
            fields=AskFields(types=tuple(json.loads(m["types"])), since=m["since"],
                             until=m["until"], deadline_days=int(m["deadline_days"])),
            nonce=bytes(m["nonce"]),
            note_ref=Commitment(bytes(m["note_ref"])) if m["note_ref"] is not None else None,
            tx_hash=bytes(m["tx_hash"]), block_number=int(m["block_number"]),
            asked_at=int(m["asked_at"]),
            answers=tuple(by_request.get(bytes(m["request_id"]), ())), now=now))
    return found


def get_request(ctx: ServiceContext, request_id: bytes, *, reader: str) -> DataRequest:
    """One request, for its patient or its provider only (anyone else: ``NotFoundError``, as
    if it did not exist: a stranger learns nothing of who asked whom)."""
    who = checked_address("reader", reader)
    rid = checked_bytes32("request", request_id)
    with ctx.db.read() as conn:
        row = conn.execute(select(data_requests).where(
            data_requests.c.request_id == rid)).first()
    if row is None or who not in (row._mapping["patient"], row._mapping["provider"]):
        raise NotFoundError(f"no data request 0x{rid.hex()} of yours")
    return _load(ctx, [row], _chain_time(ctx))[0]


def requests_of_patient(ctx: ServiceContext, patient: str) -> list[DataRequest]:
    """The patient's requests, newest first."""
    who = checked_address("patient", patient)
    with ctx.db.read() as conn:
        rows = conn.execute(select(data_requests).where(data_requests.c.patient == who)
                            .order_by(data_requests.c.block_number.desc())).all()
    return _load(ctx, rows, _chain_time(ctx))


def requests_to_provider(ctx: ServiceContext, provider: str) -> list[DataRequest]:
    """The requests made to a provider, newest first."""
    who = checked_address("provider", provider)
    with ctx.db.read() as conn:
        rows = conn.execute(select(data_requests).where(data_requests.c.provider == who)
                            .order_by(data_requests.c.block_number.desc())).all()
    return _load(ctx, rows, _chain_time(ctx))


# --- the patient asks ---------------------------------------------------------------------------


def ask(ctx: ServiceContext, *, patient: str, provider: str, types: Sequence[str],
        since: str | None, until: str | None, deadline_days: int | None, nonce: bytes,
        note_id: bytes | None, note: bytes | None,
        transaction: SentTransaction) -> DataRequest:
    """Accept a patient's request once its ``DataRequested`` event (sent by the patient, naming
    the provider and :func:`request_commitment` of these fields) is confirmed."""
    owner = checked_address("patient", patient)
    to = checked_address("provider", provider)
    if owner == to:
        raise InputError("provider", "a patient asks a provider, not themselves")
    fields = checked_fields(types=types, since=since, until=until, deadline_days=deadline_days)
    nonce = checked_bytes32("nonce", nonce)
    provider_in_registry(ctx, to)
    if not isinstance(transaction, SentTransaction):
        raise InputError("txHash", "a request is announced by the patient's own transaction")
    if (note is None) != (note_id is None):
        raise InputError("note", "a note needs both its envelope and its id")
    note_ref: Commitment | None = None
    note_cid: Cid | None = None
    if note is not None and note_id is not None:
        if len(note) > MAX_NOTE_BYTES:
            raise InputError("note", f"at most {MAX_NOTE_BYTES} bytes")
        note_cid, note_ref, _, _ = _store_envelope(ctx, owner, note_id, note, MAX_NOTE_BYTES,
                                             field="note")
    ref = request_commitment(patient=owner, provider=to, fields=fields, note_ref=note_ref,
                             nonce=nonce)

    def confirm() -> TxReceipt:
        receipt = wait_for(ctx.chain, transaction)
        require_event(ctx.chain, receipt, "CareEventLogged", expected={
            "patient": owner, "provider": to, "kind": int(CareEventKind.DATA_REQUESTED),
            "actor": owner, "ref": ref})
        return receipt

    def insert_row(conn: Connection, receipt: TxReceipt) -> None:
        conn.execute(data_requests.insert().values(
            request_id=ref, patient=owner, provider=to, types=json.dumps(list(fields.types)),
            since=fields.since, until=fields.until, deadline_days=fields.deadline_days,
            nonce=nonce, note_ref=note_ref, note_cid=note_cid, tx_hash=receipt.tx_hash,
            block_number=receipt.block_number, asked_at=_block_time(ctx, receipt)))

    try:
        keep_stored(ctx, [note_cid] if note_cid is not None else [], confirm=confirm,
                    rows=insert_row)
    except SqlIntegrityError:
        raise ConflictError(f"the data request 0x{ref.hex()} is recorded already") from None
    return get_request(ctx, ref, reader=owner)


def provider_in_registry(ctx: ServiceContext, provider: Address) -> None:
    """``InputError`` on ``provider`` unless it is an active provider of the registry."""
    from kizuna.services.grants import registry_key

    try:
        registry_key(ctx.chain, provider)
    except (NotFoundError, AccessDenied) as exc:
        raise InputError("provider", str(exc)) from None


def _store_envelope(ctx: ServiceContext, owner: Address, message_id: bytes,
                    envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
                    max_size: int, *, field: str) -> tuple[Cid, Commitment, str, int]:
    """Store an envelope (preamble checked, metered against ``owner``'s quota): its CID,
    commitment, content type (from its checked header) and size."""
    room = room_for(ctx.db, ctx.quota, owner)
    intake = EnvelopeIntake(record_id=RecordId(checked_bytes32(field + "_id", message_id)),
                            max_size=max_size, allowed_content_types=ALLOWED_CONTENT_TYPES)
    cid = store_envelope(ctx, intake, envelope, wallet=owner, room=room)
    assert intake.header is not None
    return cid, intake.commitment, intake.header.content_type, intake.size


def open_note(ctx: ServiceContext, *, reader: str, request_id: bytes) -> ContentStream:
    """The note's envelope (encrypted to the provider), for the request's two parties."""
    request = get_request(ctx, request_id, reader=reader)
    with ctx.db.read() as conn:
        cid = conn.execute(select(data_requests.c.note_cid).where(
            data_requests.c.request_id == request.request_id)).scalar()
    if cid is None:
        raise NotFoundError("this request has no note")
    return ctx.store.get(cid)


# --- the provider answers -----------------------------------------------------------------------


def _provider_request(ctx: ServiceContext, provider: str, request_id: bytes) -> DataRequest:
    who = checked_address("provider", provider)
    request = get_request(ctx, request_id, reader=who)
    if request.provider != who:
        raise AccessDenied("only the provider the request is addressed to answers it")
    return request


def upload_delivery(ctx: ServiceContext, *, provider: str, request_id: bytes, message_id: bytes,
                    envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
                    ) -> Delivery:
    """Store one file of a coming fulfilment (encrypted to the patient; not sent until an
    answer names it). Counts against the provider's storage quota."""
    request = _provider_request(ctx, provider, request_id)
    if request.state in CLOSED:
        raise ConflictError(f"the request is {request.state} already")
    cid, commitment, content_type, size = _store_envelope(
        ctx, request.provider, message_id, envelope, MAX_DELIVERY_BYTES, field="message")
    def insert_row(conn: Connection, _confirmed: None) -> None:
        conn.execute(data_request_deliveries.insert().values(
            commitment=commitment, request_id=request.request_id, answer_ref=None,
            position=None, cid=cid, content_type=content_type, size=size,
            uploaded_at=int(time.time())))

    try:
        keep_stored(ctx, [cid], confirm=lambda: None, rows=insert_row)
    except SqlIntegrityError:
        with ctx.db.read() as conn:
            row = conn.execute(select(data_request_deliveries).where(
                data_request_deliveries.c.commitment == commitment)).first()
        if row is None or bytes(row._mapping["request_id"]) != request.request_id:
            raise ConflictError(f"the envelope 0x{commitment.hex()} belongs to another "
                                "request") from None
    return Delivery(commitment=commitment, cid=cid, content_type=content_type, size=size)


def answer(ctx: ServiceContext, *, provider: str, request_id: bytes, state: str,
           reason: str | None, deliveries: Sequence[bytes], nonce: bytes,
           transaction: SentTransaction) -> DataRequest:
    """Accept a provider's answer once its care event (kind of ``state``, sent by the
    provider, naming the patient and :func:`answer_commitment`) is confirmed."""
    request = _provider_request(ctx, provider, request_id)
    files = [Commitment(checked_bytes32(f"deliveries[{i}]", d))
             for i, d in enumerate(deliveries)]
    if len(set(files)) != len(files):
        raise InputError("deliveries", "a file is named twice")
    check_answer(request, state, reason=reason, files=len(files))
    with ctx.db.read() as conn:
        rows = {bytes(r._mapping["commitment"]): r._mapping for r in conn.execute(
            select(data_request_deliveries).where(
                data_request_deliveries.c.commitment.in_(files))).all()} if files else {}
    for i, c in enumerate(files):
        row = rows.get(bytes(c))
        if row is None or bytes(row["request_id"]) != request.request_id:
            raise InputError(f"deliveries[{i}]", f"0x{c.hex()} is no file uploaded for this "
                                                 "request")
        if row["answer_ref"] is not None:
            raise ConflictError(f"deliveries[{i}]: 0x{c.hex()} was sent already")
    nonce = checked_bytes32("nonce", nonce)
    ref = answer_commitment(request_id=request.request_id, state=state, reason=reason,
                            deliveries=files, nonce=nonce)
    if not isinstance(transaction, SentTransaction):
        raise InputError("txHash", "an answer is announced by the provider's own transaction")
    receipt = wait_for(ctx.chain, transaction)
    require_event(ctx.chain, receipt, "CareEventLogged", expected={
        "patient": request.patient, "provider": request.provider,
        "kind": int(ANSWER_STATES[state]), "actor": request.provider, "ref": ref})
    # The ledger's own link of the answer to THIS request (its state is what closed on-chain).
    require_event(ctx.chain, receipt, "DataRequestAnswered", expected={
        "patient": request.patient, "requestId": request.request_id, "ref": ref})
    at = _block_time(ctx, receipt)
    try:
        with ctx.db.write() as conn:
            # Re-checked in the write transaction: two answers confirmed at once cannot both
            # move the request on (the chain keeps both events; the record keeps the first).
            latest = conn.execute(select(data_request_answers.c.state).where(
                data_request_answers.c.request_id == request.request_id).order_by(
                data_request_answers.c.block_number.desc()).limit(1)).scalar()
            if not can_become(latest or OPEN, state):
                raise ConflictError(f"the request became {latest} meanwhile: it cannot become "
                                    f"{state}")
            conn.execute(data_request_answers.insert().values(
                ref=ref, request_id=request.request_id, state=state, reason=reason,
                nonce=nonce, tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                answered_at=at))
            for position, c in enumerate(files):
                conn.execute(data_request_deliveries.update().where(
                    data_request_deliveries.c.commitment == c).values(
                    answer_ref=ref, position=position))
    except SqlIntegrityError:
        raise ConflictError(f"the answer 0x{ref.hex()} is recorded already") from None
    return get_request(ctx, request.request_id, reader=request.provider)


def open_delivery(ctx: ServiceContext, *, reader: str, request_id: bytes,
                  commitment: bytes) -> ContentStream:
    """A sent file's envelope, for the request's patient and provider."""
    request = get_request(ctx, request_id, reader=reader)
    wanted = checked_bytes32("commitment", commitment)
    for d in request.deliveries:
        if d.commitment == wanted:
            return ctx.store.get(d.cid)
    raise NotFoundError(f"no file 0x{wanted.hex()} was sent for this request")


__all__ = [
    "answer",
    "ask",
    "get_request",
    "open_delivery",
    "open_note",
    "provider_in_registry",
    "requests_of_patient",
    "requests_to_provider",
    "upload_delivery",
]
