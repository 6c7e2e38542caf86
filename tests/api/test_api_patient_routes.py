"""The patient routes that once existed only in-process: the emergency kit, new versions of a
record (``X-Kizuna-Supersedes``), and a guardian acting for a ward (``?patient=``) — over HTTP
against the real API (uvicorn), anvil, the embedded store and SQLite."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from apienv import ChainEnv, bearer
from participants import HttpPatient, HttpProvider, Participant, People, Sealed, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto.commitment import commitment_of
from kizuna.types import RecordId

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

ALLERGY = "AllergyIntolerance"
LAB = "Observation:laboratory"


def _error(answer: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = answer.json()["error"]
    return error


def _kit(patient: HttpPatient, provider: HttpProvider, labels: list[str]) -> dict[str, Any]:
    ids = [patient.scope(label) for label in labels]
    return {"provider": provider.address,
            "kfrags": {hx(sid): [hx(k.to_bytes()) for k in patient.keys.kfrags_for(
                sid, provider.keys.public_key, threshold=1, shares=1)] for sid in ids}}


# --- the emergency kit ---------------------------------------------------------------------------


def test_kit_left_replaced_and_taken_back(people: People) -> None:
    patient, provider = people.patient, people.provider
    body = _kit(patient, provider, [ALLERGY, LAB])
    left = patient.post("/patient/emergency-kits", body)
    assert left.status_code == 200, left.text
    answer = left.json()
    assert answer["provider"] == provider.address and answer["kfrags_left"] == 2
    assert sorted(answer["scope_ids"]) == sorted(body["kfrags"])

    listed = patient.get("/patient/emergency-kits")
    assert listed.status_code == 200 and listed.json() == [answer], listed.text

    only_allergy = patient.post("/patient/emergency-kits", _kit(patient, provider, [ALLERGY]))
    assert only_allergy.json()["scope_ids"] == [hx(patient.scope(ALLERGY))]
    assert patient.get("/patient/emergency-kits").json() == [only_allergy.json()]
    emptied = patient.post("/patient/emergency-kits", {"provider": provider.address,
                                                       "kfrags": {}})
    assert emptied.status_code == 200 and emptied.json() == {
        "provider": provider.address, "scope_ids": [], "kfrags_left": 0}
    assert patient.get("/patient/emergency-kits").json() == []
    assert patient.http.get("/patient/emergency-kits").status_code == 401


def test_kit_refusals(people: People, chain_env: ChainEnv) -> None:
    patient, provider = people.patient, people.provider
    good = _kit(patient, provider, [ALLERGY])
    scope = next(iter(good["kfrags"]))

    not_hex = patient.post("/patient/emergency-kits", {**good, "kfrags": {"0xzz": ["0x00"]}})
    assert not_hex.status_code == 422 and _error(not_hex)["field"] == "kfrags"
    bad_address = patient.post("/patient/emergency-kits", {**good, "provider": "0x1234"})
    assert bad_address.status_code == 422 and _error(bad_address)["field"] == "provider"
    garbage = patient.post("/patient/emergency-kits",
                           {**good, "kfrags": {scope: ["0x" + "11" * 40]}})
    assert garbage.status_code == 422, garbage.text
    none = patient.post("/patient/emergency-kits", {**good, "kfrags": {scope: []}})
    assert none.status_code == 422 and _error(none)["field"] == "kfrags"

    # fragments for another reader's key do not verify against the provider's registry key
    stranger = HttpProvider(signer=LocalKeySigner.generate(), chain=patient.chain,
                            http=patient.http)
    wrong_key = patient.post("/patient/emergency-kits", {
        "provider": provider.address,
        "kfrags": {scope: [hx(k.to_bytes()) for k in patient.keys.kfrags_for(
            patient.scope(ALLERGY), stranger.keys.public_key, threshold=1, shares=1)]}})
    assert wrong_key.status_code == 422, wrong_key.text

    unregistered = patient.post("/patient/emergency-kits",
                                {**good, "provider": stranger.address})
    assert unregistered.status_code == 404, unregistered.text
    assert "registry" in _error(unregistered)["message"]

    unbound_scope = hx(os.urandom(32))  # no scope keys registered for it: not the patient's
    unbound = patient.post("/patient/emergency-kits",
                           {**good, "kfrags": {unbound_scope: good["kfrags"][scope]}})
    assert unbound.status_code == 403 and "registered keys" in _error(unbound)["message"]

    assert patient.http.post("/patient/emergency-kits", json=good).status_code == 401


# --- new versions of a record ---------------------------------------------------------------------


def _version_registration(patient: HttpPatient, sealed: Sealed, old: bytes) -> str:
    typed = patient.chain.ledger.register_record_typed_data(
        patient=patient.address, record_id=sealed.record_id,
        commitment=commitment_of(sealed.envelope), scope_id=sealed.scope_id,
        deadline=patient.deadline(), supersedes=RecordId(old))
    return json.dumps({"signed": {"typed_data": typed.to_json(),
                                  "signature": hx(patient.signer.sign_typed_data(typed))}})


def _upload_version(patient: HttpPatient, sealed: Sealed, old: bytes, *,
                    header: str | None = None,
                    registration: str | None = None) -> httpx.Response:
    return patient.http.put(
        f"/patient/records/{hx(sealed.record_id)}", content=sealed.envelope,
        headers={**patient.auth, "Content-Type": "application/octet-stream",
                 "X-Kizuna-Scope-Id": hx(sealed.scope_id),
                 "X-Kizuna-Supersedes": header if header is not None else hx(old),
                 "X-Kizuna-Registration": registration
                 or _version_registration(patient, sealed, old)})


def test_new_version_supersedes_the_old(people: People) -> None:
    patient, provider = people.patient, people.provider
    first = patient.add(b'{"v": 1}', label=LAB, content_type="application/fhir+json")
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    second = patient.seal(b'{"v": 2}', label=LAB, content_type="application/fhir+json")
    answer = _upload_version(patient, second, first.record_id)
    assert answer.status_code == 201, answer.text
    assert answer.json()["record_id"] == hx(second.record_id)

    status = patient.chain.ledger.record_of(first.record_id)
    assert status is not None and status.superseded
    readable = provider.get("/provider/records").json()
    assert [r["record_id"] for r in readable] == [hx(second.record_id)]
    assert provider.read(patient.address, second) == b'{"v": 2}'
    refused = provider.request_read(patient.address, first.record_id)
    assert refused.status_code == 403 and "superseded" in _error(refused)["message"]

    # only the newest version can be superseded
    third = patient.seal(b'{"v": 3}', label=LAB, content_type="application/fhir+json")
    again = _upload_version(patient, third, first.record_id)
    assert again.status_code == 409 and "superseded already" in _error(again)["message"]
    assert patient.chain.ledger.record_of(third.record_id) is None  # nothing registered


def test_new_version_refusals(people: People, chain_env: ChainEnv) -> None:
    patient = people.patient
    first = patient.add(b"one", label=LAB, content_type="text/plain")
    sealed = patient.seal(b"two", label=LAB, content_type="text/plain")

    short = _upload_version(patient, sealed, first.record_id, header="0x12")
    assert short.status_code == 422 and _error(short)["field"] == "X-Kizuna-Supersedes"
    unknown = os.urandom(32)
    missing = _upload_version(patient, sealed, unknown)
    assert missing.status_code == 404, missing.text

    other = HttpPatient(signer=LocalKeySigner.generate(), chain=patient.chain,
                        http=patient.http).login()
    theirs = other.add(b"theirs", label=LAB, content_type="text/plain")
    not_mine = _upload_version(patient, sealed, theirs.record_id)
    assert not_mine.status_code == 404, not_mine.text

    # a signature that does not name the superseded record is refused before the chain
    unversioned = _upload_version(patient, sealed, first.record_id,
                                  registration=patient.registration(sealed))
    assert unversioned.status_code == 422 and _error(unversioned)["field"] == "signature"
    assert patient.chain.ledger.record_of(sealed.record_id) is None
    assert _upload_version(patient, sealed, first.record_id).status_code == 201


# --- a guardian acting for a ward -----------------------------------------------------------------


def _funded_patient(chain_env: ChainEnv, http: httpx.Client) -> HttpPatient:
    signer = chain_env.new_signer()
    return HttpPatient(signer=signer, chain=chain_env.chain, http=http).login()


def _guardian_of(ward: HttpPatient, chain_env: ChainEnv) -> Participant:
    guardian = chain_env.new_signer()
    until = ward.chain.head().timestamp + 86_400
    ward.chain.ledger.appoint_guardian(guardian.address, until, signer=ward.signer)
    return Participant(signer=guardian, chain=ward.chain, http=ward.http).login()


def test_guardian_acts_for_the_ward(people: People, chain_env: ChainEnv) -> None:
    provider = people.provider
    ward = _funded_patient(chain_env, people.patient.http)
    record = ward.add(b"ward's lab", label=LAB, content_type="text/plain")
    assert ward.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    guardian = _guardian_of(ward, chain_env)
    acting = {"patient": ward.address}

    listed = guardian.get("/patient/records", params=acting)
    assert listed.status_code == 200, listed.text
    assert [r["record_id"] for r in listed.json()] == [hx(record.record_id)]
    assert guardian.get("/patient/records").json() == []  # their own: none
    grants = guardian.get("/patient/grants", params=acting).json()
    assert [g["provider"] for g in grants] == [provider.address]
    assert [g["guardian"] for g in guardian.get("/patient/guardians", params=acting).json()] \
        == [guardian.address]
    assert provider.read(ward.address, record) == b"ward's lab"
    reads = guardian.get("/patient/reads", params=acting).json()
    assert [r["record_id"] for r in reads] == [hx(record.record_id)]
    assert guardian.get("/patient/inbox", params=acting).status_code == 200

    # upload for the ward: encrypted to the ward's (public) scope key, registered by the
    # guardian's own registerRecordFor transaction
    sealed = ward.seal(b"added by the guardian", label=LAB, content_type="text/plain")
    receipt = ward.chain.ledger.register_record(
        sealed.record_id, commitment_of(sealed.envelope), sealed.scope_id,
        signer=guardian.signer, patient=ward.address)
    uploaded = guardian.http.put(
        f"/patient/records/{hx(sealed.record_id)}", params=acting, content=sealed.envelope,
        headers={**guardian.auth, "Content-Type": "application/octet-stream",
                 "X-Kizuna-Scope-Id": hx(sealed.scope_id),
                 "X-Kizuna-Registration": json.dumps({"tx_hash": hx(receipt.tx_hash)})})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["patient"] == ward.address
    assert provider.read(ward.address, sealed) == b"added by the guardian"

    # revoke for the ward: the guardian's revokeFor, confirmed; the next read is refused
    revoked = ward.chain.ledger.revoke(provider.address, ward.scope(LAB),
                                       signer=guardian.signer, patient=ward.address)
    answer = guardian.http.post("/patient/revocations", params=acting, headers=guardian.auth,
                                json={"provider": provider.address,
                                      "scope_id": hx(ward.scope(LAB)),
                                      "authorization": {"tx_hash": hx(revoked.tx_hash)}})
    assert answer.status_code == 200, answer.text
    assert provider.request_read(ward.address, record.record_id).status_code == 403


def test_acting_for_someone_not_a_ward_is_refused(people: People,
                                                  chain_env: ChainEnv) -> None:
    ward = _funded_patient(chain_env, people.patient.http)
    ward.add(b"private", label=LAB, content_type="text/plain")
    guardian = _guardian_of(ward, chain_env)
    stranger = people.patient  # signed in, but nobody's guardian
    acting = {"patient": ward.address}
    for path in ("/patient/records", "/patient/grants", "/patient/inbox", "/patient/reads",
                 "/patient/guardians"):
        refused = stranger.get(path, params=acting)
        assert refused.status_code == 403, (path, refused.text)
        assert "not a live guardian" in _error(refused)["message"]
    upload = stranger.http.put(
        f"/patient/records/{hx(os.urandom(32))}", params=acting, content=b"x",
        headers={**stranger.auth, "X-Kizuna-Scope-Id": hx(os.urandom(32)),
                 "X-Kizuna-Registration": json.dumps({"tx_hash": hx(os.urandom(32))})})
    assert upload.status_code == 403, upload.text

    bad = guardian.get("/patient/records", params={"patient": "0xnot-an-address"})
    assert bad.status_code == 422 and _error(bad)["field"] == "patient"
    assert guardian.http.get("/patient/records", params=acting).status_code == 401

    # the chain decides at each request: once removed, the guardian acts no more (even with
    # the session that was signed in while they were one)
    assert guardian.get("/patient/records", params=acting).status_code == 200
    ward.chain.ledger.remove_guardian(guardian.address, signer=ward.signer)
    removed = guardian.get("/patient/records", params=acting)
    assert removed.status_code == 403, removed.text
    me = guardian.http.get("/auth/me", headers=bearer(guardian.token)).json()
    assert me["guardian_of"] == [ward.address]  # the login-time role is not what decides


def test_wallet_prepares_a_wards_actions_and_new_versions(people: People,
                                                          chain_env: ChainEnv) -> None:
    """For wallets: a guardian's ``?patient=`` prepares the ``...For`` transaction (from the
    guardian, no typed data: only the patient can sign those); a stranger is refused; a new
    version is prepared as ``supersedeRecord`` with typed data naming the old record."""
    provider = people.provider
    ward = _funded_patient(chain_env, people.patient.http)
    first = ward.add(b"v1", label=LAB, content_type="text/plain")
    assert ward.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    guardian = _guardian_of(ward, chain_env)
    ledger = chain_env.chain.contract("ConsentLedger")
    body = {"provider": provider.address, "scope_id": hx(ward.scope(LAB)),
            "deadline": ward.deadline()}

    prepared = guardian.http.post("/wallet/prepare/revoke", params={"patient": ward.address},
                                  headers=guardian.auth, json=body)
    assert prepared.status_code == 200, prepared.text
    answer = prepared.json()
    assert answer["typed_data"] is None
    assert answer["transaction"]["from"].lower() == guardian.address.lower()
    assert answer["transaction"]["data"] == ledger.encode_abi(
        "revokeFor", args=[ward.address, provider.address, ward.scope(LAB)])
    refused = people.patient.http.post("/wallet/prepare/revoke",
                                       params={"patient": ward.address},
                                       headers=people.patient.auth, json=body)
    assert refused.status_code == 403 and "not a live guardian" in _error(refused)["message"]

    second = ward.seal(b"v2", label=LAB, content_type="text/plain")
    version = ward.post("/wallet/prepare/register-record", {
        "record_id": hx(second.record_id), "commitment": hx(commitment_of(second.envelope)),
        "scope_id": hx(second.scope_id), "deadline": ward.deadline(),
        "supersedes": hx(first.record_id)})
    assert version.status_code == 200, version.text
    assert version.json()["transaction"]["data"] == ledger.encode_abi("supersedeRecord", args=[
        first.record_id, second.record_id, commitment_of(second.envelope), second.scope_id])
    assert version.json()["typed_data"]["message"]["supersedes"] == hx(first.record_id)
    bad = ward.post("/wallet/prepare/register-record", {
        "record_id": hx(second.record_id), "commitment": hx(commitment_of(second.envelope)),
        "scope_id": hx(second.scope_id), "deadline": ward.deadline(), "supersedes": "0x01"})
    assert bad.status_code == 422 and _error(bad)["field"] == "supersedes"
