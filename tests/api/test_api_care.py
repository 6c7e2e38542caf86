"""Care messages over HTTP: a provider fetches the patient's inbox key (checking the patient's
signature), sends a report encrypted to it and announced by its own ``logCareEvent``; the
patient finds it in their inbox and decrypts it; nobody else may download it. A provider's
access request lands in the patient's inbox the same way."""

from __future__ import annotations

import os

import pytest
from apienv import ChainEnv
from eth_account import Account
from participants import HttpProvider, People, hx

from kizuna.chain.eip712 import TypedData
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.receipts.request import proxy_domain
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire.care import CARE_KINDS, INBOX_KEY_FIELDS

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

LAB = "Observation:laboratory"


def test_report_reaches_the_patient_only(people: People, chain_env: ChainEnv) -> None:
    patient, provider, auditor = people.patient, people.provider, people.auditor
    chain = patient.chain
    chain_env.fund(provider.address)
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200

    # the patient publishes an inbox key, signed by the wallet
    public = patient.keys.public_key.to_bytes()
    statement = TypedData(domain=proxy_domain(chain_id=chain.chain_id,
                                              access_log=chain.deployment.access_log),
                          primary_type="InboxKey", types={"InboxKey": INBOX_KEY_FIELDS},
                          message={"patient": patient.address, "publicKey": hx(public)})
    answer = patient.post("/patient/inbox-key", {
        "public_key": hx(public), "signature": hx(patient.signer.sign_typed_data(statement))})
    assert answer.status_code == 200, answer.text

    # the provider checks the patient's signature on the key, not the service's word
    key = provider.get(f"/patients/{patient.address}/inbox-key").json()
    signed = TypedData.from_json(key["statement"])
    assert Account.recover_message(signed.signable(),
                                   signature=key["signature"]) == patient.address
    inbox_key = pre.UmbralPublicKey.from_bytes(bytes.fromhex(key["public_key"][2:]))

    message_id = os.urandom(32)
    envelope = bytes(encrypt_bytes(b"report: all fine", owner_key=inbox_key,
                                   record_id=RecordId(message_id),
                                   content_type="application/fhir+json"))
    receipt = chain.ledger.log_care_event(patient.address, CARE_KINDS["report"],
                                          commitment_of(envelope), signer=provider.signer,
                                          provider=provider.address,
                                          scope_id=patient.keys.scope_id(LAB))
    sent = provider.http.put(f"/care/messages/{hx(message_id)}", content=envelope, headers={
        **provider.auth, "X-Kizuna-Tx-Hash": hx(receipt.tx_hash),
        "X-Kizuna-Patient": patient.address, "X-Kizuna-Kind": "report",
        "X-Kizuna-Provider": provider.address})
    assert sent.status_code == 201, sent.text
    ref = sent.json()["ref"]
    assert ref == hx(commitment_of(envelope))

    inbox = patient.get("/patient/inbox").json()
    assert [i["kind"] for i in inbox if i["ref"] == ref] == ["report"]
    content = patient.get(f"/care/messages/{ref}/content")
    assert content.status_code == 200
    assert bytes(decrypt_bytes(content.content,
                               owner_sk=patient.keys.wallet.decrypting_key)) == b"report: all fine"
    # nobody else
    assert auditor.get(f"/care/messages/{ref}/content").status_code == 403
    # a transaction that announced something else is refused, nothing kept
    other_id = os.urandom(32)
    other = bytes(encrypt_bytes(b"x", owner_key=inbox_key, record_id=RecordId(other_id),
                                content_type="text/plain"))
    refused = provider.http.put(f"/care/messages/{hx(other_id)}", content=other, headers={
        **provider.auth, "X-Kizuna-Tx-Hash": hx(receipt.tx_hash),
        "X-Kizuna-Patient": patient.address, "X-Kizuna-Kind": "report",
        "X-Kizuna-Provider": provider.address})
    assert refused.status_code in (403, 409, 422), refused.text
    assert len(provider.get("/care/messages").json()) == 1


def test_access_request_lands_in_the_patients_inbox(people: People,
                                                     chain_env: ChainEnv) -> None:
    patient = people.patient
    signer = chain_env.new_signer()
    provider = HttpProvider(signer=signer, chain=patient.chain, http=patient.http)
    chain_env.add_provider(signer, provider.keys.public_key.to_bytes())
    provider.login()
    note_id = os.urandom(32)
    note = bytes(encrypt_bytes(b"may I see your labs?", owner_key=patient.keys.public_key,
                               record_id=RecordId(note_id), content_type="text/plain"))
    receipt = patient.chain.ledger.request_access(patient.address, commitment_of(note),
                                                  signer=signer)
    answer = provider.http.put(f"/provider/requests/{hx(note_id)}", content=note, headers={
        **provider.auth, "X-Kizuna-Tx-Hash": hx(receipt.tx_hash),
        "X-Kizuna-Patient": patient.address})
    assert answer.status_code == 201, answer.text
    kinds = {i["kind"] for i in patient.get("/patient/inbox").json()}
    assert "access-request" in kinds
    # a patient cannot send an access request (provider route)
    stranger = LocalKeySigner.generate()
    assert stranger.address != provider.address
    assert patient.http.put(f"/provider/requests/{hx(os.urandom(32))}", content=note, headers={
        **patient.auth, "X-Kizuna-Tx-Hash": hx(receipt.tx_hash),
        "X-Kizuna-Patient": patient.address}).status_code == 403
