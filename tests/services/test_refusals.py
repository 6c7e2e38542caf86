"""Refused reads (kizuna.services.refusals): what serve_read records, what it does not, and the
rate limit, on eth-tester with the real SQLite database."""

from __future__ import annotations

import os

import pytest
from harness import Stack
from sqlalchemy import func, select

from kizuna.access.check import GrantRevoked, NoGrant, WrongPatient
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.errors import NotFoundError
from kizuna.receipts.request import ReadRequest, ReplayedRequest, WrongSigner
from kizuna.services.read import serve_read
from kizuna.services.refusals import RefusalLimits, RefusalLog, RefusalReason
from kizuna.types import Address, RecordId, checksum_address


def _rows(db: Database, table: str = "refused_reads") -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(
            t.metadata.tables[table])).scalar_one())


def test_refusals_of_the_access_check_are_recorded(core: Stack) -> None:
    patient, provider, stranger = core.party(), core.party(), core.provider()
    provider = core.provider()
    record = core.add_record(patient)
    scope_id = core.grant(patient, provider)

    request, signature = core.request(stranger, patient, record)
    with pytest.raises(NoGrant):
        serve_read(core.ctx, request=request, signature=signature)
    # an allowed read writes no refusal, a replay of it is not a refusal of the access check
    request, signature = core.request(provider, patient, record)
    serve_read(core.ctx, request=request, signature=signature)
    with pytest.raises(ReplayedRequest):
        serve_read(core.ctx, request=request, signature=signature)
    # a forged signature proves nothing about who asked: not recorded
    forged = ReadRequest.new(provider=provider.address, patient=patient.address,
                             record_id=record.record_id)
    with pytest.raises(WrongSigner):
        serve_read(core.ctx, request=forged,
                   signature=forged.sign(stranger.private_key, core.ctx.domain))
    assert _rows(core.db) == 1

    core.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(GrantRevoked):
        serve_read(core.ctx, request=request, signature=signature)
    # named as another patient's record: recorded against the record's owner
    other = core.party()
    wrong = ReadRequest.new(provider=stranger.address, patient=other.address,
                            record_id=record.record_id)
    with pytest.raises(WrongPatient):
        serve_read(core.ctx, request=wrong,
                   signature=wrong.sign(stranger.private_key, core.ctx.domain))
    unknown = ReadRequest.new(provider=stranger.address, patient=other.address,
                              record_id=RecordId(os.urandom(32)))
    with pytest.raises(NotFoundError):
        serve_read(core.ctx, request=unknown,
                   signature=unknown.sign(stranger.private_key, core.ctx.domain))

    seen = core.ctx.refusals.attempts()
    assert [(r.provider, r.patient, r.reason) for r in seen] == [
        (stranger.address, patient.address, "no-grant"),
        (provider.address, patient.address, "revoked"),
        (stranger.address, patient.address, "wrong-patient"),
        (stranger.address, other.address, "unknown-record"),
    ]
    assert all(r.head_block > 0 for r in seen[:3])


def test_a_database_that_fails_does_not_change_the_refusal(core: Stack) -> None:
    patient, stranger = core.party(), core.provider()
    record = core.add_record(patient)
    request, signature = core.request(stranger, patient, record)
    with core.db.write() as conn:
        conn.execute(t.refused_reads.delete())
        conn.exec_driver_sql("DROP TABLE refused_read_counts")
    with pytest.raises(NoGrant, match="no grant"):
        serve_read(core.ctx, request=request, signature=signature)


def test_the_rate_limit_counts_what_it_does_not_write(tmp_path: object) -> None:
    db = Database.open(f"sqlite:///{tmp_path}/r.sqlite3")
    log = RefusalLog(db, RefusalLimits(per_patient_hour=3, per_provider_hour=5))
    provider = checksum_address("0x" + "11" * 20)
    patients = [checksum_address("0x" + f"{i:02x}" * 20) for i in range(0xa0, 0xa4)]
    hour = 1_800_000_000 - 1_800_000_000 % 3600

    def note(patient: Address, at: int) -> bool:
        return log.note(provider=provider, patient=patient, record_id=RecordId(bytes(32)),
                        reason=RefusalReason.NO_GRANT, refused_at=at, head_block=7)

    assert [note(patients[0], hour + i) for i in range(5)] == [True] * 3 + [False] * 2
    # the third is past the provider's cap (5 rows in the hour), before the pair's
    assert [note(patients[1], hour + 10 + i) for i in range(3)] == [True, True, False]
    assert _rows(db) == 5
    assert note(patients[2], hour + 20) is False  # past the cap: counted for the provider
    assert note(patients[2], hour + 3600) is True  # a new hour
    assert _rows(db) == 6

    mine = log.suppressed(patient=patients[0])
    assert [(s.count, s.hour_start, s.last_at) for s in mine] == [(2, hour, hour + 4)]
    everyone = log.suppressed(provider=provider)
    assert [(s.patient, s.count) for s in everyone if s.patient] == [(patients[0], 2)]
    assert [s.count for s in everyone if s.patient is None] == [2]  # patients 1 and 2
    assert log.suppressed(patient=patients[2]) == []
    assert len(log.attempts(patient=patients[2])) == 1
    db.dispose()
