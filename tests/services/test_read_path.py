"""serve_read on eth-tester: grant → kfrags → read → decrypt, and every way a read is refused."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from harness import REGISTERED, Stack
from sqlalchemy import func, select

from kizuna.access.check import (
    GrantExpired,
    GrantRevoked,
    NoGrant,
    ProviderNotRegistered,
    RecordSuperseded,
    WrongPatient,
)
from kizuna.db import schema as t
from kizuna.errors import AccessDenied, InputError, NotFoundError
from kizuna.receipts.request import ReadRequest, ReplayedRequest, StaleRequest, WrongSigner
from kizuna.services.read import NoKeyFragments, serve_read
from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.types import RecordId, ScopeId

BOTH = pytest.mark.parametrize("core", REGISTERED, indirect=True)
"""The test runs on records registered alone and on records registered in a batch."""


def _receipts(core: Stack) -> int:
    with core.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.receipts)).scalar_one())


@BOTH
def test_granted_provider_reads_and_decrypts(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)
    assert answer.cid == record.cid and answer.patient == patient.address
    assert answer.head_block == core.env.w3.eth.block_number
    assert core.open(provider, answer) == record.plaintext
    stored = core.ctx.receipts.get(request.request_id)
    assert stored is not None and stored.seq == answer.receipt_seq
    assert stored.head_block == answer.head_block and stored.leaf == answer.leaf


def test_threshold_kfrags_give_one_cfrag_each(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider, shares=3, threshold=2)
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)
    assert len(answer.cfrags) == 3 and len(set(answer.cfrags)) == 3
    assert core.open(provider, answer, threshold=2) == record.plaintext


@BOTH
def test_only_granted_scopes_are_readable(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    lab = core.add_record(patient, label="Observation")
    notes = core.add_record(patient, label="DocumentReference")
    core.grant(patient, provider, label="Observation")
    serve_read(core.ctx, request=(r := core.request(provider, patient, lab))[0],
               signature=r[1])
    request, signature = core.request(provider, patient, notes)
    with pytest.raises(NoGrant, match="no grant"):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 1


@BOTH
def test_revoke_refuses_the_next_read(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    scope_id = core.grant(patient, provider)
    serve_read(core.ctx, request=(r := core.request(provider, patient, record))[0],
               signature=r[1])
    revoked = core.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(GrantRevoked, match=f"revoked \\(block {revoked.block_number}\\)"):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 1


@BOTH
def test_revoke_all_refuses_with_the_reason(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    core.chain.ledger.revoke_all(provider.address, signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(GrantRevoked, match="revoked"):
        serve_read(core.ctx, request=request, signature=signature)


@BOTH
def test_expired_grant_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider, expires_in=100)
    core.env.advance(200)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(GrantExpired, match="expired"):
        serve_read(core.ctx, request=request, signature=signature)


def test_unknown_record_is_not_found(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    request = ReadRequest.new(provider=provider.address, patient=patient.address,
                              record_id=RecordId(os.urandom(32)))
    with pytest.raises(NotFoundError, match="no record"):
        serve_read(core.ctx, request=request,
                   signature=request.sign(provider.private_key, core.ctx.domain))


def test_wrong_signer_is_refused(core: Stack) -> None:
    patient, provider, other = core.party(), core.provider(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    request = ReadRequest.new(provider=provider.address, patient=patient.address,
                              record_id=record.record_id)
    forged = request.sign(other.private_key, core.ctx.domain)
    with pytest.raises(WrongSigner, match="not by the provider"):
        serve_read(core.ctx, request=request, signature=forged)
    # Signed for another chain / contract: recovers to someone else.
    from kizuna.receipts.request import proxy_domain

    elsewhere = proxy_domain(chain_id=1, access_log=core.chain.deployment.consent_ledger)
    with pytest.raises(WrongSigner):
        serve_read(core.ctx, request=request,
                   signature=request.sign(provider.private_key, elsewhere))
    with pytest.raises(InputError, match="signature"):
        serve_read(core.ctx, request=request, signature=b"\x01" * 64)
    assert _receipts(core) == 0


def test_replayed_request_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    request, signature = core.request(provider, patient, record)
    serve_read(core.ctx, request=request, signature=signature)
    with pytest.raises(ReplayedRequest, match="served already"):
        serve_read(core.ctx, request=request, signature=signature)
    # Another instance on the same database refuses it too.
    with pytest.raises(ReplayedRequest):
        serve_read(core.second_context(), request=request, signature=signature)
    assert isinstance(ReplayedRequest("x"), AccessDenied)
    assert _receipts(core) == 1


def test_stale_or_post_dated_request_is_refused(core: Stack) -> None:
    import time

    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    for skew in (-121, 121):
        request, signature = core.request(provider, patient, record,
                                           issued_at=int(time.time()) + skew)
        with pytest.raises(StaleRequest, match="issuedAt"):
            serve_read(core.ctx, request=request, signature=signature)
    request, signature = core.request(provider, patient, record,
                                       issued_at=int(time.time()) - 100)
    serve_read(core.ctx, request=request, signature=signature)


@BOTH
def test_provider_cannot_read_another_patients_record(core: Stack) -> None:
    alice, bob, provider = core.party(), core.party(), core.provider()
    alice_record = core.add_record(alice)
    core.add_record(bob)
    core.grant(bob, provider)  # the provider has Bob's consent, not Alice's
    # Naming Bob as the patient of Alice's record:
    request, signature = core.request(provider, bob, alice_record)
    with pytest.raises(WrongPatient):
        serve_read(core.ctx, request=request, signature=signature)
    # Naming Alice honestly: no grant from Alice.
    request, signature = core.request(provider, alice, alice_record)
    with pytest.raises(NoGrant):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 0


def test_a_record_row_claiming_another_owner_is_refused(core: Stack) -> None:
    """A database row must agree with the chain: a row naming Bob for Alice's record fails."""
    alice, bob, provider = core.party(), core.party(), core.provider()
    record = core.add_record(alice)
    fake = RecordId(os.urandom(32))
    # Register the fake id on-chain as Alice's, but write the row as Bob's.
    from kizuna.crypto.commitment import commitment_of

    core.chain.ledger.register_record(fake, commitment_of(b"x"), core.scope(alice),
                                       signer=alice.signer)
    core.write_record_row(bob, fake, core.scope(bob), record.cid, commitment_of(b"x"), 1)
    core.grant(bob, provider)
    from harness import Record

    request, signature = core.request(provider, bob, Record(fake, core.scope(bob), b"",
                                                             record.cid))
    with pytest.raises(WrongPatient, match="on-chain"):
        serve_read(core.ctx, request=request, signature=signature)


def test_unregistered_reader_is_refused(core: Stack) -> None:
    patient, stranger = core.party(), core.party()
    record = core.add_record(patient)
    core.chain.ledger.grant(stranger.address, core.scope(patient), core.env.now() + 3600,
                             signer=patient.signer)
    request, signature = core.request(stranger, patient, record)
    with pytest.raises(ProviderNotRegistered, match="not in the provider registry"):
        serve_read(core.ctx, request=request, signature=signature)


def _leave_kit(core: Stack, patient: Any, provider: Any, scope_id: ScopeId) -> None:
    """The patient's emergency kit of ``scope_id`` for ``provider`` (its scope keys registered
    first, as ``hand_kfrags`` does; the fragments it puts in ``kfrags`` are taken back)."""
    from kizuna.crypto import pre
    from kizuna.services import emergency

    core.hand_kfrags(patient, provider, scope_id)
    core.ctx.kfrags.delete(patient=patient.address, scope_id=scope_id,
                            provider=provider.address)
    kfrags = pre.generate_kfrags(patient.keys.scope_delegating_key(scope_id),
                                 provider.keys.public_key, patient.keys.signer(),
                                 threshold=1, shares=1)
    emergency.leave_kit(core.ctx, patient=patient.address, provider=provider.address,
                        kfrags={bytes(scope_id): [k.to_bytes() for k in kfrags]})


def test_suspended_provider_cannot_use_emergency_access(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.chain.ledger.set_emergency_policy(True, 3600, signer=patient.signer)
    core.chain.ledger.open_emergency_access(patient.address, 600, 1, signer=provider.signer)
    _leave_kit(core, patient, provider, record.scope_id)  # break-glass reads use the kit
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)  # emergency: allowed
    assert core.open(provider, answer) == record.plaintext
    core.chain.registry.suspend_provider(provider.address, signer=core.env.admin)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(ProviderNotRegistered, match="suspended"):
        serve_read(core.ctx, request=request, signature=signature)


def test_suspended_provider_is_refused_despite_a_live_grant(core: Stack) -> None:
    """A suspension ends every read at the next request, although the patient's grant is
    live: no VerifiedGrant is made for a provider the registry suspended (issue 15, finding
    3); reinstated, it reads again."""
    from kizuna.access.check import ProviderSuspended

    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    request, signature = core.request(provider, patient, record)
    assert core.open(provider, serve_read(core.ctx, request=request,
                                           signature=signature)) == record.plaintext
    core.chain.registry.suspend_provider(provider.address, signer=core.env.admin)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(ProviderSuspended, match="suspended in the provider registry"):
        serve_read(core.ctx, request=request, signature=signature)
    core.chain.registry.reinstate_provider(provider.address, signer=core.env.admin)
    request, signature = core.request(provider, patient, record)
    assert core.open(provider, serve_read(core.ctx, request=request,
                                           signature=signature)) == record.plaintext


@BOTH
def test_superseded_record_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    from kizuna.crypto.commitment import commitment_of

    newer = RecordId(os.urandom(32))
    core.chain.ledger.supersede_record(record.record_id, newer, commitment_of(b"v2"),
                                        record.scope_id, signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(RecordSuperseded):
        serve_read(core.ctx, request=request, signature=signature)


def test_live_grant_without_kfrags_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.chain.ledger.grant(provider.address, record.scope_id, core.env.now() + 3600,
                             signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(NoKeyFragments):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 0


def test_two_instances_on_one_database(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    other = core.second_context()
    core.grant(patient, provider, ctx=other)  # kfrags handed to instance B
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)  # read on A
    assert core.open(provider, answer) == record.plaintext
    assert other.receipts.get(request.request_id) is not None  # B sees A's receipt


def test_a_row_pointing_at_another_records_envelope_is_refused(core: Stack) -> None:
    from kizuna.errors import IntegrityError

    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    other = core.add_record(patient)
    core.grant(patient, provider)
    # Point the row of `record` at the envelope of `other` (a wrong or swapped CID).
    from sqlalchemy import update

    with core.db.write() as conn:
        conn.execute(update(t.records).where(t.records.c.record_id == record.record_id)
                     .values(cid=other.cid))
    request, signature = core.request(provider, patient, record)
    with pytest.raises(IntegrityError, match="is not record"):
        serve_read(core.second_context(), request=request, signature=signature)
    assert _receipts(core) == 0


def test_content_store_unavailable_refuses_without_a_receipt(core: Stack) -> None:
    import shutil

    from kizuna.errors import StorageError

    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    shutil.rmtree(core.root / "store" / "blocks")
    request, signature = core.request(provider, patient, record)
    with pytest.raises(StorageError):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 0


def test_a_row_naming_another_scope_than_the_chain_is_refused(core: Stack) -> None:
    """A row claiming the record is in a scope the provider was granted, while the chain
    registered it in another scope, must not let that grant open it."""
    from kizuna.crypto.commitment import commitment_of

    patient, provider = core.party(), core.provider()
    record = core.add_record(patient, label="DocumentReference")
    granted = core.grant(patient, provider, label="Observation")
    sneaky = RecordId(os.urandom(32))
    core.chain.ledger.register_record(sneaky, commitment_of(b"s"),
                                       core.scope(patient, "DocumentReference"),
                                       signer=patient.signer)
    core.write_record_row(patient, sneaky, granted, record.cid, commitment_of(b"s"), 1)
    from harness import Record

    request, signature = core.request(provider, patient, Record(sneaky, granted, b"",
                                                                 record.cid))
    with pytest.raises(WrongPatient, match="disagrees with the chain"):
        serve_read(core.ctx, request=request, signature=signature)
    assert _receipts(core) == 0


def test_a_head_overtaken_by_another_thread_is_replaced_not_used(core: Stack) -> None:
    """Between syncing the index to a head and deciding, another thread may sync the index
    further: the check then takes the newer head instead of deciding on the older one."""
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    old = core.ctx.index.head()
    core.env.mine()
    newer = core.ctx.index.head()  # "another thread" synced the index past `old`
    assert newer.number == old.number + 1
    access = core.ctx.access
    real_latest = access._latest
    calls: list[str] = []

    def latest(arrived: int):  # type: ignore[no-untyped-def]
        calls.append("latest")  # the first: the node's head as asked before the other sync
        return old if calls.count("latest") == 1 else real_latest(arrived)

    def synced_to_old():  # type: ignore[no-untyped-def]
        calls.append("sync")  # this thread's sync, overtaken before it decides
        return old

    access._latest = latest  # type: ignore[method-assign]
    access.index.head = synced_to_old  # type: ignore[method-assign]
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)
    assert calls == ["latest", "sync", "latest"]
    assert answer.head_block == newer.number


def test_a_small_envelope_travels_with_the_answer_and_a_large_one_does_not(
        core: Stack) -> None:
    """Up to ``read_inline_max_bytes`` the answer carries the envelope itself (a read is one
    request); above it the provider fetches it by CID. Either way it is the stored envelope."""
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)  # 10,000 bytes of plaintext
    core.grant(patient, provider)
    with core.store.get(record.cid) as stream:
        stored = stream.read()
    request, signature = core.request(provider, patient, record)
    answer = serve_read(core.ctx, request=request, signature=signature)
    assert answer.envelope == stored
    tight = dataclasses.replace(core.ctx, read_inline_max_bytes=len(stored) - 1)
    request, signature = core.request(provider, patient, record)
    answer = serve_read(tight, request=request, signature=signature)
    assert answer.envelope is None
    assert core.open(provider, answer) == record.plaintext
    exact = dataclasses.replace(core.ctx, read_inline_max_bytes=len(stored))
    request, signature = core.request(provider, patient, record)
    assert serve_read(exact, request=request, signature=signature).envelope == stored


def test_a_tampered_small_envelope_fails_the_read_and_leaves_no_receipt(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    serve_read(core.ctx, request=(r := core.request(provider, patient, record))[0],
               signature=r[1])  # the capsule is cached now: only the inline read sees the bytes
    [block] = list(core.store.root.glob(f"blocks/*/{record.cid}"))
    data = bytearray(block.read_bytes())
    data[-3] ^= 0x01
    block.chmod(0o644)
    block.write_bytes(bytes(data))
    request, signature = core.request(provider, patient, record)
    with pytest.raises(ContentIntegrityError):
        serve_read(core.ctx, request=request, signature=signature)
    assert core.ctx.receipts.get(request.request_id) is None
    assert _receipts(core) == 1
