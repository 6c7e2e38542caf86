"""Wallet users over HTTP: the service prepares each action as an unsigned transaction (the
wallet adds its nonce, signs and sends it; the service confirms it from the hash) or as EIP-712
typed data (the wallet signs; the service relays and pays the gas). The same typed data the
CLI builds locally."""

from __future__ import annotations

import pytest
from apienv import ChainEnv
from participants import HttpPatient, Participant, People, hx

from kizuna.chain.eip712 import TypedData
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto.scopes import scope_label

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

LAB = "Observation:laboratory"


def _send(participant: Participant, params: dict[str, str]) -> str:
    """What a wallet does with ``eth_sendTransaction`` params: nonce, sign, send."""
    w3 = participant.chain.w3
    tx = {"to": params["to"], "data": params["data"], "value": int(params["value"], 16),
          "gas": int(params["gas"], 16), "maxFeePerGas": int(params["maxFeePerGas"], 16),
          "maxPriorityFeePerGas": int(params["maxPriorityFeePerGas"], 16),
          "chainId": int(params["chainId"], 16), "type": 2,
          "nonce": w3.eth.get_transaction_count(participant.signer.address, "pending")}
    raw = participant.signer.sign_transaction(tx)
    return hx(bytes(w3.eth.send_raw_transaction(raw)))


def test_grant_prepared_as_typed_data_and_relayed(people: People) -> None:
    patient, provider = people.patient, people.provider
    sid = patient.scope(LAB)
    expires = patient.chain.head().timestamp + 3600
    prepared = patient.post("/wallet/prepare/grant", {
        "provider": provider.address, "scope_ids": [hx(sid)], "expires_at": expires,
        "deadline": patient.deadline()})
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    assert body["action"] == "grant"
    assert body["transaction"]["from"] == patient.address
    typed = TypedData.from_json(body["typed_data"])
    # the very document the CLI builds locally
    local = patient.chain.ledger.grant_typed_data(
        patient=patient.address, provider=provider.address, scope_id=sid, expires_at=expires,
        deadline=int(typed.message["deadline"]))
    assert typed.digest() == local.digest()
    kfrags = {hx(sid): [hx(k.to_bytes()) for k in patient.keys.kfrags_for(
        sid, provider.keys.public_key, threshold=1, shares=1)]}
    granted = patient.post("/patient/grants", {
        "provider": provider.address, "scope_ids": [hx(sid)], "expires_at": expires,
        "kfrags": kfrags, "authorization": {"signed": {
            "typed_data": body["typed_data"],
            "signature": hx(patient.signer.sign_typed_data(typed))}}})
    assert granted.status_code == 200, granted.text
    assert patient.chain.ledger.has_access(patient.address, provider.address, sid)
    assert patient.chain.w3.eth.get_balance(patient.address) == 0  # the patient paid no gas


def test_revoke_sent_by_the_wallet_and_confirmed(people: People, chain_env: ChainEnv) -> None:
    patient, provider = people.patient, people.provider
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    chain_env.fund(patient.address)
    sid = patient.keys.scope_id(scope_label(LAB))
    prepared = patient.post("/wallet/prepare/revoke", {
        "provider": provider.address, "scope_id": hx(sid), "deadline": patient.deadline()})
    assert prepared.status_code == 200, prepared.text
    tx_hash = _send(patient, prepared.json()["transaction"])
    confirmed = patient.post("/patient/revocations", {
        "provider": provider.address, "scope_id": hx(sid),
        "authorization": {"tx_hash": tx_hash}})
    assert confirmed.status_code == 200, confirmed.text
    assert not patient.chain.ledger.has_access(patient.address, provider.address, sid)
    # a hash of another transaction is not accepted as this action
    again = patient.post("/patient/revocations", {
        "provider": provider.address, "scope_id": hx(sid),
        "authorization": {"tx_hash": hx(b"\x42" * 32)}})
    assert again.status_code == 422


def test_guardian_appointed_by_wallet_gets_the_role(people: People,
                                                   chain_env: ChainEnv) -> None:
    patient = people.patient
    chain_env.fund(patient.address)
    guardian = LocalKeySigner.generate()
    until = patient.chain.head().timestamp + 86400
    prepared = patient.post("/wallet/prepare/appoint-guardian",
                            {"guardian": guardian.address, "until": until})
    assert prepared.status_code == 200, prepared.text
    assert prepared.json()["typed_data"] is None  # no gasless form: the wallet sends it
    tx_hash = _send(patient, prepared.json()["transaction"])
    confirmed = patient.post("/wallet/confirm/appoint-guardian",
                             {"guardian": guardian.address, "tx_hash": tx_hash})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["event"] == "GuardianAppointed"
    assert [g["guardian"] for g in patient.get("/patient/guardians").json()] == \
        [guardian.address]
    ward = HttpPatient(signer=guardian, chain=patient.chain, http=patient.http).login()
    assert "guardian" in ward.roles
    me = ward.get("/auth/me").json()
    assert me["guardian_of"] == [patient.address]


def test_relay_refuses_another_patients_signature(people: People) -> None:
    patient, provider = people.patient, people.provider
    sid = patient.scope(LAB)
    typed = patient.chain.ledger.revoke_typed_data(patient=patient.address,
                                                   provider=provider.address, scope_id=sid,
                                                   deadline=patient.deadline())
    body = {"typed_data": typed.to_json(), "signature": hx(patient.signer.sign_typed_data(typed))}
    assert provider.post("/wallet/relay", body).status_code == 403
    # the patient's own Revoke of a scope never granted: the ledger refuses, decoded
    answer = patient.post("/wallet/relay", body)
    assert answer.status_code in (409, 422), answer.text
    assert answer.json()["error"]["kind"] in ("ContractReverted", "RelayRefused")


def test_revoke_all_sent_by_the_wallet(people: People, chain_env: ChainEnv) -> None:
    patient, provider = people.patient, people.provider
    sealed = patient.add(b"lab", label=LAB, content_type="text/plain")
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    assert provider.request_read(patient.address, sealed.record_id).status_code == 200
    chain_env.fund(patient.address)
    prepared = patient.post("/wallet/prepare/revoke-all", {"provider": provider.address})
    assert prepared.status_code == 200, prepared.text
    tx_hash = _send(patient, prepared.json()["transaction"])
    done = patient.post("/patient/revocations/all",
                        {"provider": provider.address, "tx_hash": tx_hash})
    assert done.status_code == 200, done.text
    assert provider.request_read(patient.address, sealed.record_id).status_code == 403
