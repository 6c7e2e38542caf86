"""The page's data requests (web/src/patient/dataRequests.ts) against the Python client and
service, byte for byte.

``web/test/data_requests_cli.ts`` (Node 24) is the page's patient. Python plays the provider
with the real client over HTTP (kizuna/client/data_requests.py read_note and answer), and the
same patient (its received_bundle) to compare what each side takes in.

(a) the committed documents: request and answer commitments, checked fields and the
    Provenance of a received resource are the ones Python makes (non-ASCII text included);
(b) a request asked in TS (its note sealed to the provider in TS, the event the patient's own
    transaction) is read by the Python provider, note and all, and answered with a Bundle
    encrypted to the patient; TS checks and decrypts it into the same Bundle Python's
    received_bundle makes, and imports it as ONE batch (the Provenance among the records);
(c) a provider not in the registry is refused before any wallet request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "api"))

from apienv import ApiServer, ChainEnv, deploy_env, settings_for  # noqa: E402

from kizuna.chain.localnode import LocalNode, free_port  # noqa: E402
from kizuna.chain.signers import LocalKeySigner  # noqa: E402
from kizuna.client import data_requests as client_dr  # noqa: E402
from kizuna.client.api_service import ApiService  # noqa: E402
from kizuna.client.http import ApiClient  # noqa: E402
from kizuna.client.patient import PatientClient  # noqa: E402
from kizuna.client.provider import ProviderClient  # noqa: E402
from kizuna.types import Commitment  # noqa: E402
from kizuna.wire import data_requests as dr  # noqa: E402

CLI = ROOT / "web" / "test" / "data_requests_cli.ts"
FHIR = "application/fhir+json"

pytestmark = [pytest.mark.node, pytest.mark.anvil]


def _node() -> str:
    found = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert found, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    return found


def web(ops: list[dict[str, Any]], **stack: Any) -> dict[str, Any]:
    out = subprocess.run([_node(), str(CLI)], input=json.dumps({**stack, "ops": ops}),
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    answer: dict[str, Any] = json.loads(out.stdout)
    for asked in answer["asked"]:  # every wallet request says what it is for
        assert asked["purpose"]["title"] and len(asked["purpose"]["why"]) > 20, asked
    return answer


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return result


# --- (a) the committed documents -------------------------------------------------------------

PATIENT = "0x" + "ab" * 20
PROVIDER = "0x" + "cd" * 20


def _request_json(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": "0x" + "11" * 32, "patient": LocalKeySigner("0x" + "01" * 32).address,
        "provider": LocalKeySigner("0x" + "02" * 32).address, "types": ["Observation"],
        "since": "2024", "until": None, "deadline_days": 30, "deadline": 0,
        "nonce": "0x" + "22" * 32, "note_ref": None, "tx_hash": "0x" + "33" * 32,
        "block_number": 7, "asked_at": 1_700_000_000, "state": "fulfilled",
        "status": "fulfilled", "overdue": False, "as_of": 1_700_000_500,
        "answers": [{"ref": "0x" + "44" * 32, "state": "fulfilled", "reason": None,
                     "nonce": "0x" + "55" * 32, "tx_hash": "0x" + "66" * 32,
                     "block_number": 9, "answered_at": 1_700_000_123, "deliveries": []}]}
    return {**base, **over}


def test_the_committed_documents_are_pythons() -> None:
    fields = dr.checked_fields(types=["Observation", "DiagnosticReport", "Observation"],
                               since="2024-01", until="2024-12-31", deadline_days=None)
    nonce, note = os.urandom(32), os.urandom(32)
    request = _request_json()
    answer_json = request["answers"][0]
    resource = {"resourceType": "Observation", "id": "obs-1", "status": "final",
                "code": {"text": "血糖 — ü"}}
    deliveries = [os.urandom(32), os.urandom(32)]
    reasons = ["not held here — 当院にはありません \"quoted\"\n\ttab \x7f \U0001f600", None]
    answer = web([
        {"op": "checkedFields", "types": ["Observation", "DiagnosticReport", "Observation"],
         "since": "2024-01", "until": "2024-12-31", "deadline_days": None},
        {"op": "requestCommitment", "patient": PATIENT, "provider": PROVIDER,
         "types": list(fields.types), "since": fields.since, "until": fields.until,
         "deadline_days": fields.deadline_days, "note_ref": "0x" + note.hex(),
         "nonce": "0x" + nonce.hex()},
        {"op": "requestCommitment", "patient": PATIENT, "provider": PROVIDER,
         "types": ["Condition"], "since": None, "until": None, "deadline_days": 1,
         "note_ref": None, "nonce": "0x" + nonce.hex()},
        *[{"op": "answerCommitment", "request": "0x" + note.hex(), "state": state,
           "reason": reason, "deliveries": ["0x" + d.hex() for d in deliveries],
           "nonce": "0x" + nonce.hex()}
          for state, reason in (("declined", reasons[0]), ("fulfilled", reasons[1]))],
        {"op": "provenance", "resource": resource, "request": request, "answer": answer_json},
        {"op": "checkedFields", "types": ["Observation"], "since": "2024-13",
         "until": None, "deadline_days": 30},
        {"op": "checkedFields", "types": ["Observation"], "since": None, "until": None,
         "deadline_days": 366},
    ])
    checked, full, bare, declined, fulfilled, prov, bad_date, bad_days = answer["results"]
    assert ok(checked)["value"] == {"types": ["DiagnosticReport", "Observation"],
                                    "since": "2024-01", "until": "2024-12-31",
                                    "deadlineDays": 30}
    assert ok(full)["ref"] == "0x" + dr.request_commitment(
        patient=PATIENT, provider=PROVIDER, fields=fields, note_ref=note, nonce=nonce).hex()
    assert ok(bare)["ref"] == "0x" + dr.request_commitment(
        patient=PATIENT, provider=PROVIDER,
        fields=dr.checked_fields(types=["Condition"], since=None, until=None, deadline_days=1),
        note_ref=None, nonce=nonce).hex()
    for got, state, reason in ((declined, "declined", reasons[0]),
                               (fulfilled, "fulfilled", reasons[1])):
        assert ok(got)["ref"] == "0x" + dr.answer_commitment(
            request_id=note, state=state, reason=reason,
            deliveries=[Commitment(d) for d in deliveries], nonce=nonce).hex()
    python_request = client_dr.request_of_json(request)
    assert ok(prov)["value"] == client_dr.provenance(resource, python_request,
                                                     python_request.answers[0])
    assert bad_date["field"] == "since" and bad_days["field"] == "deadline_days"


# --- (b) (c) against a real stack -----------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    with LocalNode(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield deploy_env(node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="module")
def server(env: ChainEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("api")
    started = ApiServer(settings=settings_for(env, data, port=free_port()),
                        log_path=data / "api.log").start()
    yield started
    started.stop()


def test_asked_in_the_page_answered_by_python_taken_in_by_the_page(
        env: ChainEnv, server: ApiServer) -> None:
    signer = env.new_signer()
    api = ApiClient(server.url, timeout=60)
    service = ApiService(api, env.chain)
    provider = ProviderClient(signer=signer, service=service, chain=env.chain)
    env.add_provider(signer, provider.public_key.to_bytes())
    api.login(signer)
    key = "0x" + os.urandom(32).hex()
    env.fund(LocalKeySigner(key).address)
    stack = {"base_url": server.url, "rpc_url": env.node.rpc_url, "private_key": key}
    note = "The discharge summary of my stay in March — 三月の退院サマリー"
    stranger = env.new_signer().address

    asked = web([
        {"op": "ask", "provider": stranger, "types": ["Observation"]},
        {"op": "publishInboxKey"},
        # Care authority for the provider's answer: a live grant of the patient.
        {"op": "grant", "provider": signer.address, "labels": ["Condition"],
         "expires_in": 86_400},
        {"op": "ask", "provider": signer.address, "types": ["Observation", "Condition"],
         "since": "2024-01-01", "until": "2024-12-31", "deadline_days": 14, "note": note},
    ], **stack)
    refused, _, _, made = asked["results"]
    assert refused["field"] == "provider" and "registry" in refused["message"]
    kinds = [a["kind"] for a in asked["asked"]]
    assert kinds.count("transaction") == 1  # the ask; the refused one asked nothing
    ask_purpose = next(a["purpose"] for a in asked["asked"] if a["kind"] == "transaction")
    assert ask_purpose["title"] == "Ask a provider for your records"
    request_json = ok(made)["value"]
    assert request_json["status"] == "open" and request_json["deadline_days"] == 14
    assert request_json["types"] == ["Condition", "Observation"]

    transport = client_dr.ApiDataRequests(api)
    rid = bytes.fromhex(request_json["request_id"][2:])
    request = transport.get(rid, reader=signer.address)
    assert client_dr.read_note(transport, provider, request) == note
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "c1",
                      "code": {"text": "Asthma — 喘息"},
                      "subject": {"display": "the patient"}}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"text": "HbA1c"}, "valueQuantity": {"value": 5.4, "unit": "%"},
                      "effectiveDateTime": "2024-03-02"}}]}
    client_dr.answer(transport, provider, rid, dr.ACKNOWLEDGED)
    client_dr.answer(transport, provider, rid, dr.FULFILLED,
                     files=[(json.dumps(bundle, ensure_ascii=False).encode(), FHIR)])

    got = web([{"op": "list"}, {"op": "received", "request_id": request_json["request_id"]},
               {"op": "filesLeft", "request_id": request_json["request_id"]},
               {"op": "receive", "request_id": request_json["request_id"]},
               {"op": "records"},
               {"op": "filesLeft", "request_id": request_json["request_id"]},
               {"op": "receive", "request_id": request_json["request_id"]},
               {"op": "records"}], **stack)
    listed, received, left, imported, records, left_after, again, records_again = got["results"]
    # Taken in once: the file is in the record (no button), a second take adds nothing.
    assert ok(left)["left"] == 1 and ok(left_after)["left"] == 0
    assert ok(again)["added"] == 0 and again["already"] == 4 and again["batches"] == []
    assert len(ok(records_again)["value"]) == len(records["value"]) == 4
    assert [r["status"] for r in ok(listed)["value"]] == ["fulfilled"]

    patient_api = ApiClient(server.url, timeout=60)
    patient_service = ApiService(patient_api, env.chain)
    patient_signer = LocalKeySigner(key)
    patient_api.login(patient_signer)
    python_patient = PatientClient(signer=patient_signer, service=patient_service,
                                   chain=env.chain)
    try:
        answered = transport.get(rid, reader=python_patient.address)
        expected = client_dr.received_bundle(client_dr.ApiDataRequests(patient_api),
                                             python_patient, answered)
        # The page's record ids are Python's rule (received_record_ids): the delivered file's
        # commitment and each entry's position in it, under the patient's import id key.
        (delivery,) = [d for a in answered.answers for d in a.deliveries]
        expected_ids = {"0x" + bytes(r).hex() for r in client_dr.received_record_ids(
            python_patient.keys.wallet.import_id_key().reveal(),
            [(bytes(delivery.commitment), j) for j in range(4)])}
    finally:
        patient_service.close()
        service.close()
    assert ok(received)["bundle"] == expected
    assert received["files"] == 1
    types = [e["resource"]["resourceType"] for e in expected["entry"]]
    assert types == ["Condition", "Provenance", "Observation", "Provenance"]

    assert ok(imported)["resources"] == 4 and len(imported["batches"]) == 1
    assert imported["batches"][0]["count"] == 4
    assert {r["id"].lower() for r in records["value"]} == expected_ids
    labels = sorted(r["label"] for r in ok(records)["value"])
    assert labels == ["Condition", "Observation", "Provenance", "Provenance"]
