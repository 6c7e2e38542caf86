"""The typed HTTP client (``kizuna.client.http``) against the real API served by uvicorn on
127.0.0.1 (a free port) over the same test stack: sign-in, upload, grant, provider read and
local decryption, and errors mapped back into Kizuna's exception tree."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from local_stack import LocalStack
from pydantic import SecretStr

from kizuna.api.app import create_app
from kizuna.api.auth import AUDITOR_ROLE
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.chain.models import ContractCall
from kizuna.client.http import ApiClient
from kizuna.client.keys import participant_keys
from kizuna.client.provider import ProviderClient
from kizuna.config import Settings
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import AccessDenied, ConflictError, InputError
from kizuna.receipts.request import ReadRequest
from kizuna.services import care
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.care import CARE_KINDS
from kizuna.wire.scopes import scope_keys_typed_data

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def api_url(stack: LocalStack) -> Iterator[str]:
    port = free_port()
    settings = Settings(environment="development", rpc_url=stack.node.rpc_url,
                        api_port=port, siwe_domain=f"127.0.0.1:{port}",
                        siwe_uri=f"http://127.0.0.1:{port}",
                        relayer_key=SecretStr(dev_private_keys(2)[1]),
                        session_secret=SecretStr(os.urandom(32).hex()))
    app = create_app(settings, ctx=stack.ctx)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_patient_and_provider_over_http(stack: LocalStack, api_url: str) -> None:
    patient_signer, provider_client = stack.signer(), stack.provider()
    keys = participant_keys(patient_signer, stack.service.key_domain())
    with ApiClient(api_url) as patient, ApiClient(api_url) as provider:
        session = patient.login(patient_signer)
        assert session.address == patient_signer.address
        assert "provider" in provider.login(provider_client.signer).roles

        sid = keys.scope_id("Observation:vital-signs")
        delegating = keys.scope_public(sid).to_bytes()
        verifying = keys.verifying_key.to_bytes()
        statement = scope_keys_typed_data(stack.ctx.domain, patient=patient_signer.address,
                                          scope_id=sid, delegating_key=keys.scope_public(sid),
                                          verifying_key=keys.verifying_key)
        patient.register_scope_keys(scope_id=sid, delegating_key=delegating,
                                    verifying_key=verifying,
                                    signature=patient_signer.sign_typed_data(statement))

        content = b'{"resourceType":"Observation","status":"final","code":{"text":"BP"}}'
        rid = RecordId(os.urandom(32))
        envelope = bytes(encrypt_bytes(content, owner_key=keys.scope_public(sid), record_id=rid,
                                       content_type="application/fhir+json"))
        typed = patient.typed_data("register-record", record_id=rid,
                                   commitment=commitment_of(envelope), scope_id=sid,
                                   deadline=stack.now() + 600)
        signed = SignedAction(typed, patient_signer.sign_typed_data(typed))
        info = patient.upload_record(record_id=rid, scope_id=sid, envelope=iter([envelope]),
                                     registration=signed)
        assert info.commitment == commitment_of(envelope) and info.record_id == rid
        assert [r.record_id for r in patient.records()] == [rid]
        assert b"".join(patient.download(rid)) == envelope
        with pytest.raises(ConflictError):
            patient.upload_record(record_id=rid, scope_id=sid, envelope=envelope,
                                  registration=signed)

        expires = stack.now() + 600
        grant_typed = patient.typed_data("grant", provider=provider_client.address,
                                         scope_ids=[sid], expires_at=expires,
                                         deadline=stack.now() + 600)
        kfrags = {sid: [k.to_bytes() for k in keys.kfrags_for(sid, provider_client.public_key)]}
        patient.grant(provider=provider_client.address, scope_ids=[sid], expires_at=expires,
                      kfrags=kfrags, authorization=SignedAction(
                          grant_typed, patient_signer.sign_typed_data(grant_typed)))

        assert provider.patients() == [patient_signer.address]
        assert [r.record_id for r in provider.readable_records()] == [rid]
        request = ReadRequest.new(provider=provider_client.address,
                                  patient=patient_signer.address, record_id=rid)
        grant = provider.read(request=request, signature=provider_client.signer.sign_typed_data(
            request.typed_data(stack.ctx.domain)))
        ciphertext = b"".join(provider.fetch(grant.cid))
        assert isinstance(provider_client, ProviderClient)
        assert provider_client.open(grant, ciphertext) == content
        assert [(r.provider, r.record_id) for r in patient.reads()] == [
            (provider_client.address, rid)]


def test_http_errors_come_back_as_kizuna_errors(stack: LocalStack, api_url: str) -> None:
    with ApiClient(api_url) as anonymous, pytest.raises(AccessDenied):
        anonymous.records()
    signer = stack.signer()
    with ApiClient(api_url) as patient:
        patient.login(signer)
        with pytest.raises(AccessDenied):  # a patient is not a provider
            patient.patients()
        with pytest.raises(InputError) as bad:
            patient.prepare("grant", provider="0x1234", scope_ids=[os.urandom(32)],
                            expires_at=1, deadline=1)
        assert "provider" in bad.value.field


def test_wallet_confirmations_and_the_auditor_over_http(stack: LocalStack, api_url: str) -> None:
    patient_signer, guardian, doctor, auditor = (stack.signer(), stack.signer(),
                                                 stack.provider(), stack.signer())
    access_log = stack.chain.access_log.contract
    data = access_log.encode_abi("grantRole", args=[AUDITOR_ROLE, auditor.address])
    stack.chain.sender.transact(ContractCall(to=access_log.address,
                                             data=bytes.fromhex(data[2:])), stack.admin)
    with ApiClient(api_url) as patient, ApiClient(api_url) as provider, \
            ApiClient(api_url) as audit:
        patient.login(patient_signer)
        provider.login(doctor.signer)
        assert "auditor" in audit.login(auditor).roles

        until = stack.now() + 3600
        appoint = patient.prepare("appoint-guardian", guardian=guardian.address, until=until)
        sent = stack.chain.ledger.appoint_guardian(guardian.address, until,
                                                   signer=patient_signer)
        assert appoint.transaction["to"] == sent.to
        done = patient.confirm("appoint-guardian", tx_hash=sent.tx_hash,
                               guardian=guardian.address)
        assert done.event == "GuardianAppointed"
        assert [g.guardian for g in patient.guardians()] == [guardian.address]

        policy = stack.chain.ledger.set_emergency_policy(True, 600, signer=patient_signer)
        patient.confirm("emergency-policy", tx_hash=policy.tx_hash, allowed=True,
                        max_duration=600)
        opened = stack.chain.ledger.open_emergency_access(patient_signer.address, 60, 9,
                                                          signer=doctor.signer)
        provider.confirm("break-glass", tx_hash=opened.tx_hash, patient=patient_signer.address)
        waiting = audit.auditor_inbox(patient=patient_signer.address)
        assert [(w.provider, w.reason_code) for w in waiting] == [(doctor.address, 9)]
        audit.review(tx_hash=waiting[0].tx_hash, log_index=waiting[0].log_index)
        assert audit.auditor_inbox(patient=patient_signer.address) == []
        with pytest.raises(AccessDenied):  # a patient is not an auditor
            patient.auditor_inbox()
        assert patient.grants() == []


def test_messages_requests_and_revoke_all_over_http(stack: LocalStack, api_url: str) -> None:
    patient_signer, doctor = stack.signer(), stack.provider()
    keys = participant_keys(patient_signer, stack.service.key_domain())
    with ApiClient(api_url) as patient, ApiClient(api_url) as provider:
        patient.login(patient_signer)
        provider.login(doctor.signer)
        public = keys.public_key.to_bytes()
        statement = care.inbox_key_statement(stack.ctx, patient=patient_signer.address,
                                             public_key=public)
        patient.publish_inbox_key(public_key=public,
                                  signature=patient_signer.sign_typed_data(statement))
        published = provider.inbox_key_of(patient_signer.address)
        published.verify()  # the patient's signature, checked on the provider's side

        note_id = os.urandom(32)
        note = bytes(encrypt_bytes(b"may I see your vaccinations?",
                                   owner_key=published.public_key, record_id=RecordId(note_id),
                                   content_type="text/plain"))
        asked = stack.chain.ledger.request_access(patient_signer.address, commitment_of(note),
                                                  signer=doctor.signer)
        sent = provider.request_access(message_id=note_id, patient=patient_signer.address,
                                       envelope=iter([note]), tx_hash=asked.tx_hash)
        items = patient.patient_inbox()
        assert [(i.kind, i.ref, i.cid) for i in items] == [("access-request", sent.ref,
                                                            sent.cid)]
        envelope = b"".join(patient.message_content(sent.ref))
        assert decrypt_bytes(envelope, owner_sk=keys.wallet.decrypting_key) == \
            b"may I see your vaccinations?"
        assert [m.ref for m in provider.sent_messages(kind="access-request")] == [sent.ref]

        declined = stack.chain.ledger.close_request(patient_signer.address, doctor.address,
                                                    signer=patient_signer)
        patient.confirm("decline-request", tx_hash=declined.tx_hash, provider=doctor.address)
        assert [i.kind for i in provider.provider_inbox()] == ["request-closed"]

        # a booking request from the patient to the doctor, over HTTP
        booking_id = os.urandom(32)
        booking = bytes(encrypt_bytes(b'{"resourceType":"Appointment"}',
                                      owner_key=doctor.public_key,
                                      record_id=RecordId(booking_id),
                                      content_type="application/fhir+json"))
        logged = stack.chain.ledger.log_care_event(
            patient_signer.address, CARE_KINDS["booking-request"], commitment_of(booking),
            signer=patient_signer, provider=doctor.address)
        message = patient.send_message(message_id=booking_id, patient=patient_signer.address,
                                       kind="booking-request", envelope=booking,
                                       tx_hash=logged.tx_hash, provider=doctor.address)
        assert [i.ref for i in provider.provider_inbox() if i.kind == "booking-request"] == [
            message.ref]
        assert doctor.open_message(message.ref) == b'{"resourceType":"Appointment"}'
        with pytest.raises(InputError, match="CareEventLogged"):  # another kind than announced
            patient.send_message(message_id=booking_id, patient=patient_signer.address,
                                 kind="report", envelope=booking, tx_hash=logged.tx_hash,
                                 provider=doctor.address)

        everything = stack.chain.ledger.revoke_all(doctor.address, signer=patient_signer)
        tx = patient.revoke_all(provider=doctor.address, tx_hash=everything.tx_hash).tx_hash
        assert tx == everything.tx_hash
