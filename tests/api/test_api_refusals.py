"""What the API must refuse, over HTTP against the real server: a provider reading another
patient's record, a forged / replayed / stale / someone else's read request, tampered
ciphertext in the store, a body over the size limit, requests without a session."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from apienv import ApiServer
from participants import HttpPatient, People, hx

from kizuna.chain.signers import LocalKeySigner

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets; a tampered block is its own record's."""

LAB = "Observation:laboratory"


def _granted_record(people: People) -> tuple[HttpPatient, object]:
    patient, provider = people.patient, people.provider
    sealed = patient.add(b'{"resourceType":"Observation"}', label=LAB,
                         content_type="application/fhir+json")
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    return patient, sealed


def test_provider_cannot_read_another_patients_record(people: People) -> None:
    patient, _ = _granted_record(people)
    other = HttpPatient(signer=LocalKeySigner.generate(), chain=patient.chain,
                        http=patient.http).login()
    theirs = other.add(b"secret", label=LAB, content_type="text/plain")
    provider = people.provider
    # named honestly: no grant from that patient
    answer = provider.request_read(other.address, theirs.record_id)
    assert answer.status_code == 403, answer.text
    # named as if it were the granting patient's record: the record's owner decides
    answer = provider.request_read(patient.address, theirs.record_id)
    assert answer.status_code in (403, 404), answer.text
    assert "cfrags" not in answer.text


def test_forged_read_requests_are_refused(people: People) -> None:
    patient, sealed = _granted_record(people)
    provider = people.provider
    # signed by a key that is not the provider's
    forged = provider.read_request(patient.address, sealed.record_id,  # type: ignore[attr-defined]
                                   signer=LocalKeySigner.generate())
    assert provider.post("/provider/reads", forged).status_code == 403
    # a valid request with one field changed after signing
    good = provider.read_request(patient.address, sealed.record_id)  # type: ignore[attr-defined]
    tampered = {**good, "request": {**good["request"], "requestId": hx(b"\x01" * 32)}}
    assert provider.post("/provider/reads", tampered).status_code == 403
    # the genuine one is served once; replaying it is refused
    assert provider.post("/provider/reads", good).status_code == 200
    replay = provider.post("/provider/reads", good)
    assert replay.status_code == 403 and "served already" in replay.text
    # stale
    stale = provider.read_request(patient.address, sealed.record_id,  # type: ignore[attr-defined]
                                  issued_at=1_000_000)
    assert provider.post("/provider/reads", stale).status_code == 403
    # malformed signature: 422 naming the field
    bad = {**good, "signature": "0x1234"}
    answer = provider.post("/provider/reads", bad)
    assert answer.status_code in (403, 422), answer.text


def test_a_request_naming_another_provider_is_refused(people: People,
                                                       chain_env: object) -> None:
    patient, sealed = _granted_record(people)
    provider = people.provider
    body = provider.read_request(patient.address, sealed.record_id)  # type: ignore[attr-defined]
    # the patient (not a provider) cannot use the provider's signed request
    answer = patient.post("/provider/reads", body)
    assert answer.status_code == 403


def test_the_read_route_reads_its_session_like_every_other_route(people: People,
                                                                chain_env: object) -> None:
    """The read route looks its session up by a plain call (not FastAPI dependencies): the
    same refusals — no header, another scheme, an empty or unknown token, a patient's
    session — and its OpenAPI entry still declares the bearer security."""
    patient, sealed = _granted_record(people)
    provider = people.provider
    body = provider.read_request(patient.address, sealed.record_id)  # type: ignore[attr-defined]
    http = provider.http
    for headers in ({}, {"Authorization": "Basic a2l6dW5hOmtpenVuYQ=="},
                    {"Authorization": "Bearer"}, {"Authorization": "Bearer not-a-token"}):
        answer = http.post("/provider/reads", json=body, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json()["error"]["kind"] == "NotAuthenticated"
    assert patient.post("/provider/reads", body).status_code == 403
    assert provider.post("/provider/reads", body).status_code == 200
    operation = http.get("/openapi.json").json()["paths"]["/provider/reads"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadIn"}


def test_tampered_ciphertext_is_never_returned(people: People, api_server: ApiServer) -> None:
    patient, sealed = _granted_record(people)
    provider = people.provider
    granted = provider.request_read(patient.address, sealed.record_id)  # type: ignore[attr-defined]
    assert granted.status_code == 200
    cid = granted.json()["cid"]
    store = Path(api_server.settings.store_path)
    [block] = list(store.glob(f"blocks/*/{cid}"))
    # a small record's envelope travels inside the read's answer: the stored bytes, whole
    assert base64.b64decode(granted.json()["envelope_base64"]) == block.read_bytes()
    data = bytearray(block.read_bytes())
    data[-5] ^= 0x01
    block.chmod(0o644)
    block.write_bytes(bytes(data))
    answer = provider.get(f"/content/{cid}")
    assert answer.status_code == 502, answer.status_code
    assert bytes(data) not in answer.content
    assert answer.json()["error"]["kind"] == "ContentIntegrityError"
    own = patient.get(f"/patient/records/{hx(sealed.record_id)}/content")  # type: ignore[attr-defined]
    assert own.status_code == 502
    # a read after the tampering would carry the envelope inline: the read itself fails
    again = provider.request_read(patient.address, sealed.record_id)  # type: ignore[attr-defined]
    assert again.status_code == 502, again.status_code
    assert again.json()["error"]["kind"] == "ContentIntegrityError"
    assert bytes(data) not in again.content


def test_without_a_session_every_private_route_is_401(people: People) -> None:
    http = people.patient.http
    for method, path in [("GET", "/patient/records"), ("GET", "/provider/records"),
                         ("POST", "/provider/reads"), ("GET", "/auditor/log"),
                         ("POST", "/wallet/relay"), ("GET", "/content/bafkqaaa"),
                         ("GET", "/patient/inbox")]:
        answer = http.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code in (401, 422), (path, answer.status_code)
        if answer.status_code == 422:  # body checked first: still never served
            continue
        assert answer.json()["error"]["kind"] == "NotAuthenticated"


def test_roles_are_enforced(people: People) -> None:
    assert people.patient.get("/provider/records").status_code == 403
    assert people.patient.get("/auditor/verification").status_code == 403
    assert people.provider.get("/auditor/export").status_code == 403
