"""Envelopes by CID (``GET /content/{cid}``), only for whoever may have them.

A CID is no secret: anyone who sees a record's or a message's commitment on chain can compute
it. So the store answers a CID only when the database says whose envelope it is and the caller
is one of them:

* a record's envelope: its patient, a live guardian of the patient (on chain, now), or a
  provider within ``read_window_s`` of a read of that record that left a receipt — the read
  route decides access and records it; this route only hands over the bytes the read pointed
  to when they were too large to travel inside its answer (``read_inline_max_bytes``);
* a care message's envelope: its patient, its provider or its sender (as the message route).

Anything else — a CID nobody stored, another patient's record, a record a provider never read,
someone else's message — is answered exactly as an absent CID (``ContentNotFound``, 404):
the answer does not tell a prober whether the content exists.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from kizuna.db.schema import care_messages, receipts, records
from kizuna.errors import ContentNotFound
from kizuna.services.onchain import checked_address
from kizuna.storage.cid import parse_cid
from kizuna.storage.store import ContentStream
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext

DEFAULT_READ_WINDOW_S = 900
"""How long after a read its provider may fetch the record's envelope by CID."""


def open_content(ctx: ServiceContext, *, reader: str, cid: str,
                 read_window_s: int = DEFAULT_READ_WINDOW_S,
                 now: int | None = None) -> ContentStream:
    """The envelope under ``cid`` if ``reader`` may have it (see the module docstring), else
    ``ContentNotFound`` — the same answer as for a CID the store does not hold. ``InvalidCid``
    for a string that is no CID."""
    who = checked_address("reader", reader)
    text = parse_cid(cid).to_v1().text()  # the spelling the store (and the tables) use
    moment = int(time.time()) if now is None else now
    if not _may_have(ctx, who, text, since=moment - read_window_s):
        raise ContentNotFound(text)
    return ctx.store.get(text)


def _may_have(ctx: ServiceContext, who: Address, cid: str, *, since: int) -> bool:
    with ctx.db.read() as conn:
        parties = conn.execute(select(care_messages.c.patient, care_messages.c.provider,
                                      care_messages.c.sender)
                               .where(care_messages.c.cid == cid)).all()
        if any(who in tuple(row) for row in parties):
            return True
        owners = conn.execute(select(records.c.record_id, records.c.patient)
                              .where(records.c.cid == cid)).all()
        if not owners:
            return False
        if any(row.patient == who for row in owners):
            return True
        read = conn.execute(select(receipts.c.seq).where(and_(
            receipts.c.provider == who,
            receipts.c.record_id.in_([bytes(row.record_id) for row in owners]),
            receipts.c.served_at >= since)).limit(1)).first()
        if read is not None:
            return True
    # Last, as it asks the chain: a guardian acts for the ward while the appointment is live.
    return any(ctx.chain.ledger.is_guardian(patient, who)
               for patient in sorted({row.patient for row in owners}))


__all__ = ["DEFAULT_READ_WINDOW_S", "open_content"]
