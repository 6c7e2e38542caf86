"""Reading one's records back at a cost that does not grow with their number (issue 12):
``GET /patient/records/{record_id}`` (auth as the list's, a bad id named), the Python client's
single read in two requests to the API whatever the number of records, the commitment looked
up in the block the service names (a wrong hint still gives the chain's answer), and the bulk
path (``kizuna.client.export``): one listing, one commitment lookup, every record back."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from participants import HttpPatient, People, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.chainview import registered_commitment, registered_commitments
from kizuna.client.export import Selection, export, read_many
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import IntegrityError

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test signs in its
own wallets."""

HR = {"resourceType": "Observation", "id": "hr", "status": "final",
      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
      "valueQuantity": {"value": 61, "unit": "/min"}}


def test_one_record_route(people: People, chain_env: ChainEnv, http: httpx.Client) -> None:
    patient = people.patient
    first = patient.add(b'{"resourceType":"Condition"}', label="Condition",
                        content_type="application/fhir+json")
    patient.add(b"%PDF-1.4 x", label="DocumentReference", content_type="application/pdf")

    answer = patient.get(f"/patient/records/{hx(first.record_id)}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["record_id"] == hx(first.record_id)
    assert body["patient"] == patient.address
    assert body["scope_id"] == hx(first.scope_id)
    assert body["commitment"] == hx(commitment_of(first.envelope))
    assert body["content_type"] == "application/fhir+json"
    # the named block holds the record's RecordRegistered event (on the node, not the API)
    assert registered_commitment(chain_env.chain, patient=patient.address,
                                 record_id=first.record_id, block=body["block_number"]) \
        == commitment_of(first.envelope)
    listed = patient.get("/patient/records").json()
    assert {k: v for k, v in body.items() if k != "block_number"} in \
        [{k: v for k, v in r.items() if k != "block_number"} for r in listed]

    # someone else's record: refused as the list refuses another patient's (403)
    other = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                        http=http).login()
    theirs = other.get(f"/patient/records/{hx(first.record_id)}")
    assert theirs.status_code == 403, theirs.text
    assert other.get("/patient/records", params={"patient": patient.address}).status_code == 403
    # an unknown id: 404; not an id: 422 naming the field; no session: 401
    assert patient.get(f"/patient/records/0x{'ab' * 32}").status_code == 404
    bad = patient.get("/patient/records/0x1234")
    assert bad.status_code == 422, bad.text
    assert "record_id" in bad.text
    assert http.get(f"/patient/records/{hx(first.record_id)}").status_code == 401


class Counter:
    """Every request the client sends to the API (an httpx event hook: the real requests)."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(f"{request.method} {request.url.path}")


@pytest.fixture
def counted(api_server: ApiServer, chain_env: ChainEnv) -> Iterator[tuple[PatientClient, Counter]]:
    counter = Counter()
    signer = chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, timeout=60,
                                        event_hooks={"request": [counter]}))
    service = ApiService(api, chain_env.chain)
    api.login(signer)
    try:
        yield PatientClient(signer=signer, service=service, chain=chain_env.chain), counter
    finally:
        service.close()


def test_read_own_costs_the_same_whatever_the_number_of_records(
        counted: tuple[PatientClient, Counter], chain_env: ChainEnv) -> None:
    client, counter = counted
    added = [client.add_record(json.dumps({**HR, "id": f"hr{i}"}).encode(),
                               label="Observation:vital-signs",
                               content_type="application/fhir+json") for i in range(12)]
    for count_before in (1, len(added)):  # the first record, then the last of twelve
        record = added[count_before - 1]
        counter.requests.clear()
        assert json.loads(client.read_own(record.record_id))["id"] == f"hr{count_before - 1}"
        rid = hx(record.record_id)
        # one request for the record, one for its content; never the whole list
        assert counter.requests == [f"GET /patient/records/{rid}",
                                    f"GET /patient/records/{rid}/content"]


def test_commitment_hint_is_checked_by_the_node(counted: tuple[PatientClient, Counter],
                                                 chain_env: ChainEnv) -> None:
    client, _ = counted
    record = client.add_record(b'{"resourceType":"Condition"}', label="Condition",
                               content_type="application/fhir+json")
    chain = chain_env.chain
    right = registered_commitment(chain, patient=client.address, record_id=record.record_id)
    assert right == record.commitment
    # a wrong block (the service's word is only a hint): the whole chain is searched
    assert registered_commitment(chain, patient=client.address, record_id=record.record_id,
                                 block=chain.deployment.deploy_block) == right
    assert registered_commitments(chain, patient=client.address) == {
        bytes(record.record_id): right}


def test_bulk_read_and_export(counted: tuple[PatientClient, Counter],
                              tmp_path: Path) -> None:
    client, counter = counted
    resources = [{**HR, "id": f"hr{i}", "valueQuantity": {"value": 60 + i, "unit": "/min"}}
                 for i in range(9)]
    records = [client.add_record(json.dumps(r, separators=(",", ":")).encode(),
                                 label="Observation:vital-signs",
                                 content_type="application/fhir+json") for r in resources]
    condition = client.add_record(b'{"resourceType":"Condition","id":"c1"}', label="Condition",
                                  content_type="application/fhir+json")
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    document = client.add_file(io.BytesIO(pdf), label="DocumentReference",
                               content_type="application/pdf")

    counter.requests.clear()
    opened = list(read_many(client, records, workers=4))
    assert [o.content for o in opened] == [client.read_own(r.record_id) for r in records]
    # read_many: one bulk request for the nine; then the nine single reads compared with
    assert counter.requests.count("POST /patient/records/contents") == 1
    assert len([r for r in counter.requests if r.endswith("/content")]) == len(records)
    assert "GET /patient/records" not in counter.requests

    # the export: NDJSON of every FHIR resource, the PDF written beside (by record id)
    out = io.BytesIO()
    files = tmp_path / "files"
    counter.requests.clear()
    result = export(client, out, fmt="ndjson", files_dir=files, workers=4)
    assert counter.requests.count("GET /patient/records") == 1  # one listing
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(lines, key=lambda r: r["id"]) == sorted(
        [*resources, {"resourceType": "Condition", "id": "c1"}], key=lambda r: r["id"])
    assert result.resources == 10 and result.files == 1 and result.files_skipped == 0
    assert (files / f"0x{bytes(document.record_id).hex()}.pdf").read_bytes() == pdf

    # a Bundle of one type only, files skipped (counted)
    out = io.BytesIO()
    result = export(client, out, fmt="bundle", selection=Selection(types=frozenset({"Condition"})))
    bundle = json.loads(out.getvalue())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [e["resource"] for e in bundle["entry"]] == [{"resourceType": "Condition", "id": "c1"}]
    assert (result.records, result.files_skipped) == (1, 0)
    assert condition.record_id in {r.record_id for r in client.records()}
    result = export(client, io.BytesIO(), fmt="ndjson")
    assert (result.resources, result.files_skipped) == (10, 1)


def test_bulk_download_route(people: People, chain_env: ChainEnv, http: httpx.Client) -> None:
    patient = people.patient
    sealed = [patient.add(f'{{"resourceType":"Condition","id":"c{i}"}}'.encode(),
                          label="Condition", content_type="application/fhir+json")
              for i in range(3)]
    asked = [sealed[2], sealed[0], sealed[1]]
    answer = http.post("/patient/records/contents", headers=patient.auth,
                       json={"record_ids": [hx(s.record_id) for s in asked]})
    assert answer.status_code == 200, answer.text
    framed = answer.content
    for s in asked:  # id, 8-byte length, the envelope as uploaded, in the order asked
        assert framed[:32] == bytes(s.record_id)
        size = int.from_bytes(framed[32:40], "big")
        assert framed[40:40 + size] == s.envelope
        framed = framed[40 + size:]
    assert framed == b""

    def post(who: HttpPatient, ids: list[str]) -> httpx.Response:
        return http.post("/patient/records/contents", headers=who.auth,
                         json={"record_ids": ids})

    other = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                        http=http).login()
    mine = hx(other.add(b'{"resourceType":"Condition"}', label="Condition",
                        content_type="application/fhir+json").record_id)
    # one of someone else's among one's own: refused whole, before a byte is sent
    assert post(other, [mine, hx(sealed[0].record_id)]).status_code == 403
    assert post(patient, [hx(sealed[0].record_id), "0x" + "cd" * 32]).status_code == 404
    for bad in ([], ["0x12"], [hx(sealed[0].record_id)] * 257):
        refused = post(patient, bad)
        assert refused.status_code == 422, (bad[:2], refused.text)
        assert "record_ids" in refused.text
    assert http.post("/patient/records/contents",
                     json={"record_ids": [mine]}).status_code == 401


def test_bulk_read_refuses_an_envelope_the_chain_did_not_register(
        counted: tuple[PatientClient, Counter]) -> None:
    client, _ = counted
    record = client.add_record(b'{"resourceType":"Condition"}', label="Condition",
                               content_type="application/fhir+json")
    wrong = {bytes(record.record_id): commitment_of(b"something else")}
    with pytest.raises(IntegrityError):
        list(read_many(client, [record], commitments=wrong))
    with pytest.raises(IntegrityError, match="no registration"):
        list(read_many(client, [record], commitments={}))
