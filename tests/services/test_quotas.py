"""kizuna.services.quotas on a real SQLite database: storage quotas per wallet (records and
messages together) and the relayer's gas budget per wallet and UTC day (reserve, settle,
reset at midnight, shared by instances, never overshot by concurrent relays)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from kizuna.db import Database
from kizuna.db.schema import care_messages, records
from kizuna.errors import QuotaExceeded
from kizuna.services.quotas import (
    DAY_S,
    UNLIMITED,
    GasBudget,
    StorageQuota,
    metered,
    room_for,
    stored_by,
)
from kizuna.types import Address

ALICE: Address = to_checksum_address("0x" + "a1" * 20)
BOB: Address = to_checksum_address("0x" + "b2" * 20)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database.open(f"sqlite:///{tmp_path / 'quotas.sqlite3'}")


def _record(db: Database, patient: Address, size: int) -> None:
    with db.write() as conn:
        count = conn.execute(records.select()).all()
        conn.execute(records.insert().values(
            record_id=len(count).to_bytes(32, "big"), patient=patient, scope_id=bytes(32),
            cid=f"bafy{len(count)}", commitment=bytes(32), size=size, content_type="text/plain",
            created_at=0))


def _message(db: Database, sender: Address, patient: Address, size: int) -> None:
    with db.write() as conn:
        count = len(conn.execute(care_messages.select()).all())
        conn.execute(care_messages.insert().values(
            ref=(count + 1000).to_bytes(32, "big"), cid=f"bafm{count}", patient=patient,
            provider=sender, sender=sender, kind="report", content_type="text/plain",
            size=size, tx_hash=bytes(32), block_number=1, created_at=0))


def test_records_and_sent_messages_count_for_the_wallet(db: Database) -> None:
    _record(db, ALICE, 100)
    _record(db, ALICE, 50)
    _record(db, BOB, 999)
    _message(db, ALICE, BOB, 25)  # alice sent it: hers
    _message(db, BOB, ALICE, 7)  # sent to alice: bob's
    assert stored_by(db, ALICE) == stored_by(db, ALICE).__class__(count=3, size=175)
    quota = StorageQuota(max_records=4, max_bytes=200)
    assert room_for(db, quota, ALICE) == 25
    _record(db, ALICE, 1)
    with pytest.raises(QuotaExceeded) as refused:
        room_for(db, quota, ALICE)
    assert refused.value.quota == "records" and refused.value.retry_after is None
    assert room_for(db, UNLIMITED, ALICE) is None


def test_the_bytes_quota_refuses_before_and_while_streaming(db: Database) -> None:
    quota = StorageQuota(max_records=0, max_bytes=100)
    _record(db, ALICE, 60)
    room = room_for(db, quota, ALICE)
    assert room == 40
    assert b"".join(metered([b"x" * 20, b"y" * 20], wallet=ALICE, quota=quota,
                            room=room)) == b"x" * 20 + b"y" * 20
    taken: list[bytes] = []
    with pytest.raises(QuotaExceeded) as refused:
        for chunk in metered([b"x" * 30, b"y" * 30, b"z"], wallet=ALICE, quota=quota,
                             room=room):
            taken.append(chunk)
    assert taken == [b"x" * 30]  # stops at the chunk that passes the room
    assert refused.value.quota == "bytes" and refused.value.used == 120
    _record(db, ALICE, 40)
    with pytest.raises(QuotaExceeded):
        room_for(db, quota, ALICE)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_gas_budget_reserves_settles_and_resets_at_midnight(db: Database) -> None:
    clock = Clock(100 * DAY_S + DAY_S - 3600)  # 23:00 UTC
    budget = GasBudget(db, per_day=300_000, clock=clock)
    held = budget.reserve(ALICE, 200_000)
    assert budget.spent(ALICE) == 200_000
    budget.settle(held, 120_000)  # what the receipt said
    assert budget.spent(ALICE) == 120_000
    budget.reserve(ALICE, 180_000)  # exactly full
    with pytest.raises(QuotaExceeded) as refused:
        budget.reserve(ALICE, 1)
    assert refused.value.quota == "relayer_gas" and refused.value.retry_after == 3600
    with pytest.raises(QuotaExceeded):
        budget.require_room(ALICE)
    budget.reserve(BOB, 300_000)  # each wallet has its own
    released = budget.reserve(BOB, 0)
    budget.settle(released, 0)
    clock.now += 3600  # 00:00 UTC: a new day
    budget.require_room(ALICE)
    assert budget.spent(ALICE) == 0
    budget.reserve(ALICE, 250_000)


def test_an_action_larger_than_a_days_budget_is_never_worth_waiting_for(db: Database) -> None:
    budget = GasBudget(db, per_day=100_000)
    with pytest.raises(QuotaExceeded) as refused:
        budget.reserve(ALICE, 100_001)
    assert refused.value.retry_after is None
    assert budget.spent(ALICE) == 0
    assert GasBudget(db, per_day=0).reserve(ALICE, 10**9).gas == 10**9  # 0: no limit


def test_concurrent_relays_on_two_instances_never_overshoot(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    instances = [GasBudget(Database.open(url), per_day=1_000_000) for _ in range(2)]
    granted: list[int] = []
    lock = threading.Lock()

    def relay(budget: GasBudget) -> None:
        for _ in range(20):
            try:
                budget.reserve(ALICE, 70_000)
            except QuotaExceeded:
                continue
            with lock:
                granted.append(70_000)

    threads = [threading.Thread(target=relay, args=(b,)) for b in instances for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 14 * 70_000  # as many as fit, not one more
    assert instances[0].spent(ALICE) == instances[1].spent(ALICE) == sum(granted)
