"""The patient's story at the service level, against real components (tests/services/conftest.py):
a Synthea history imported, two scopes granted, the provider reads exactly those (and gets the
original canonical FHIR bytes), a revoke refuses the next read, requests, reports, bookings,
guardians, break-glass for the auditor, the chain node going away mid-upload, tampering."""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from local_stack import LocalStack

from kizuna.chain.eip712 import SignedAction
from kizuna.chain.relayer import RelayRefused
from kizuna.client.patient import PatientClient
from kizuna.crypto.commitment import commitment_of
from kizuna.db.schema import records as records_table
from kizuna.errors import (
    AccessDenied,
    ConflictError,
    ContractReverted,
    EnvelopeFormatError,
    FragmentError,
    InputError,
    IntegrityError,
    NodeUnreachable,
    StorageError,
)
from kizuna.services import care, emergency, grants, inbox, records
from kizuna.services.follower import IndexFollower
from kizuna.types import RecordId
from kizuna.wire.care import ACCESS_REQUEST
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.records import EnvelopeTooLarge, RecordInfo

pytestmark = pytest.mark.anvil


def _labels(entries: list[Any]) -> list[str]:
    counts = collections.Counter(str(e.source.scope_label) for e in entries)
    return [label for label, _ in counts.most_common()]


def test_story_import_grant_read_revoke(stack: LocalStack, synthea_infant: dict[str, Any]) -> None:
    patient, provider, stranger = stack.patient(), stack.provider(), stack.provider()
    entries = patient.import_fhir(synthea_infant)
    assert len(entries) == len(synthea_infant["entry"])
    for entry in entries[:5]:
        status = stack.chain.ledger.record_of(entry.record.record_id)
        assert status is not None and status.patient == patient.address
        assert stack.store.has(entry.record.cid)
    assert {r.record_id for r in patient.records()} == {e.record.record_id for e in entries}

    first, second, third = _labels(entries)[:3]
    granted = patient.grant(provider.address, [first, second],
                            expires_at=stack.now() + 3600)
    assert granted.kfrags_stored == 2

    assert provider.patients() == [patient.address]
    readable = {r.record_id for r in provider.records(patient=patient.address)}
    expected = {e.record.record_id for e in entries
                if str(e.source.scope_label) in (first, second)}
    assert readable == expected

    by_label = {label: next(e for e in entries if str(e.source.scope_label) == label)
                for label in (first, second, third)}
    for label in (first, second):
        entry = by_label[label]
        plain = provider.read(patient=patient.address, record_id=entry.record.record_id)
        assert plain == entry.source.content  # exactly the canonical FHIR bytes
    with pytest.raises(AccessDenied):
        provider.read(patient=patient.address, record_id=by_label[third].record.record_id)
    with pytest.raises(AccessDenied):
        stranger.read(patient=patient.address, record_id=by_label[first].record.record_id)

    revoked = patient.revoke(provider.address, first)
    assert revoked.kfrags_deleted == 1
    with pytest.raises(AccessDenied):
        provider.read(patient=patient.address, record_id=by_label[first].record.record_id)
    assert provider.read(patient=patient.address,
                         record_id=by_label[second].record.record_id) == \
        by_label[second].source.content

    reads = patient.reads()
    assert [(r.provider, r.record_id) for r in reads] == [
        (provider.address, by_label[first].record.record_id),
        (provider.address, by_label[second].record.record_id),
        (provider.address, by_label[second].record.record_id),
    ]
    # the patient reads their own record back (no receipt: it is theirs)
    assert patient.read_own(by_label[third].record.record_id) == by_label[third].source.content
    # a fresh client of the same wallet (another device) recovers every label from the ids
    again = PatientClient(signer=patient.signer, service=stack.service, chain=stack.chain)
    labelled = {bytes(r.record_id): label for r, label in again.labelled_records()}
    assert labelled == {bytes(e.record.record_id): e.source.scope_label for e in entries}


def test_request_answered_no_then_yes(stack: LocalStack) -> None:
    patient, asking, other = stack.patient(), stack.provider(), stack.provider()
    sent = asking.request_access(patient.address, b"May I see your lab results?")
    items = [i for i in patient.inbox() if i.kind == ACCESS_REQUEST]
    assert [(i.provider, i.ref, i.cid) for i in items] == [(asking.address, sent.ref, sent.cid)]
    assert patient.open_message(sent.ref) == b"May I see your lab results?"
    assert [i.kind for i in asking.inbox()] == ["request-open"]

    patient.decline(asking.address)
    assert [i.kind for i in asking.inbox()] == ["request-closed"]
    assert not [i for i in patient.inbox() if i.kind == ACCESS_REQUEST]

    other.request_access(patient.address, b"Referral: cardiology")
    patient.add_record(b'{"resourceType":"Basic"}', label="Basic",
                       content_type="application/fhir+json")
    patient.grant(other.address, ["Basic"], expires_at=stack.now() + 600)
    assert [i.kind for i in other.inbox()] == ["request-granted"]


def test_report_and_booking_reach_the_other_side_encrypted(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    report = b'{"resourceType":"DiagnosticReport","status":"final"}'
    with pytest.raises(ContractReverted, match="CareEventNotAllowed"):  # no grant: no authority
        provider.send(patient.address, "report", report)
    patient.grant(provider.address, ["DiagnosticReport"], expires_at=stack.now() + 600)
    sent = provider.send(patient.address, "report", report)
    assert commitment_of(stack.store.get(sent.cid).read()) == sent.ref
    assert report not in stack.store.get(sent.cid).read()  # the store holds ciphertext only
    mine = [i for i in patient.inbox() if i.kind == "report"]
    assert [(i.actor, i.ref, i.cid) for i in mine] == [(provider.address, sent.ref, sent.cid)]
    assert patient.open_message(mine[0].ref) == report
    with pytest.raises(IntegrityError):  # encrypted to the patient: the provider cannot open it
        provider.open_message(sent.ref)

    booking = patient.request_booking(provider.address, b'{"resourceType":"Appointment"}')
    asked = [i for i in provider.inbox() if i.kind == "booking-request"]
    assert [(i.patient, i.ref) for i in asked] == [(patient.address, booking.ref)]
    assert provider.open_message(booking.ref) == b'{"resourceType":"Appointment"}'
    outsider = stack.provider()
    with pytest.raises(AccessDenied):
        care.open_message(stack.ctx, reader=outsider.address, ref=booking.ref)


def test_guardian_sets_policy_and_break_glass_awaits_review(stack: LocalStack) -> None:
    patient, guardian, doctor = stack.patient(), stack.patient(), stack.provider()
    patient.appoint_guardian(guardian.address, until=stack.now() + 86_400)
    with pytest.raises(ContractReverted, match="EmergencyNotAllowed"):  # no policy yet
        doctor.break_glass(patient.address, duration=600, reason_code=1)
    confirmed = guardian.set_emergency_policy(allowed=True, max_duration=3600,
                                              patient=patient.address)
    assert confirmed.args["patient"] == patient.address
    opened = doctor.break_glass(patient.address, duration=600, reason_code=7)
    waiting = inbox.auditor_inbox(stack.ctx, patient=patient.address)
    assert [(a.provider, a.reason_code, a.tx_hash) for a in waiting] == [
        (doctor.address, 7, opened.tx_hash)]
    inbox.mark_reviewed(stack.ctx, reviewer=stack.admin.address, tx_hash=waiting[0].tx_hash,
                        log_index=waiting[0].log_index)
    assert inbox.auditor_inbox(stack.ctx, patient=patient.address) == []


def test_upload_refuses_bad_envelopes_and_keeps_nothing(stack: LocalStack) -> None:
    patient = stack.patient()
    rid, sid, envelope = patient.seal(b"x" * 1000, label="Observation",
                                      content_type="application/fhir+json")
    signed = patient.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
    pins_before = set(stack.store.pins())

    with pytest.raises(EnvelopeTooLarge):
        records.upload_record(stack.ctx, patient=patient.address, record_id=rid, scope_id=sid,
                              envelope=envelope, registration=signed, relayer=stack.relayer,
                              max_size=500)
    with pytest.raises(EnvelopeFormatError):
        patient.upload(record_id=rid, scope_id=sid, envelope=b"NOPE" + envelope[4:],
                       registration=signed)
    other_rid = RecordId(os.urandom(32))
    with pytest.raises(InputError, match="names record"):
        patient.upload(record_id=other_rid, scope_id=sid, envelope=envelope,
                       registration=patient.sign_registration(record_id=other_rid,
                                                              scope_id=sid, envelope=envelope))
    _, _, other_envelope = patient.seal(b"y" * 1000, label="Observation",
                                        content_type="application/fhir+json", record_id=rid)
    with pytest.raises(InputError, match="signed commitment"):
        patient.upload(record_id=rid, scope_id=sid, envelope=other_envelope,
                       registration=signed)
    assert set(stack.store.pins()) == pins_before  # nothing kept by any failed upload
    with pytest.raises(InputError, match="content type"):
        r2, s2, exe = patient.seal(b"MZ", label="Binary", content_type="application/x-msdownload")
        patient.upload(record_id=r2, scope_id=s2, envelope=exe,
                       registration=patient.sign_registration(record_id=r2, scope_id=s2,
                                                              envelope=exe))

    info = patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)
    assert info.commitment == commitment_of(envelope)
    with pytest.raises(ConflictError):
        patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)


def test_wallet_sent_registration_is_checked_against_its_event(stack: LocalStack) -> None:
    patient = stack.patient()
    rid, sid, envelope = patient.seal(b"pdf bytes", label="DocumentReference",
                                      content_type="application/pdf")
    prepared = records.prepare_registration(stack.ctx, patient=patient.address, record_id=rid,
                                            commitment=commitment_of(envelope), scope_id=sid,
                                            deadline=stack.now() + 600)
    assert prepared.transaction["from"] == patient.address
    assert prepared.typed_data is not None
    assert prepared.typed_data["primaryType"] == "RegisterRecord"
    unrelated = stack.chain.ledger.set_emergency_policy(False, 0, signer=patient.signer)
    with pytest.raises(InputError, match="RecordRegistered"):
        patient.upload(record_id=rid, scope_id=sid, envelope=envelope,
                       registration=SentTransaction(unrelated.tx_hash))
    sent = stack.chain.ledger.register_record(rid, commitment_of(envelope), sid,
                                              signer=patient.signer)
    info = patient.upload(record_id=rid, scope_id=sid, envelope=envelope,
                          registration=SentTransaction(sent.tx_hash))
    assert info.content_type == "application/pdf"
    assert patient.read_own(rid) == b"pdf bytes"


def test_a_failed_grant_leaves_no_key_fragments(stack: LocalStack) -> None:
    patient, provider, impostor = stack.patient(), stack.provider(), stack.provider()
    sid = patient.scope("Condition")
    good = [k.to_bytes() for k in patient.keys.kfrags_for(sid, provider.public_key)]
    wrong = [k.to_bytes() for k in patient.keys.kfrags_for(sid, impostor.public_key)]
    expires = stack.now() + 600

    def signed(deadline: int) -> SignedAction:
        typed = stack.chain.ledger.grant_typed_data(
            patient=patient.address, provider=provider.address, scope_id=sid,
            expires_at=expires, deadline=deadline)
        return SignedAction(typed, patient.signer.sign_typed_data(typed))

    with pytest.raises(FragmentError):  # fragments for another key: refused before the chain
        grants.grant_access(stack.ctx, patient=patient.address, provider=provider.address,
                            scope_ids=[sid], expires_at=expires, kfrags={sid: wrong},
                            authorization=signed(stack.now() + 600), relayer=stack.relayer)
    with pytest.raises(RelayRefused, match="SignatureExpired"):
        grants.grant_access(stack.ctx, patient=patient.address, provider=provider.address,
                            scope_ids=[sid], expires_at=expires, kfrags={sid: good},
                            authorization=signed(stack.now() - 1), relayer=stack.relayer)
    assert stack.ctx.kfrags.count(patient=patient.address) == 0
    assert not stack.chain.ledger.has_access(patient.address, provider.address, sid)


def test_tampered_ciphertext_is_never_returned_as_data(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    content = b'{"resourceType":"Observation","status":"final"}' * 50
    info = patient.add_record(content, label="Observation", content_type="application/fhir+json")
    patient.grant(provider.address, ["Observation"], expires_at=stack.now() + 600)
    envelope = bytearray(stack.store.get(info.cid).read())
    envelope[-20] ^= 0x01  # one bit of the last segment
    forged = stack.store.put(bytes(envelope))
    with stack.ctx.db.write() as conn:  # a compromised service database points at it
        conn.execute(records_table.update().where(records_table.c.record_id == info.record_id)
                     .values(cid=forged))
    with pytest.raises(IntegrityError):
        provider.read(patient=patient.address, record_id=info.record_id)

    second = patient.add_record(content, label="Observation",
                                content_type="application/fhir+json")
    blocks = sorted((Path(stack.store.root) / "blocks").rglob(second.cid))
    assert blocks, "the envelope's root block"
    raw = bytearray(blocks[0].read_bytes())
    raw[-5] ^= 0x01
    blocks[0].write_bytes(bytes(raw))
    with pytest.raises(StorageError):  # the store re-hashes blocks: corrupted bytes never leave
        provider.read(patient=patient.address, record_id=second.record_id)


def test_chain_node_down_mid_upload_then_retry(stack: LocalStack) -> None:
    patient = stack.patient()
    plaintext = os.urandom(300_000)
    rid, sid, envelope = patient.seal(plaintext, label="Media",
                                      content_type="application/octet-stream")
    signed = patient.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
    stack.advance(1)
    stack.ctx.index.head()
    pins_before = set(stack.store.pins())

    def upload_stream() -> Any:
        for offset in range(0, len(envelope), 65_536):
            if offset == 131_072:
                stack.node.stop()  # the node goes away while the envelope streams in
            yield envelope[offset:offset + 65_536]

    try:
        with pytest.raises(NodeUnreachable):
            patient.upload(record_id=rid, scope_id=sid, envelope=upload_stream(),
                           registration=signed)
        with stack.ctx.db.read() as conn:
            assert conn.execute(records_table.select().where(
                records_table.c.record_id == rid)).first() is None
        assert set(stack.store.pins()) == pins_before
    finally:
        stack.node.start()  # same port, same state file: the chain survives
    info = patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)
    assert info.record_id == rid
    assert stack.chain.ledger.record_of(rid) is not None
    assert patient.read_own(rid) == plaintext


def test_a_retry_after_a_lost_answer_is_not_registered_twice(stack: LocalStack) -> None:
    patient = stack.patient()
    rid, sid, envelope = patient.seal(b'{"resourceType":"Condition"}', label="Condition",
                                      content_type="application/fhir+json")
    signed = patient.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
    stack.relayer.relay(signed)  # the first attempt reached the chain; its answer was lost
    pins_before = set(stack.store.pins())
    # other bytes under that record id are a conflict (the chain holds another commitment)
    _, _, forged = patient.seal(b"{}", label="Condition", content_type="application/fhir+json",
                                record_id=rid)
    with pytest.raises(ConflictError, match="another commitment"):
        patient.upload(record_id=rid, scope_id=sid, envelope=forged,
                       registration=patient.sign_registration(record_id=rid, scope_id=sid,
                                                              envelope=forged))
    assert set(stack.store.pins()) == pins_before
    info = patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)
    assert info.commitment == commitment_of(envelope)
    assert patient.read_own(rid) == b'{"resourceType":"Condition"}'
    with pytest.raises(ConflictError, match="exists already"):
        patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed)


def test_an_expired_grant_reads_nothing_and_lists_nothing(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    lab = patient.add_record(b'{"resourceType":"Observation"}', label="Observation:laboratory",
                             content_type="application/fhir+json")
    note = patient.add_record(b"free text", label="DocumentReference",
                              content_type="text/plain")
    patient.grant(provider.address, ["Observation:laboratory", "DocumentReference"],
                  expires_at=stack.now() + 120)
    assert {r.record_id for r in provider.records(content_type="text/plain")} == {
        note.record_id}
    assert {r.record_id for r in provider.records()} == {lab.record_id, note.record_id}
    assert [r.record_id for r in patient.records(labels=["Observation:laboratory"])] == [
        lab.record_id]
    assert patient.label_of(lab) == "Observation:laboratory"
    stack.advance(121)
    assert provider.records() == []
    assert provider.patients() == []
    with pytest.raises(AccessDenied):
        provider.read(patient=patient.address, record_id=lab.record_id)


def test_a_new_version_supersedes_the_old_one(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    first = patient.add_record(b'{"resourceType":"AllergyIntolerance","v":1}',
                               label="AllergyIntolerance",
                               content_type="application/fhir+json")
    patient.grant(provider.address, ["AllergyIntolerance"], expires_at=stack.now() + 600)
    assert provider.read(patient=patient.address, record_id=first.record_id).endswith(b"1}")
    with pytest.raises(InputError, match="superseded record"):  # the signature must name it
        rid, sid, envelope = patient.seal(b"{}", label="AllergyIntolerance",
                                          content_type="application/fhir+json")
        records.upload_record(stack.ctx, patient=patient.address, record_id=rid, scope_id=sid,
                              envelope=envelope, relayer=stack.relayer,
                              supersedes=first.record_id,
                              registration=patient.sign_registration(
                                  record_id=rid, scope_id=sid, envelope=envelope))
    second = patient.replace_record(first.record_id,
                                    b'{"resourceType":"AllergyIntolerance","v":2}',
                                    label="AllergyIntolerance",
                                    content_type="application/fhir+json")
    status = stack.chain.ledger.record_of(first.record_id)
    assert status is not None and status.superseded
    assert [r.record_id for r in provider.records()] == [second.record_id]
    assert provider.read(patient=patient.address, record_id=second.record_id).endswith(b"2}")
    with pytest.raises(AccessDenied):
        provider.read(patient=patient.address, record_id=first.record_id)


def test_the_same_upload_twice_at_once_keeps_the_winners_blob(stack: LocalStack) -> None:
    patient = stack.patient()
    rid, sid, envelope = patient.seal(os.urandom(50_000), label="Media",
                                      content_type="application/octet-stream")
    signed = patient.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append(patient.upload(record_id=rid, scope_id=sid, envelope=envelope,
                                           registration=signed))
        except (ConflictError, ContractReverted) as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    won = [o for o in outcomes if isinstance(o, RecordInfo)]
    assert len(won) == 1 and len(outcomes) == 2, outcomes
    assert won[0].cid in stack.store.pins()
    assert len(patient.read_own(rid)) == 50_000


def test_break_glass_reads_the_emergency_kit_and_nothing_else(stack: LocalStack) -> None:
    patient, doctor = stack.patient(), stack.provider()
    follower = IndexFollower(stack.ctx)
    allergy = patient.add_record(b'{"resourceType":"AllergyIntolerance","code":{"text":"PCN"}}',
                                 label="AllergyIntolerance",
                                 content_type="application/fhir+json")
    private = patient.add_record(b'{"resourceType":"Condition"}', label="Condition",
                                 content_type="application/fhir+json")
    patient.set_emergency_policy(allowed=True, max_duration=600)
    left = patient.leave_emergency_kit(["AllergyIntolerance"])
    assert left >= 1  # one fragment for every active provider, the doctor among them
    assert emergency.kit_scopes(stack.ctx, patient=patient.address, provider=doctor.address) \
        == [patient.keys.scope_id("AllergyIntolerance")]
    with pytest.raises(AccessDenied):  # the kit alone opens nothing: no emergency access yet
        emergency.open_kit(stack.ctx, patient=patient.address, provider=doctor.address)
    with pytest.raises(AccessDenied):
        doctor.read(patient=patient.address, record_id=allergy.record_id)
    assert stack.ctx.kfrags.count(patient=patient.address, provider=doctor.address) == 0

    doctor.break_glass(patient.address, duration=300, reason_code=3)
    follower.tick()  # nothing to prune: break-glass reads take the kit's fragments directly
    assert doctor.read(patient=patient.address, record_id=allergy.record_id).endswith(b'"PCN"}}')
    with pytest.raises(AccessDenied):  # allowed on chain, but no fragments: not in the kit
        doctor.read(patient=patient.address, record_id=private.record_id)
    stack.advance(301)
    with pytest.raises(AccessDenied):  # the emergency access has ended
        doctor.read(patient=patient.address, record_id=allergy.record_id)
    follower.tick()  # ... no fragment of it is in kfrags; the kit stays for the next emergency
    assert stack.ctx.kfrags.count(patient=patient.address, provider=doctor.address) == 0
    assert emergency.kit_scopes(stack.ctx, patient=patient.address, provider=doctor.address)
    assert [r.provider for r in patient.reads()] == [doctor.address]
