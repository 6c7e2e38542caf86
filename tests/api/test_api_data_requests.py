"""Data requests over HTTP against ``kizuna serve`` (a subprocess), the participants doing their
own cryptography and transactions as the web page or the CLI does: the patient's request is
recorded only once its own ``DataRequested`` event carries the fields' commitment; the
provider's files are envelopes encrypted to the patient, readable by the patient and the
provider only; bad ids, bodies and envelopes are refused with the exception tree's statuses."""

from __future__ import annotations

import os

import pytest
from apienv import ChainEnv
from participants import People, hx

from kizuna.chain.models import CareEventKind
from kizuna.crypto.commitment import commitment_of
from kizuna.services.onchain import checked_address
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes
from kizuna.types import Commitment, RecordId
from kizuna.wire import data_requests as dr

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): the test signs in its own
wallets; every list it checks is its own patient's."""

LAB = "Observation:laboratory"


def test_request_files_and_refusals(people: People, chain_env: ChainEnv) -> None:
    patient, provider, auditor = people.patient, people.provider, people.auditor
    chain = patient.chain
    me, to = checked_address("patient", patient.address), checked_address("provider",
                                                                          provider.address)
    chain_env.fund(patient.address)
    chain_env.fund(provider.address)
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200

    fields = dr.checked_fields(types=["Observation"], since="2024-01", until=None,
                               deadline_days=None)
    note_id = os.urandom(32)
    note = bytes(encrypt_bytes(b"my 2024 labs", owner_key=provider.keys.public_key,
                               record_id=RecordId(note_id), content_type="text/plain"))
    nonce = os.urandom(32)
    ref = dr.request_commitment(patient=patient.address, provider=provider.address,
                                fields=fields, note_ref=commitment_of(note), nonce=nonce)
    body = {"provider": provider.address, "types": ["Observation"], "since": "2024-01",
            "nonce": hx(nonce), "note_id": hx(note_id), "note": hx(note)}

    # a transaction that logged another commitment is refused, nothing kept
    other = chain.ledger.log_care_event(me, CareEventKind.DATA_REQUESTED,
                                        Commitment(b"\x01" * 32), signer=patient.signer,
                                        provider=to)
    refused = patient.post("/patient/data-requests", {**body, "tx_hash": hx(other.tx_hash)})
    assert refused.status_code == 422 and "txHash" in refused.text
    assert patient.get("/patient/data-requests").json() == []

    sent = chain.ledger.log_care_event(me, CareEventKind.DATA_REQUESTED, ref,
                                       signer=patient.signer, provider=to)
    made = patient.post("/patient/data-requests", {**body, "tx_hash": hx(sent.tx_hash)})
    assert made.status_code == 201, made.text
    rid = made.json()["request_id"]
    assert rid == hx(ref) and made.json()["status"] == "open"
    assert made.json()["deadline"] == made.json()["asked_at"] + 30 * 86_400
    again = patient.post("/patient/data-requests", {**body, "tx_hash": hx(sent.tx_hash)})
    assert again.status_code == 409

    # the note, for the provider (and the patient who wrote it); nobody else
    got = provider.get(f"/data-requests/{rid}/note")
    assert got.status_code == 200
    assert bytes(decrypt_bytes(got.content, owner_sk=provider.keys.wallet.decrypting_key)) == \
        b"my 2024 labs"
    assert auditor.get(f"/data-requests/{rid}/note").status_code == 404
    assert auditor.get(f"/data-requests/{rid}").status_code == 404
    assert patient.get(f"/data-requests/{'0x' + '00' * 32}").status_code == 404
    assert patient.get("/data-requests/0x1234").status_code == 422

    # a file encrypted to the patient, uploaded then named by the provider's answer
    key = patient.keys.wallet.public_key
    file_id = os.urandom(32)
    content = b'{"resourceType":"Observation","status":"final","code":{"text":"Hb"}}'
    envelope = bytes(encrypt_bytes(content, owner_key=key, record_id=RecordId(file_id),
                                   content_type="application/fhir+json"))
    path = f"/provider/data-requests/{rid}/deliveries/{hx(file_id)}"
    put = provider.http.put(path, content=envelope, headers={
        **provider.auth, "Content-Type": "application/octet-stream"})
    assert put.status_code == 201, put.text
    commitment = put.json()["commitment"]
    assert commitment == hx(commitment_of(envelope))
    junk = provider.http.put(f"/provider/data-requests/{rid}/deliveries/{hx(os.urandom(32))}",
                             content=b"not an envelope", headers={
                                 **provider.auth, "Content-Type": "application/octet-stream"})
    assert junk.status_code == 422, junk.text
    # the patient is no provider: the provider's routes are refused
    assert patient.http.put(path, content=envelope, headers={
        **patient.auth, "Content-Type": "application/octet-stream"}).status_code == 403

    answer_nonce = os.urandom(32)
    answer_ref = dr.answer_commitment(request_id=ref, state=dr.FULFILLED, reason=None,
                                      deliveries=[bytes.fromhex(commitment[2:])],
                                      nonce=answer_nonce)
    receipt = chain.ledger.answer_data_request(
        me, ref, CareEventKind.DATA_REQUEST_FULFILLED, answer_ref, signer=provider.signer)
    answered = provider.post(f"/provider/data-requests/{rid}/answers", {
        "state": "fulfilled", "deliveries": [commitment], "nonce": hx(answer_nonce),
        "tx_hash": hx(receipt.tx_hash)})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "fulfilled"
    assert answered.json()["answers"][0]["deliveries"][0]["content_type"] == \
        "application/fhir+json"

    file_path = f"/data-requests/{rid}/deliveries/{commitment}/content"
    mine = patient.get(file_path)
    assert mine.status_code == 200 and commitment_of(mine.content) == \
        bytes.fromhex(commitment[2:])
    assert bytes(decrypt_bytes(mine.content,
                               owner_sk=patient.keys.wallet.decrypting_key)) == content
    assert auditor.get(file_path).status_code == 404
    # a closed request takes no more files or answers
    late = provider.http.put(f"/provider/data-requests/{rid}/deliveries/{hx(os.urandom(32))}",
                             content=envelope, headers={
                                 **provider.auth, "Content-Type": "application/octet-stream"})
    assert late.status_code == 409
    closed = provider.post(f"/provider/data-requests/{rid}/answers", {
        "state": "declined", "reason": "late", "nonce": hx(os.urandom(32)),
        "tx_hash": hx(receipt.tx_hash)})
    assert closed.status_code == 409
    tasks = patient.get("/patient/data-requests/tasks")
    assert tasks.headers["content-type"].startswith("application/fhir+json")
    assert tasks.json()["entry"][0]["resource"]["status"] == "completed"
