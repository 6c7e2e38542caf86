"""Received data-request files are named per file (kizuna/client/data_requests.py
``received_record_ids``: the import id key over the delivered file's commitment and each
entry's position in it): a request taken in after a first answer, then again after a second
one, adds only the second file's records — nothing twice — and the ids are that rule's."""

from __future__ import annotations

import json
from pathlib import Path

from local_stack import LocalStack

from kizuna.client import data_requests as client
from kizuna.client.local import LocalDataRequests
from kizuna.wire import data_requests as dr

LAB = {"resourceType": "Observation", "id": "hb-2024", "status": "final",
       "code": {"text": "Hemoglobin"}, "effectiveDateTime": "2024-03-02",
       "valueQuantity": {"value": 13.9, "unit": "g/dL"}}
PDF = b"%PDF-1.4 discharge summary"


def test_a_request_taken_in_twice_adds_each_file_once(stack: LocalStack, tmp_path: Path) -> None:
    api = LocalDataRequests(stack.ctx)
    patient, provider = stack.patient(), stack.provider()
    patient.add_record(b'{"resourceType":"Basic"}', label="Basic",
                       content_type="application/fhir+json")
    # A grant, so the provider may answer whichever rule the ledger applies to answers.
    patient.grant(provider.address, ["Basic"], expires_at=patient.now() + 86_400)
    asked = client.ask(api, patient, provider.address, types=["Observation"])
    client.answer(api, provider, asked.request_id, dr.FULFILLED_IN_PART,
                  files=[(json.dumps(LAB).encode(), "application/fhir+json")])
    before = {bytes(r.record_id) for r in patient.records()}

    first = client.receive(api, patient, asked.request_id, journal_root=tmp_path)
    assert first.registered == 2  # the Observation and its Provenance
    client.answer(api, provider, asked.request_id, dr.FULFILLED,
                  files=[(PDF, "application/pdf")])
    second = client.receive(api, patient, asked.request_id, journal_root=tmp_path)
    assert second.registered == 2  # only the new file: its DocumentReference and Provenance
    assert client.receive(api, patient, asked.request_id, journal_root=tmp_path).registered == 0

    added = {bytes(r.record_id) for r in patient.records()} - before
    request = api.get(asked.request_id, reader=patient.address)
    files = [bytes(d.commitment) for a in request.answers for d in a.deliveries]
    assert len(files) == 2
    key = patient.keys.wallet.import_id_key().reveal()
    assert added == {bytes(r) for r in client.received_record_ids(
        key, [(c, j) for c in files for j in range(2)])}
