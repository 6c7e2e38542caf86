"""Wallet flows (prepared transactions and typed data, sent by the "wallet" itself), files
(PDF, DICOM, a large streamed file) and the inbox key a provider must not take on trust."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes
from local_stack import LocalStack
from pydicom.data import get_testdata_file

from kizuna.chain.eip712 import TypedData
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.chainview import registered_commitment
from kizuna.client.patient import PatientClient
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import (
    AccessDenied,
    ContractReverted,
    FragmentError,
    InputError,
    NotFoundError,
)
from kizuna.services import care, grants, guardians, records, requests
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.onchain import PreparedAction, SentTransaction

pytestmark = pytest.mark.anvil


def _send_as_wallet(stack: LocalStack, signer: LocalKeySigner, prepared: PreparedAction) -> bytes:
    """What MetaMask does with ``eth_sendTransaction`` params: add its nonce, sign, send."""
    params = prepared.transaction
    assert params["from"] == signer.address
    w3 = stack.chain.w3
    tx = {"to": params["to"], "data": params["data"], "value": int(params["value"], 16),
          "gas": int(params["gas"], 16), "maxFeePerGas": int(params["maxFeePerGas"], 16),
          "maxPriorityFeePerGas": int(params["maxPriorityFeePerGas"], 16),
          "chainId": int(params["chainId"], 16), "type": 2,
          "nonce": w3.eth.get_transaction_count(signer.address, "pending")}
    return bytes(w3.eth.send_raw_transaction(HexBytes(signer.sign_transaction(tx))))


def _tiny_pdf() -> bytes:
    body = b"BT /F1 12 Tf 20 20 Td (Kizuna) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 50] /Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def test_grant_and_revoke_sent_by_a_wallet(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    first, second = patient.scope("Observation"), patient.scope("Condition")
    expires = stack.now() + 3600
    prepared = grants.prepare_grant(stack.ctx, patient=patient.address,
                                    provider=provider.address, scope_ids=[first, second],
                                    expires_at=expires, deadline=stack.now() + 600)
    assert prepared.action == "grantBatch"
    assert prepared.typed_data is not None and prepared.typed_data["primaryType"] == "GrantBatch"
    # the typed data is exactly what the relayer would accept, signed by the wallet
    typed = TypedData.from_json(json.loads(json.dumps(prepared.typed_data)))
    assert typed.message["scopeIds"] == ["0x" + first.hex(), "0x" + second.hex()]

    kfrags = {sid: [k.to_bytes() for k in patient.keys.kfrags_for(sid, provider.public_key)]
              for sid in (first, second)}
    tx_hash = _send_as_wallet(stack, patient.signer, prepared)
    result = grants.grant_access(stack.ctx, patient=patient.address, provider=provider.address,
                                 scope_ids=[first, second], expires_at=expires, kfrags=kfrags,
                                 authorization=SentTransaction(tx_hash))
    assert result.kfrags_stored == 2
    assert stack.chain.ledger.has_access(patient.address, provider.address, second)

    # a hash of a transaction that granted something else is not accepted for this grant
    with pytest.raises(InputError, match="AccessGranted"):
        grants.grant_access(stack.ctx, patient=patient.address, provider=provider.address,
                            scope_ids=[first], expires_at=expires,
                            kfrags={first: kfrags[first]},
                            authorization=SentTransaction(tx_hash))
    with pytest.raises(InputError, match="knows no transaction"):
        grants.grant_access(stack.ctx, patient=patient.address, provider=provider.address,
                            scope_ids=[first], expires_at=expires,
                            kfrags={first: kfrags[first]},
                            authorization=SentTransaction(os.urandom(32)))

    revoking = grants.prepare_revoke(stack.ctx, patient=patient.address,
                                     provider=provider.address, scope_id=first,
                                     deadline=stack.now() + 600)
    assert revoking.typed_data is not None and revoking.typed_data["primaryType"] == "Revoke"
    revoked = grants.revoke_access(
        stack.ctx, patient=patient.address, provider=provider.address, scope_id=first,
        authorization=SentTransaction(_send_as_wallet(stack, patient.signer, revoking)))
    assert revoked.kfrags_deleted == 1
    everything = grants.prepare_revoke_all(stack.ctx, patient=patient.address,
                                           provider=provider.address)
    assert everything.typed_data is None  # revokeAll has no signed form
    done = grants.revoke_all(
        stack.ctx, patient=patient.address, provider=provider.address,
        authorization=SentTransaction(_send_as_wallet(stack, patient.signer, everything)))
    assert done.kfrags_deleted == 1
    assert stack.ctx.kfrags.count(patient=patient.address) == 0


def test_prepared_actions_are_simulated_first(stack: LocalStack) -> None:
    patient, doctor = stack.patient(), stack.provider()
    with pytest.raises(ContractReverted, match="EmergencyNotAllowed"):
        guardians.prepare_break_glass(stack.ctx, provider=doctor.address,
                                      patient=patient.address, duration=60, reason_code=1)
    policy = guardians.prepare_emergency_policy(stack.ctx, patient=patient.address,
                                                allowed=True, max_duration=600)
    confirmed = guardians.confirm_emergency_policy(
        stack.ctx, patient=patient.address, allowed=True, max_duration=600,
        transaction=SentTransaction(_send_as_wallet(stack, patient.signer, policy)))
    assert confirmed.event == "EmergencyPolicySet"
    opening = guardians.prepare_break_glass(stack.ctx, provider=doctor.address,
                                            patient=patient.address, duration=60, reason_code=2)
    assert opening.transaction["from"] == doctor.address
    with pytest.raises(InputError, match="EmergencyPolicySet"):  # the wrong event for the claim
        guardians.confirm_emergency_policy(
            stack.ctx, patient=patient.address, allowed=False, max_duration=600,
            transaction=SentTransaction(confirmed.tx_hash))


def test_documents_dicom_and_a_large_file_stream_through(stack: LocalStack, tmp_path: Path) -> None:
    patient, provider = stack.patient(), stack.provider()
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(_tiny_pdf())
    description, stored = patient.add_document(pdf, subject="Patient/p1")
    assert stored.content_type == "application/pdf"
    # The same bytes again (another name): the ids are the file's (docs/keys.md "Single
    # files"), so the records already there are returned and nothing is added.
    before = len(patient.records())
    copy = tmp_path / "letter (copy).pdf"
    copy.write_bytes(pdf.read_bytes())
    again = patient.add_document(copy, subject="Patient/p1")
    assert [r.record_id for r in again] == [description.record_id, stored.record_id]
    assert len(patient.records()) == before
    ct = Path(str(get_testdata_file("CT_small.dcm", download=False)))
    study, files = patient.add_dicom_study([ct], subject="Patient/p1")
    assert [f.content_type for f in files] == ["application/dicom"]

    big = tmp_path / "activity.bin"
    big.write_bytes(os.urandom(5 << 20))
    large = patient.add_file(big, label="Media", content_type="application/octet-stream")
    assert large.size > 5 << 20

    patient.grant(provider.address, ["DocumentReference", "ImagingStudy"],
                  expires_at=stack.now() + 600)
    described: dict[str, Any] = json.loads(provider.read(patient=patient.address,
                                                         record_id=description.record_id))
    url = described["content"][0]["attachment"]["url"]
    assert url == f"urn:kizuna:record:0x{stored.record_id.hex()}"
    assert provider.read(patient=patient.address, record_id=stored.record_id) == pdf.read_bytes()
    assert provider.read(patient=patient.address, record_id=files[0].record_id) == ct.read_bytes()
    assert json.loads(provider.read(patient=patient.address, record_id=study.record_id))[
        "resourceType"] == "ImagingStudy"
    with pytest.raises(AccessDenied):
        provider.read(patient=patient.address, record_id=large.record_id)
    assert patient.read_own(large.record_id) == big.read_bytes()
    assert {r.record_id for r in provider.records(content_type="application/dicom")} == {
        files[0].record_id}


def test_a_substituted_inbox_key_is_caught_by_the_sender(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    patient.grant(provider.address, ["Observation"], expires_at=stack.now() + 600)
    with pytest.raises(NotFoundError):
        care.inbox_key_of(stack.ctx, provider.address)
    published = care.inbox_key_of(stack.ctx, patient.address)
    published.verify()
    # a compromised service database swaps in a key it controls, keeping the old signature
    planted = pre.UmbralSecretKey.random().public_key.to_bytes()
    with stack.ctx.db.write() as conn:
        conn.execute(care.inbox_keys.update().where(care.inbox_keys.c.patient == patient.address)
                     .values(public_key=planted))
    with pytest.raises(AccessDenied, match="signed by"):
        provider.send(patient.address, "report", b'{"resourceType":"DiagnosticReport"}')
    with pytest.raises(AccessDenied):  # and the service itself refuses a forged statement
        care.publish_inbox_key(stack.ctx, patient=patient.address, public_key=planted,
                               signature=published.signature)
    patient.publish_inbox_key()  # the patient re-publishes: messages flow again
    sent = provider.send(patient.address, "prescription", b'{"resourceType":"MedicationRequest"}')
    assert patient.open_message(sent.ref) == b'{"resourceType":"MedicationRequest"}'


def test_a_guardian_uploads_for_the_patient_to_the_registered_scope_key(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    guardian = PatientClient(signer=stack.signer(), service=stack.service, chain=stack.chain)
    patient.appoint_guardian(guardian.address, until=stack.now() + 86_400)
    sid = patient.scope("Observation")
    keys = grants.scope_keys(stack.ctx, patient=patient.address, scope_id=sid)
    rid = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(b'{"resourceType":"Observation","status":"final"}',
                                   owner_key=keys.delegating_key, record_id=rid,
                                   content_type="application/fhir+json"))
    sent = stack.chain.ledger.register_record(rid, commitment_of(envelope), sid,
                                              signer=guardian.signer, patient=patient.address)
    info = records.upload_record(stack.ctx, patient=patient.address, record_id=rid,
                                 scope_id=sid, envelope=envelope,
                                 registration=SentTransaction(sent.tx_hash))
    assert info.patient == patient.address
    assert patient.read_own(rid) == b'{"resourceType":"Observation","status":"final"}'
    patient.grant(provider.address, ["Observation"], expires_at=stack.now() + 600)
    assert provider.read(patient=patient.address, record_id=rid) == \
        b'{"resourceType":"Observation","status":"final"}'
    with pytest.raises(AccessDenied):  # a guardian acts on-chain; the envelopes stay the patient's
        records.open_own_record(stack.ctx, patient=guardian.address, record_id=rid)


def test_a_wallet_provider_sends_a_prescription(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    ref = os.urandom(32)
    with pytest.raises(ContractReverted, match="CareEventNotAllowed"):
        care.prepare_care_event(stack.ctx, sender=provider.address, patient=patient.address,
                                kind="prescription", ref=ref, provider=provider.address)
    patient.grant(provider.address, ["MedicationRequest"], expires_at=stack.now() + 600)
    scope = stack.ctx.index.grants_to(provider.address)[0].scope_id
    content = b'{"resourceType":"MedicationRequest","status":"active"}'
    inbox_key = care.inbox_key_of(stack.ctx, patient.address)
    inbox_key.verify()
    message_id = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(content, owner_key=inbox_key.public_key,
                                   record_id=message_id, content_type="application/fhir+json"))
    prepared = care.prepare_care_event(stack.ctx, sender=provider.address,
                                       patient=patient.address, kind="prescription",
                                       ref=commitment_of(envelope), provider=provider.address,
                                       scope_id=scope)
    tx_hash = _send_as_wallet(stack, provider.signer, prepared)
    with pytest.raises(InputError, match="CareEventLogged"):  # announced as a prescription
        care.send_message(stack.ctx, sender=provider.address, patient=patient.address,
                          provider=provider.address, kind="report", message_id=message_id,
                          envelope=envelope, transaction=SentTransaction(tx_hash))
    sent = care.send_message(stack.ctx, sender=provider.address, patient=patient.address,
                             provider=provider.address, kind="prescription",
                             message_id=message_id, envelope=envelope,
                             transaction=SentTransaction(tx_hash))
    items = [i for i in patient.inbox() if i.kind == "prescription"]
    assert [(i.ref, i.cid, i.flagged_for_review) for i in items] == [(sent.ref, sent.cid, False)]
    assert patient.open_message(sent.ref) == content


def test_threshold_fragments_and_streamed_reads(stack: LocalStack, tmp_path: Path) -> None:
    patient, provider = stack.patient(), stack.provider()
    big = tmp_path / "series.bin"
    big.write_bytes(os.urandom(3 << 20))
    stored = patient.add_file(big, label="Media", content_type="application/octet-stream")
    patient.grant(provider.address, ["Media"], expires_at=stack.now() + 600,
                  threshold=2, shares=3)
    assert stack.ctx.kfrags.count(patient=patient.address, provider=provider.address) == 3
    grant = provider.request_read(patient=patient.address, record_id=stored.record_id)
    assert len(grant.cfrags) == 3
    out = tmp_path / "read.bin"
    with out.open("wb") as destination:
        written = provider.read_to(patient=patient.address, record_id=stored.record_id,
                                   destination=destination)
    assert written == big.stat().st_size and out.read_bytes() == big.read_bytes()
    # two of the three capsule fragments are enough; one is not
    with stack.store.get(grant.cid) as stream:
        envelope = stream.read()
    two = dataclasses.replace(grant, cfrags=grant.cfrags[1:])
    assert provider.open(two, envelope) == big.read_bytes()
    with pytest.raises(FragmentError):
        provider.open(dataclasses.replace(grant, cfrags=grant.cfrags[:1]), envelope)
    own = tmp_path / "own.bin"
    with own.open("wb") as destination:
        patient.read_own_to(stored.record_id, destination)
    assert own.read_bytes() == big.read_bytes()


def test_the_provider_checks_the_commitment_the_node_reports(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    info = patient.add_record(b'{"resourceType":"Procedure"}', label="Procedure",
                              content_type="application/fhir+json")
    assert registered_commitment(stack.chain, patient=patient.address,
                                 record_id=info.record_id) == info.commitment
    with pytest.raises(NotFoundError):
        registered_commitment(stack.chain, patient=provider.address, record_id=info.record_id)
    patient.grant(provider.address, ["Procedure"], expires_at=stack.now() + 600)
    grant = provider.request_read(patient=patient.address, record_id=info.record_id)
    with stack.store.get(grant.cid) as stream:
        envelope = stream.read()
    # a service that lies about the patient (so about where the commitment is) is caught
    lying = dataclasses.replace(grant, patient=provider.address)
    with pytest.raises(NotFoundError):
        provider.open(lying, envelope)
    assert provider.open(grant, envelope) == b'{"resourceType":"Procedure"}'


def test_every_wallet_action_round_trips(stack: LocalStack) -> None:
    patient, guardian_signer, provider = stack.patient(), stack.signer(), stack.provider()
    # guardian: appoint, listed, removed
    appoint = guardians.prepare_appoint_guardian(stack.ctx, patient=patient.address,
                                                 guardian=guardian_signer.address,
                                                 until=stack.now() + 3600)
    guardians.confirm_appoint_guardian(
        stack.ctx, patient=patient.address, guardian=guardian_signer.address,
        transaction=SentTransaction(_send_as_wallet(stack, patient.signer, appoint)))
    assert [g.guardian for g in guardians.guardians_of(stack.ctx, patient=patient.address)] == [
        guardian_signer.address]
    # the guardian's wallet acts for the patient (setEmergencyPolicyFor)
    policy = guardians.prepare_emergency_policy(stack.ctx, patient=patient.address,
                                                allowed=True, max_duration=60,
                                                sender=guardian_signer.address)
    assert policy.transaction["from"] == guardian_signer.address
    guardians.confirm_emergency_policy(
        stack.ctx, patient=patient.address, allowed=True, max_duration=60,
        transaction=SentTransaction(_send_as_wallet(stack, guardian_signer, policy)))
    remove = guardians.prepare_remove_guardian(stack.ctx, patient=patient.address,
                                               guardian=guardian_signer.address)
    guardians.confirm_remove_guardian(
        stack.ctx, patient=patient.address, guardian=guardian_signer.address,
        transaction=SentTransaction(_send_as_wallet(stack, patient.signer, remove)))
    assert guardians.guardians_of(stack.ctx, patient=patient.address) == []
    with pytest.raises(ContractReverted):  # no longer a guardian: refused in the simulation
        guardians.prepare_emergency_policy(stack.ctx, patient=patient.address, allowed=False,
                                           max_duration=0, sender=guardian_signer.address)

    # an access request from the provider's wallet, declined from the patient's wallet
    note_id = RecordId(os.urandom(32))
    inbox_key = care.inbox_key_of(stack.ctx, patient.address)
    note = bytes(encrypt_bytes(b"second opinion?", owner_key=inbox_key.public_key,
                               record_id=note_id, content_type="text/plain"))
    asking = requests.prepare_request(stack.ctx, provider=provider.address,
                                      patient=patient.address, ref=commitment_of(note))
    requests.request_access(stack.ctx, provider=provider.address, patient=patient.address,
                            message_id=note_id, envelope=note,
                            transaction=SentTransaction(
                                _send_as_wallet(stack, provider.signer, asking)))
    assert [i.kind for i in provider.inbox()] == ["request-open"]
    declining = requests.prepare_answer_no(stack.ctx, patient=patient.address,
                                           provider=provider.address)
    requests.answer_no(stack.ctx, patient=patient.address, provider=provider.address,
                       transaction=SentTransaction(
                           _send_as_wallet(stack, patient.signer, declining)))
    assert [i.kind for i in provider.inbox()] == ["request-closed"]
    with pytest.raises(ContractReverted, match="NoOpenRequest"):
        requests.prepare_answer_no(stack.ctx, patient=patient.address,
                                   provider=provider.address)

    # the patient's own key: revokeAll through the client drops every fragment
    patient.grant(provider.address, ["Observation", "Condition"], expires_at=stack.now() + 600)
    assert stack.ctx.kfrags.count(patient=patient.address, provider=provider.address) == 2
    assert patient.revoke_all(provider.address).kfrags_deleted == 2
    assert provider.patients() == []
