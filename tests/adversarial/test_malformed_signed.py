"""Issue #15, finding 8: malformed signed data is a 422 naming the field, never a 500.

Against the real API (uvicorn subprocess) a signed-in patient sends EIP-712 documents broken
one part at a time — ``types`` not an object, ``patient`` missing from the message, a
``chainId`` past uint256, and their siblings (a field of the wrong type, a struct that is not
the ledger's, an extra field, a primary type that is no type) — to every route that takes typed
data: ``/wallet/relay``, ``/patient/grants``, ``/patient/revocations`` and the record upload
(``X-Kizuna-Registration``). Each was a 500 (or worse, relayed) before: now 422 with the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from apienv import ApiServer
from participants import HttpPatient, People, hx

from kizuna.chain.eip712 import TypedData

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

Break = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Break:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value
    return apply


def _delete(path: str) -> Break:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        del target[last]
    return apply


BREAKS: list[tuple[str, Break, str]] = [
    # (what, how, the field the answer must name)
    ("types is a list", _set("types", []), "typed_data.types"),
    ("types is a string", _set("types", "Revoke"), "typed_data.types"),
    ("patient missing", _delete("message.patient"), "typed_data.message.patient"),
    ("huge chainId", _set("domain.chainId", 2**300), "typed_data.domain.chainId"),
    ("huge chainId string", _set("domain.chainId", "9" * 5000), "typed_data.domain.chainId"),
    ("chainId not a number", _set("domain.chainId", {"x": 1}), "typed_data.domain.chainId"),
    ("domain not an object", _set("domain", [1]), "typed_data.domain"),
    ("message not an object", _set("message", "x"), "typed_data.message"),
    ("patient not an address", _set("message.patient", 12), "typed_data.message.patient"),
    ("deadline too big", _set("message.deadline", 2**256), "typed_data.message.deadline"),
    ("deadline a list", _set("message.deadline", [1]), "typed_data.message.deadline"),
    ("nonce negative", _set("message.nonce", -1), "typed_data.message.nonce"),
    ("an extra field", _set("message.extra", 1), "typed_data.message.extra"),
    ("a struct's fields not objects", lambda d: d["types"].__setitem__(d["primaryType"], [1, 2]),
     "typed_data.types"),
    ("primaryType not a type", _set("primaryType", ["Revoke"]), "typed_data.primaryType"),
    ("verifyingContract not an address", _set("domain.verifyingContract", None),
     "typed_data.domain.verifyingContract"),
]


def broken(document: dict[str, Any], how: Break) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    how(copied)
    return copied


def revoke_document(patient: HttpPatient, provider: str) -> dict[str, Any]:
    typed = patient.chain.ledger.revoke_typed_data(
        patient=patient.address, provider=provider, scope_id=patient.scope("Condition"),
        deadline=patient.deadline())
    return typed.to_json()


def grant_document(patient: HttpPatient, provider: str) -> dict[str, Any]:
    typed = patient.chain.ledger.grant_typed_data(
        patient=patient.address, provider=provider, scope_id=patient.scope("Condition"),
        expires_at=patient.deadline() + 86400, deadline=patient.deadline())
    return typed.to_json()


def register_document(patient: HttpPatient) -> tuple[dict[str, Any], Any]:
    sealed = patient.seal(b"lab result", label="Condition", content_type="text/plain")
    registration = json.loads(patient.registration(sealed))
    return registration["signed"]["typed_data"], sealed


def assert_422(answer: httpx.Response, field: str, what: str) -> None:
    assert answer.status_code == 422, (what, answer.status_code, answer.text[:500])
    error = answer.json()["error"]
    assert error["field"].endswith(field) or error["field"].startswith(field), (what, error)


def test_wallet_relay(api_server: ApiServer, people: People) -> None:
    patient, provider = people.patient, people.provider.address
    document = revoke_document(patient, provider)
    for what, how, field in BREAKS:
        answer = patient.post("/wallet/relay", {"typed_data": broken(document, how),
                                                "signature": hx(b"\x01" * 65)})
        assert_422(answer, field, what)
    assert api_server.process is not None and api_server.process.poll() is None


def test_patient_grants(api_server: ApiServer, people: People) -> None:
    patient, provider = people.patient, people.provider
    document = grant_document(patient, provider.address)
    scope = document["message"]["scopeId"]
    for what, how, field in BREAKS:
        answer = patient.post("/patient/grants", {
            "provider": provider.address, "scope_ids": [scope],
            "expires_at": int(document["message"]["expiresAt"]),
            "kfrags": {scope: [hx(b"\x02" * 10)]},
            "authorization": {"signed": {"typed_data": broken(document, how),
                                         "signature": hx(b"\x01" * 65)}}})
        assert_422(answer, field, what)


def test_patient_revocations(api_server: ApiServer, people: People) -> None:
    patient, provider = people.patient, people.provider.address
    document = revoke_document(patient, provider)
    for what, how, field in BREAKS:
        answer = patient.post("/patient/revocations", {
            "provider": provider, "scope_id": document["message"]["scopeId"],
            "authorization": {"signed": {"typed_data": broken(document, how),
                                         "signature": hx(b"\x01" * 65)}}})
        assert_422(answer, field, what)


def test_record_upload(api_server: ApiServer, people: People) -> None:
    patient = people.patient
    document, sealed = register_document(patient)
    for what, how, field in BREAKS:
        registration = json.dumps({"signed": {
            "typed_data": broken(document, how),
            "signature": hx(b"\x01" * 65)}})
        answer = patient.upload(sealed, registration=registration)
        assert_422(answer, field, what)
    # the intact document still uploads
    assert patient.upload(sealed).status_code == 201


def test_parse_names_the_part() -> None:
    """The one parser (TypedData.from_json) names the broken part for any caller."""
    from kizuna.errors import InputError

    for data, field in (([], "typed_data"), ({"types": {}}, "typed_data.primaryType"),
                        ({"types": {"A": "x"}, "primaryType": "A", "domain": {},
                          "message": {}}, "typed_data.types.A")):
        with pytest.raises(InputError) as raised:
            TypedData.from_json(data)
        assert raised.value.field == field, raised.value


def test_unrecoverable_signatures(api_server: ApiServer, people: People) -> None:
    """Siblings: a well-formed 65-byte signature from which no key recovers (r = s = 0) made
    eth-keys raise BadSignature, which no route caught (500): relay, scope keys, inbox key."""
    patient, provider = people.patient, people.provider.address
    scope = patient.scope("Condition")
    verifying = hx(patient.keys.verifying_key.to_bytes())
    delegating = hx(patient.keys.scope_public(scope).to_bytes())
    zero = hx(b"\x00" * 64 + b"\x1b")
    answers = {
        "relay": patient.post("/wallet/relay", {
            "typed_data": revoke_document(patient, provider), "signature": zero}),
        "scope-keys": patient.post("/patient/scope-keys", {
            "scope_id": hx(scope), "delegating_key": delegating, "verifying_key": verifying,
            "signature": zero}),
        "inbox-key": patient.post("/patient/inbox-key", {"public_key": verifying,
                                                         "signature": zero}),
    }
    for route, answer in answers.items():
        assert answer.status_code in (403, 422), (route, answer.status_code, answer.text)
    assert api_server.process is not None and api_server.process.poll() is None
