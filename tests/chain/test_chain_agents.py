"""Agents: every typed call and transaction of the three contracts, results as frozen models."""

from __future__ import annotations

import dataclasses

import pytest
from chainenv import Env, scope
from eth_utils.crypto import keccak

from kizuna.chain.models import (
    CareEventKind,
    EmergencyPolicy,
    Grant,
    Provider,
    ReceiptBatch,
    RecordStatus,
)
from kizuna.errors import ContractReverted, InputError
from kizuna.types import Commitment, RecordId

UMBRAL = b"\x02" + b"\x11" * 32
ROTATED = b"\x03" + b"\x22" * 32


def _id(label: str) -> RecordId:
    return RecordId(bytes(keccak(text=label)))


def test_records(env: Env) -> None:
    patient, guardian = env.new_signer(), env.new_signer()
    ledger = env.chain.ledger
    receipt = ledger.register_record(_id("r1"), Commitment(scope("c1")), scope("notes"),
                                     signer=patient)
    event = ledger.events(receipt, "RecordRegistered")[0]
    assert event.args == {"patient": patient.address, "recordId": _id("r1"),
                          "commitment": scope("c1"), "scopeId": scope("notes")}
    status = ledger.record_of(_id("r1"))
    assert isinstance(status, RecordStatus) and status.patient == patient.address
    assert not status.superseded and status.registered_at > 0
    assert ledger.record_of(_id("unknown")) is None
    with pytest.raises(ContractReverted, match="ConsentLedgerRecordExists"):
        ledger.register_record(_id("r1"), Commitment(scope("c")), scope("n"), signer=patient)
    ledger.supersede_record(_id("r1"), _id("r2"), Commitment(scope("c2")), scope("notes"),
                            signer=patient)
    assert ledger.record_of(_id("r1")).superseded  # type: ignore[union-attr]
    # A guardian registers for the patient (the ...For variant is chosen by `patient=`).
    ledger.appoint_guardian(guardian.address, env.now() + 3600, signer=patient)
    receipt = ledger.register_record(_id("r3"), Commitment(scope("c3")), scope("notes"),
                                     signer=guardian, patient=patient.address)
    assert [e.name for e in ledger.events(receipt)] == ["GuardianActed", "RecordRegistered"]
    assert ledger.record_of(_id("r3")).patient == patient.address  # type: ignore[union-attr]
    with pytest.raises(InputError, match="record_id: must be exactly 32 bytes"):
        ledger.register_record(RecordId(b"short"), Commitment(scope("c")), scope("n"),
                               signer=patient)


def test_grants_revokes_and_expiry(env: Env) -> None:
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    ledger = env.chain.ledger
    expires = env.now() + 100
    ledger.grant(provider.address, scope("lab"), expires, signer=patient)
    grant = ledger.grant_of(patient.address, provider.address, scope("lab"))
    assert isinstance(grant, Grant) and grant.live and grant.expires_at == expires
    with pytest.raises(dataclasses.FrozenInstanceError):
        grant.live = False  # type: ignore[misc]
    assert ledger.access_expiry(patient.address, provider.address, scope("lab")) == expires
    ledger.grant_batch(provider.address, [scope("a"), scope("b")], expires + 50, signer=patient)
    assert ledger.has_access(patient.address, provider.address, scope("b"))
    ledger.revoke(provider.address, scope("a"), signer=patient)
    assert ledger.grant_of(patient.address, provider.address, scope("a")) is None
    receipt = ledger.revoke_all(provider.address, signer=patient)
    assert ledger.revoked_all_block(patient.address, provider.address) == receipt.block_number
    stale = ledger.grant_of(patient.address, provider.address, scope("lab"))
    assert stale is not None and not stale.live
    assert not ledger.has_access(patient.address, provider.address, scope("b"))
    # A new grant after revokeAll is live again; it ends by itself at its expiry.
    ledger.grant(provider.address, scope("lab"), env.now() + 30, signer=patient)
    assert ledger.has_access(patient.address, provider.address, scope("lab"))
    env.advance(60)
    assert not ledger.has_access(patient.address, provider.address, scope("lab"))
    with pytest.raises(InputError, match="at least one scope"):
        ledger.grant_batch(provider.address, [], expires, signer=patient)


def test_guardians_emergency_requests_and_care_events(env: Env) -> None:
    patient, guardian, doctor = env.new_signer(), env.new_signer(), env.new_signer()
    ledger, registry = env.chain.ledger, env.chain.registry
    registry.add_provider(doctor.address, UMBRAL, scope("licence"), signer=env.admin)

    ledger.appoint_guardian(guardian.address, env.now() + 1000, signer=patient)
    assert ledger.is_guardian(patient.address, guardian.address)
    assert ledger.guardian_until(patient.address, guardian.address) > env.now()
    ledger.set_emergency_policy(True, 600, signer=guardian, patient=patient.address)
    assert ledger.emergency_policy(patient.address) == EmergencyPolicy(True, 600)

    ledger.open_emergency_access(patient.address, 300, 7, signer=doctor)
    until = ledger.emergency_access_until(patient.address, doctor.address)
    assert until > env.now()
    assert ledger.has_access(patient.address, doctor.address, scope("anything"))
    receipt = ledger.log_care_event(patient.address, CareEventKind.VISIT_REPORTED,
                                    Commitment(scope("report")), provider=doctor.address,
                                    signer=doctor)
    event = ledger.events(receipt, "CareEventLogged")[0]
    assert event.args["kind"] == CareEventKind.VISIT_REPORTED
    assert event.args["flaggedForReview"] is True
    ledger.close_emergency_access(patient.address, doctor.address, signer=patient)
    assert not ledger.has_access(patient.address, doctor.address, scope("anything"))

    ledger.request_access(patient.address, Commitment(scope("why")), signer=doctor)
    assert ledger.request_open_until(patient.address, doctor.address) == (
        env.now() + ledger.request_ttl())
    ledger.log_care_event(patient.address, CareEventKind.BOOKING_REQUESTED,
                          Commitment(scope("booking")), provider=doctor.address, signer=doctor)
    ledger.close_request(patient.address, doctor.address, signer=doctor)
    with pytest.raises(ContractReverted) as info:
        ledger.log_care_event(patient.address, CareEventKind.DATA_SENT, Commitment(scope("x")),
                              provider=doctor.address, signer=doctor)
    assert info.value.name == "ConsentLedgerCareEventNotAllowed"
    ledger.remove_guardian(guardian.address, signer=patient)
    assert not ledger.is_guardian(patient.address, guardian.address)
    assert ledger.provider_registry() == registry.address


def test_provider_registry(env: Env) -> None:
    registry, doctor = env.chain.registry, env.new_signer()
    assert registry.provider_of(doctor.address) is None
    assert registry.is_registrar(env.admin.address)
    registry.add_provider(doctor.address, UMBRAL, scope("licence"), signer=env.admin)
    entry = registry.provider_of(doctor.address)
    assert isinstance(entry, Provider)
    assert (entry.umbral_public_key, entry.credential_commitment, entry.active) == (
        UMBRAL, scope("licence"), True)
    registry.suspend_provider(doctor.address, signer=env.admin)
    assert not registry.is_active_provider(doctor.address) and registry.is_registered(
        doctor.address)
    with pytest.raises(ContractReverted, match="ProviderRegistryStatusUnchanged"):
        registry.suspend_provider(doctor.address, signer=env.admin)
    registry.reinstate_provider(doctor.address, signer=env.admin)
    registry.rotate_umbral_key(ROTATED, signer=doctor)
    assert registry.provider_of(doctor.address).umbral_public_key == ROTATED  # type: ignore[union-attr]
    second = env.new_signer()
    registry.add_registrar(second.address, signer=env.admin)
    assert registry.is_registrar(second.address)


def _pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(min(a, b) + max(a, b)))


def test_access_log(env: Env) -> None:
    log = env.chain.access_log
    leaves = [bytes(keccak(keccak(text=f"receipt {i}"))) for i in range(4)]
    left, right = _pair(leaves[0], leaves[1]), _pair(leaves[2], leaves[3])
    root = _pair(left, right)
    now = env.now()
    assert log.is_anchorer(env.admin.address)
    batch = log.anchor(root, 4, now - 100, now - 1, signer=env.admin)
    assert isinstance(batch, ReceiptBatch)
    assert (batch.batch_index, batch.count, batch.anchored_by) == (0, 4, env.admin.address)
    assert log.batch_of(root) == dataclasses.replace(batch, anchored_by=None, block_number=0,
                                                     tx_hash=b"")
    assert log.batch_count(env.admin.address) == (1, now - 1)
    assert log.verify_receipt(root, leaves[2], [leaves[3], left])
    assert not log.verify_receipt(root, leaves[2], [leaves[0], left])
    assert log.batch_of(b"\x01" * 32) is None
    with pytest.raises(ContractReverted) as info:
        log.anchor(root, 4, now - 1, now - 1, signer=env.admin)
    assert info.value.name == "AccessLogRootExists"
    assert info.value.error_args == {"root": root, "batchIndex": 0}
    with pytest.raises(InputError, match="count"):
        log.anchor(root, 0, now, now, signer=env.admin)
