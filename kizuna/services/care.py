"""Care messages: reports, prescriptions, bookings and access requests between a provider and a
patient — encrypted on the sender's side, stored as envelopes, announced on-chain.

The chain carries only a pointer: ``logCareEvent(patient, kind, ref, provider, scopeId)`` (or
``requestAccess(patient, ref)``) with ``ref`` = the commitment (SHA-256) of the message's envelope.
The service keeps what the chain cannot: which CID holds the envelope with that commitment (the
``care_messages`` table of :mod:`kizuna.db.schema`). A message::

    sender's side: envelope (encrypted to the recipient's Umbral key) → commitment
                   → its own transaction (logCareEvent / requestAccess with ref = commitment)
    service:       envelope streamed into the store (preamble checked, commitment computed)
                   → the transaction awaited, its event checked (patient, provider, kind,
                     actor = sender, ref = commitment) → ``care_messages`` row

As with records, a failure after the store accepted the envelope unpins it and writes no row.
Messages to a patient are encrypted to the patient's *inbox key* (their wallet-derived Umbral
public key), which the patient publishes with a wallet signature (:func:`publish_inbox_key`) so
the service cannot substitute its own; messages to a provider to its provider-registry key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import (
    Connection,
    select,
)
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from kizuna.chain.eip712 import TypedData
from kizuna.chain.models import TxReceipt
from kizuna.crypto import pre
from kizuna.db.schema import care_messages, inbox_keys
from kizuna.errors import AccessDenied, ConflictError, InputError, NotFoundError
from kizuna.services.onchain import (
    checked_address,
    checked_bytes32,
    prepare,
    require_event,
    wait_for,
)
from kizuna.services.quotas import room_for
from kizuna.services.records import (
    ALLOWED_CONTENT_TYPES,
    EnvelopeIntake,
    keep_stored,
    store_envelope,
)
from kizuna.storage.store import ContentStream
from kizuna.types import Cid, Commitment, RecordId, ScopeId
from kizuna.wire.care import (
    ACCESS_REQUEST,
    CARE_KINDS,
    CareMessage,
    InboxKey,
    inbox_key_typed_data,
)
from kizuna.wire.onchain import PreparedAction, SentTransaction

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext

MAX_MESSAGE_BYTES = 64 << 20
"""64 MiB: a report with attachments; records (any size) go through the records upload."""

# --- inbox keys -------------------------------------------------------------------------------


def inbox_key_statement(ctx: ServiceContext, *, patient: str, public_key: bytes) -> TypedData:
    """:func:`inbox_key_typed_data` in this service's proxy domain."""
    return inbox_key_typed_data(ctx.domain, patient=patient, public_key=public_key)


def publish_inbox_key(ctx: ServiceContext, *, patient: str, public_key: bytes,
                      signature: bytes) -> InboxKey:
    """Keep a patient's inbox key if their wallet signed it (replaces an earlier one)."""
    owner = checked_address("patient", patient)
    typed = inbox_key_statement(ctx, patient=owner, public_key=public_key)
    if not isinstance(signature, bytes | bytearray) or len(signature) != 65:
        raise InputError("signature", "must be 65 bytes (r, s, v)")
    entry = InboxKey(patient=owner, public_key=pre.UmbralPublicKey.from_bytes(public_key),
                     signature=bytes(signature), statement=typed)
    entry.verify()
    with ctx.db.write() as conn:
        conn.execute(inbox_keys.delete().where(inbox_keys.c.patient == owner))
        conn.execute(inbox_keys.insert().values(patient=owner, public_key=bytes(public_key),
                                                signature=bytes(signature),
                                                created_at=int(time.time()), version=1))
    return entry


def inbox_key_of(ctx: ServiceContext, patient: str) -> InboxKey:
    """A patient's published inbox key (``NotFoundError`` if they never published one)."""
    owner = checked_address("patient", patient)
    with ctx.db.read() as conn:
        row = conn.execute(select(inbox_keys).where(inbox_keys.c.patient == owner)).first()
    if row is None:
        raise NotFoundError(f"{owner} has published no inbox key")
    key = bytes(row._mapping["public_key"])
    return InboxKey(patient=owner, public_key=pre.UmbralPublicKey.from_bytes(key),
                    signature=bytes(row._mapping["signature"]),
                    statement=inbox_key_statement(ctx, patient=owner, public_key=key))


# --- messages ---------------------------------------------------------------------------------


def _message(row: Any) -> CareMessage:
    m = row._mapping
    return CareMessage(ref=Commitment(bytes(m["ref"])), cid=Cid(m["cid"]), patient=m["patient"],
                       provider=m["provider"], sender=m["sender"], kind=m["kind"],
                       content_type=m["content_type"], size=int(m["size"]),
                       tx_hash=bytes(m["tx_hash"]), block_number=int(m["block_number"]),
                       created_at=int(m["created_at"]))


def send_message(
    ctx: ServiceContext,
    *,
    sender: str,
    patient: str,
    provider: str | None,
    kind: str,
    message_id: bytes,
    envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
    transaction: SentTransaction,
    max_size: int = MAX_MESSAGE_BYTES,
) -> CareMessage:
    """Store a message's envelope and accept it once its on-chain announcement is confirmed.

    ``kind`` is one of :data:`CARE_KINDS` (announced by ``logCareEvent``) or
    :data:`ACCESS_REQUEST` (announced by ``requestAccess``; ``sender`` is the provider).
    ``message_id`` is the random id in the envelope's header (its "record id").
    ``QuotaExceeded`` when the sender's storage quota (``ctx.quota``) is used up.
    """
    actor = checked_address("sender", sender)
    owner = checked_address("patient", patient)
    other = checked_address("provider", provider) if provider is not None else None
    if kind != ACCESS_REQUEST and kind not in CARE_KINDS:
        raise InputError("kind", f"{kind!r} is not one of "
                                 f"{', '.join(sorted([*CARE_KINDS, ACCESS_REQUEST]))}")
    if kind == ACCESS_REQUEST and other != actor:
        raise InputError("provider", "an access request is sent by the provider itself")
    if not isinstance(transaction, SentTransaction):
        raise InputError("txHash", "a message is announced by the sender's own transaction")
    room = room_for(ctx.db, ctx.quota, actor)  # the sender's storage quota, before any byte
    intake = EnvelopeIntake(record_id=RecordId(checked_bytes32("message_id", message_id)),
                            max_size=max_size, allowed_content_types=ALLOWED_CONTENT_TYPES)
    cid = store_envelope(ctx, intake, envelope, wallet=actor, room=room)
    assert intake.header is not None
    ref = intake.commitment
    content_type = intake.header.content_type

    def announced() -> TxReceipt:
        receipt = wait_for(ctx.chain, transaction)
        if kind == ACCESS_REQUEST:
            require_event(ctx.chain, receipt, "AccessRequested",
                          expected={"patient": owner, "provider": actor, "ref": ref})
        else:
            expected: dict[str, Any] = {"patient": owner, "kind": int(CARE_KINDS[kind]),
                                        "actor": actor, "ref": ref}
            if other is not None:
                expected["provider"] = other
            require_event(ctx.chain, receipt, "CareEventLogged", expected=expected)
        return receipt

    def row(conn: Connection, receipt: TxReceipt) -> CareMessage:
        message = CareMessage(ref=ref, cid=cid, patient=owner, provider=other, sender=actor,
                              kind=kind, content_type=content_type, size=intake.size,
                              tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                              created_at=int(time.time()))
        conn.execute(care_messages.insert().values(
            ref=ref, cid=cid, patient=owner, provider=other, sender=actor, kind=kind,
            content_type=message.content_type, size=message.size,
            tx_hash=receipt.tx_hash, block_number=receipt.block_number,
            created_at=message.created_at))
        return message

    # The records' lifecycle (keep_stored): a failure releases the envelope under a write
    # transaction, and the row's transaction pins it again, so of two identical messages sent
    # at once the loser never unpins the winner's envelope.
    try:
        return keep_stored(ctx, [cid], confirm=announced, rows=row)
    except SqlIntegrityError:
        raise ConflictError(f"a message with ref 0x{ref.hex()} exists already") from None


def prepare_care_event(ctx: ServiceContext, *, sender: str, patient: str, kind: str,
                       ref: bytes, provider: str | None = None,
                       scope_id: bytes | None = None) -> PreparedAction:
    """For the sender's wallet: ``logCareEvent(patient, kind, ref, provider, scopeId)``.

    A provider names itself and the granted scope that gives it care authority; a patient (or
    guardian) names the provider the message is for. Simulated first: a provider without a live
    grant is refused here (``ConsentLedgerCareEventNotAllowed``)."""
    if kind not in CARE_KINDS:
        raise InputError("kind", f"{kind!r} is not one of {', '.join(sorted(CARE_KINDS))}")
    call = ctx.chain.ledger.log_care_event_call(
        checked_address("patient", patient), CARE_KINDS[kind],
        Commitment(checked_bytes32("ref", ref)),
        provider=checked_address("provider", provider) if provider is not None else None,
        scope_id=ScopeId(checked_bytes32("scope_id", scope_id)) if scope_id is not None
        else None)
    return prepare(ctx.chain, call, sender=checked_address("sender", sender))


def message_by_ref(ctx: ServiceContext, ref: bytes) -> CareMessage | None:
    with ctx.db.read() as conn:
        row = conn.execute(select(care_messages).where(
            care_messages.c.ref == checked_bytes32("ref", ref))).first()
    return _message(row) if row is not None else None


def messages_by_refs(ctx: ServiceContext, refs: Iterable[bytes]) -> dict[bytes, CareMessage]:
    wanted = list({bytes(r) for r in refs})
    if not wanted:
        return {}
    with ctx.db.read() as conn:
        rows = conn.execute(select(care_messages).where(care_messages.c.ref.in_(wanted))).all()
    return {bytes(m.ref): m for m in (_message(r) for r in rows)}


def messages_sent_by(ctx: ServiceContext, sender: str, *, kind: str | None = None
                     ) -> list[CareMessage]:
    query = select(care_messages).where(
        care_messages.c.sender == checked_address("sender", sender))
    if kind is not None:
        query = query.where(care_messages.c.kind == kind)
    with ctx.db.read() as conn:
        rows = conn.execute(query.order_by(care_messages.c.block_number)).all()
    return [_message(r) for r in rows]


def open_message(ctx: ServiceContext, *, reader: str, ref: bytes) -> ContentStream:
    """The envelope of a message, for its patient, its provider or its sender only."""
    who = checked_address("reader", reader)
    message = message_by_ref(ctx, ref)
    if message is None:
        raise NotFoundError(f"no message with ref 0x{bytes(ref).hex()}")
    if who not in (message.patient, message.provider, message.sender):
        raise AccessDenied(f"{who} is neither the sender nor a recipient of this message")
    return ctx.store.get(message.cid)


__all__ = [
    "MAX_MESSAGE_BYTES",
    "care_messages",
    "inbox_key_of",
    "inbox_key_statement",
    "inbox_keys",
    "message_by_ref",
    "messages_by_refs",
    "messages_sent_by",
    "open_message",
    "prepare_care_event",
    "publish_inbox_key",
    "send_message",
]
