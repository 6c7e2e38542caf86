"""Per-wallet quotas: what a wallet may store here, and the gas the relayer may spend for it.

Without them any fresh wallet (0 wei: the relayer pays) could fill the disk and drain the
relayer. Both live in the database, so every instance of the service enforces the same ones.

* **Storage** (:class:`StorageQuota`): the envelopes a wallet stored — its records (as their
  patient: a guardian's uploads count for the ward), its staged envelopes and the care
  messages it sent — at most
  ``max_records`` of them and ``max_bytes`` together. Checked before an upload reads its body
  (:func:`room_for`) and while it streams (:func:`metered`: the store's put aborts the moment
  the remaining room is passed, keeping nothing). Stored envelopes never expire, so waiting
  never helps: :class:`~kizuna.errors.QuotaExceeded` without ``retry_after`` (HTTP 403).
  Concurrent uploads of one wallet may each pass the check and overshoot by what is in flight
  (at most one envelope each): the quota bounds the disk a wallet can take, not exactly.
* **Relayer gas** (:class:`GasBudget`): the gas the relayer spends for a wallet per UTC day.
  The relayer *reserves* its estimate (the transaction's gas limit) in one conditional update
  before it sends anything, then settles to the receipt's ``gasUsed``; a budget that cannot
  hold the estimate refuses with ``retry_after`` = seconds until the next UTC midnight (HTTP
  429 with ``Retry-After``) and nothing is sent. A relay whose fate is unknown (the node went
  away after the send) keeps its reservation: the relayer may well have paid it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from kizuna.db import Database
from kizuna.db.schema import care_messages, records, relayer_gas, staged_envelopes
from kizuna.errors import QuotaExceeded
from kizuna.types import Address

DEFAULT_MAX_RECORDS = 100_000
DEFAULT_MAX_BYTES = 2 << 30
"""2 GiB of envelopes per wallet."""
DEFAULT_RELAYER_GAS_PER_DAY = 2_000_000
"""About 10-20 relayed registrations, grants or revokes a day."""
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class StorageQuota:
    """What one wallet may store (``0``: no limit)."""

    max_records: int = DEFAULT_MAX_RECORDS
    max_bytes: int = DEFAULT_MAX_BYTES


UNLIMITED = StorageQuota(max_records=0, max_bytes=0)


@dataclass(frozen=True, slots=True)
class Usage:
    """The envelopes a wallet stored: how many, how many bytes."""

    count: int
    size: int


def stored_by(db: Database, wallet: Address) -> Usage:
    """The wallet's records (as patient), its staged envelopes (a batch not registered yet)
    and the messages it sent, counted and summed."""
    with db.read() as conn:
        own = conn.execute(select(func.count(), func.coalesce(func.sum(records.c.size), 0))
                           .where(records.c.patient == wallet)).one()
        sent = conn.execute(select(func.count(),
                                   func.coalesce(func.sum(care_messages.c.size), 0))
                            .where(care_messages.c.sender == wallet)).one()
        staged = conn.execute(select(func.count(),
                                     func.coalesce(func.sum(staged_envelopes.c.size), 0))
                              .where(staged_envelopes.c.patient == wallet)).one()
    return Usage(count=int(own[0]) + int(sent[0]) + int(staged[0]),
                 size=int(own[1]) + int(sent[1]) + int(staged[1]))


def room_for(db: Database, quota: StorageQuota, wallet: Address) -> int | None:
    """The bytes ``wallet`` may still store (``None``: no byte limit); ``QuotaExceeded`` when
    it may store no further envelope at all."""
    if not quota.max_records and not quota.max_bytes:
        return None
    usage = stored_by(db, wallet)
    if quota.max_records and usage.count >= quota.max_records:
        raise records_exceeded(wallet, quota, usage.count)
    if not quota.max_bytes:
        return None
    left = quota.max_bytes - usage.size
    if left <= 0:
        raise _bytes_exceeded(wallet, quota, usage.size)
    return left


def metered(chunks: Iterable[bytes], *, wallet: Address, quota: StorageQuota,
            room: int | None) -> Iterator[bytes]:
    """``chunks``, raising ``QuotaExceeded`` as soon as they pass ``room`` bytes (from
    :func:`room_for`): the consumer (the store's put) aborts and keeps nothing."""
    if room is None:
        yield from chunks
        return
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > room:
            raise _bytes_exceeded(wallet, quota, quota.max_bytes - room + seen)
        yield chunk


def records_exceeded(wallet: Address, quota: StorageQuota, used: int) -> QuotaExceeded:
    """The error for a wallet storing ``used`` envelopes and asking for one more."""
    return QuotaExceeded("records", limit=quota.max_records, used=used,
                         message=f"{wallet} stores {used} envelopes, the quota of "
                                 f"{quota.max_records}: no more are accepted")


def _bytes_exceeded(wallet: Address, quota: StorageQuota, used: int) -> QuotaExceeded:
    return QuotaExceeded("bytes", limit=quota.max_bytes, used=used,
                         message=f"{wallet} would store {used} bytes of envelopes, over the "
                                 f"quota of {quota.max_bytes}")


# --- the relayer's gas budget -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    """Gas held for one relay: settled to its ``gasUsed`` (or released) afterwards."""

    wallet: Address
    day: int
    gas: int


class GasBudget:
    """At most ``per_day`` gas relayed for one wallet per UTC day (``0``: no limit), counted in
    the ``relayer_gas`` table. ``clock`` (unix seconds) is injectable for tests."""

    def __init__(self, db: Database, *, per_day: int = DEFAULT_RELAYER_GAS_PER_DAY,
                 clock: Callable[[], float] = time.time) -> None:
        if per_day < 0:
            raise ValueError("per_day must be >= 0")
        self.db = db
        self.per_day = per_day
        self._clock = clock

    def _today(self) -> tuple[int, int]:
        """The UTC day number and the seconds until it ends."""
        now = int(self._clock())
        return now // DAY_S, DAY_S - now % DAY_S

    def spent(self, wallet: Address) -> int:
        """Gas relayed (or reserved) for ``wallet`` today."""
        day, _ = self._today()
        with self.db.read() as conn:
            gas = conn.execute(select(relayer_gas.c.gas).where(
                _row(wallet, day))).scalar_one_or_none()
        return int(gas or 0)

    def require_room(self, wallet: Address) -> None:
        """``QuotaExceeded`` (with ``retry_after``) when today's budget is used up: checked
        before an upload streams its body, so a refused relay costs no upload either."""
        if not self.per_day:
            return
        used = self.spent(wallet)
        if used >= self.per_day:
            raise self._exhausted(wallet, used, 1)

    def reserve(self, wallet: Address, gas: int) -> Reservation:
        """Hold ``gas`` of today's budget for one relay, or raise ``QuotaExceeded``.

        One conditional ``UPDATE ... WHERE gas + :gas <= :budget`` (atomic on PostgreSQL as on
        SQLite), so concurrent relays of one wallet on several instances never overshoot."""
        day, _ = self._today()
        held = Reservation(wallet=wallet, day=day, gas=gas)
        if not self.per_day:
            return held
        for _attempt in range(3):  # a concurrent first insert of the day: update it instead
            try:
                with self.db.write() as conn:
                    moved = conn.execute(relayer_gas.update().where(
                        _row(wallet, day), relayer_gas.c.gas + gas <= self.per_day,
                    ).values(gas=relayer_gas.c.gas + gas)).rowcount
                    if moved:
                        return held
                    used = conn.execute(select(relayer_gas.c.gas).where(
                        _row(wallet, day))).scalar_one_or_none()
                    if used is None and gas <= self.per_day:
                        conn.execute(relayer_gas.insert().values(wallet=wallet, day=day,
                                                                 gas=gas))
                        return held
            except SqlIntegrityError:
                continue
            raise self._exhausted(wallet, int(used or 0), gas)
        raise self._exhausted(wallet, self.spent(wallet), gas)

    def settle(self, held: Reservation, gas_used: int) -> None:
        """Replace the reservation by what the relay really cost (``0``: nothing was sent)."""
        if not self.per_day or gas_used == held.gas:
            return
        with self.db.write() as conn:
            conn.execute(relayer_gas.update().where(_row(held.wallet, held.day)).values(
                gas=relayer_gas.c.gas + (gas_used - held.gas)))

    def _exhausted(self, wallet: Address, used: int, wanted: int) -> QuotaExceeded:
        _, left_s = self._today()
        # An action larger than a whole day's budget never fits: waiting would not help.
        retry = left_s if wanted <= self.per_day else None
        return QuotaExceeded(
            "relayer_gas", limit=self.per_day, used=used, retry_after=retry,
            message=f"the relayer's gas budget for {wallet} today is used up ({used} of "
                    f"{self.per_day}; this action needs up to {wanted})"
                    + (f"; it resets in {left_s} s (00:00 UTC), or send the transaction "
                       "from your own wallet" if retry is not None else ""))


def _row(wallet: Address, day: int) -> ColumnElement[bool]:
    return and_(relayer_gas.c.wallet == wallet, relayer_gas.c.day == day)


__all__ = [
    "DAY_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_RELAYER_GAS_PER_DAY",
    "UNLIMITED",
    "GasBudget",
    "Reservation",
    "StorageQuota",
    "Usage",
    "metered",
    "records_exceeded",
    "room_for",
    "stored_by",
]
