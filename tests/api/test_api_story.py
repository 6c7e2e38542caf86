"""The whole story over HTTP, against real components started here (anvil, the embedded
content store, SQLite, the API under uvicorn): a patient imports a FHIR history, grants a
provider two scopes, the provider reads only those, the patient revokes one, the next read of
it is refused, the auditor verifies everything, and the exported AuditEvents match the reads
one for one."""

from __future__ import annotations

import pytest
from fhir_history import history
from participants import People, Sealed, hx

from kizuna.crypto.commitment import commitment_of
from kizuna.merkle import process_proof
from kizuna.storage.fhir.importer import import_bundle

pytestmark = pytest.mark.anvil


def test_the_whole_story(people: People) -> None:
    patient, provider, auditor = people.patient, people.provider, people.auditor
    assert provider.roles == ["patient", "provider"] and "auditor" in auditor.roles

    # 1. the patient imports a FHIR history: one envelope per resource, sealed locally
    sealed: dict[str, Sealed] = {}
    for entry in import_bundle(history()):
        sealed[entry.scope_label] = patient.add(entry.content, label=entry.scope_label,
                                                content_type=entry.content_type)
    listed = patient.get("/patient/records").json()
    assert {r["record_id"] for r in listed} == {hx(s.record_id) for s in sealed.values()}
    # the service keeps ciphertext only
    for s in sealed.values():
        assert s.content not in s.envelope

    # 2. two scopes granted to the provider
    granted = ["Observation:laboratory", "Condition"]
    answer = patient.grant(provider.address, provider.keys.public_key, granted)
    assert answer.status_code == 200, answer.text

    # 3. the provider sees and reads exactly those
    readable = provider.get("/provider/records", params={"patient": patient.address}).json()
    assert {r["record_id"] for r in readable} == {hx(sealed[g].record_id) for g in granted}
    assert provider.get("/provider/patients").json() == [patient.address]
    reads: list[str] = []
    for label in granted:
        answer = provider.request_read(patient.address, sealed[label].record_id)
        assert answer.status_code == 200, answer.text
        grant = answer.json()
        plain = provider.open(grant, provider.fetch(grant["cid"]),
                              commitment=commitment_of(sealed[label].envelope))
        assert plain == sealed[label].content
        reads.append(grant["request_id"])
    for other in ("Observation:vital-signs", "Immunization", "Patient"):
        refused = provider.request_read(patient.address, sealed[other].record_id)
        assert refused.status_code == 403, refused.text

    # 4. revoke one scope: the next read of it is refused, the other still served
    answer = patient.revoke(provider.address, "Condition")
    assert answer.status_code == 200, answer.text
    refused = provider.request_read(patient.address, sealed["Condition"].record_id)
    assert refused.status_code == 403
    assert provider.read(patient.address, sealed["Observation:laboratory"]) == \
        sealed["Observation:laboratory"].content
    assert provider.get("/auditor/log").status_code == 403  # providers are not auditors

    # the patient sees who read what
    seen = patient.get("/patient/reads").json()
    assert len(seen) == 3 and {r["provider"] for r in seen} == {provider.address}

    # 5. the auditor anchors and verifies everything
    anchored = auditor.post("/auditor/anchor", {})
    assert anchored.status_code == 200, anchored.text
    assert anchored.json()["anchored"] >= 3
    report = auditor.get("/auditor/verification").json()
    assert report["ok"], report
    assert report["receipts"]["checked"] >= 3
    # the receipts with their proofs (what the auditor's page checks): each proof folds the
    # stored leaf up to its batch's root
    page = auditor.get("/auditor/receipts").json()
    assert page["next_cursor"] is None  # a few receipts: one page (paging: its own test)
    receipts = page["receipts"]
    assert len(receipts) >= 3 and all(r["batch_root"] for r in receipts)
    for r in receipts:
        folded = process_proof([bytes.fromhex(x[2:]) for x in r["proof"]],
                               bytes.fromhex(r["leaf"][2:]))
        assert "0x" + folded.hex() == r["batch_root"], r
    assert provider.get("/auditor/receipts").status_code == 403
    log = auditor.get("/auditor/log", params={"patient": patient.address}).json()
    kinds = [e["kind"] for e in log]
    assert kinds.count("read") == 3 and "access-revoked" in kinds
    assert kinds.count("record-registered") == 5

    # 6. the exported AuditEvents match the reads one for one
    bundle = auditor.get("/auditor/export", params={"patient": patient.address}).json()
    events = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "AuditEvent"]
    exported = sorted(d["valueString"] for ev in events for d in ev["entity"][0]["detail"]
                      if d["type"] == "request-id")
    served = sorted(r["request_id"] for r in seen)
    assert exported == served and len(exported) == 3
    # ... of a period, cut by the service: the reads' own times, an empty past period, and a
    # period ending before it starts named by its field
    times = sorted(r["served_at"] for r in seen)
    cut = auditor.get("/auditor/export", params={"patient": patient.address,
                                                 "since": times[0], "until": times[-1]}).json()
    assert sorted(d["valueString"] for ev in cut["entry"]
                  if ev["resource"]["resourceType"] == "AuditEvent"
                  for d in ev["resource"]["entity"][0]["detail"]
                  if d["type"] == "request-id") == served
    past = auditor.get("/auditor/export", params={"patient": patient.address,
                                                  "since": 0, "until": 1}).json()
    assert past["entry"] == []
    backwards = auditor.get("/auditor/export", params={"since": 10, "until": 9})
    assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "until"
    negative = auditor.get("/auditor/export", params={"since": -1})
    assert negative.status_code == 422 and "since" in negative.text
