"""``kizuna audit ...``: over the API (a key with the auditor role) and --local."""

from __future__ import annotations

import json
from pathlib import Path

from roles_stack import Stack

from kizuna.services.fhir_export import RECORD_BATCH_EXTENSION
from kizuna.stack.demo_data import DEMO_PATIENTS, history


def test_verify_log_export_local(stack: Stack, tmp_path: Path) -> None:
    verified = stack.ok("audit", "verify", "--local", "--json").json()
    assert verified["ok"] is True
    assert verified["receipts"]["checked"] >= 3 and verified["content"]["checked"] > 40

    log = stack.ok("audit", "log", "--patient", "aiko", "--local", "--json").json()
    reads = [e for e in log if e["kind"] == "read"]
    assert len(reads) >= 3
    tanaka = stack.address("dr-tanaka")
    assert {e["provider"] for e in reads} == {tanaka}
    assert any(e["kind"] == "access-granted" for e in log)
    future = stack.ok("audit", "log", "--since", "2999-01-01", "--local", "--json").json()
    assert future == []

    out = tmp_path / "bundle.json"
    stack.ok("audit", "export", "--format", "fhir", "-o", str(out), "--patient", "aiko",
             "--local")
    bundle = json.loads(out.read_text())
    assert bundle["resourceType"] == "Bundle"
    events = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "AuditEvent"]
    assert len(events) == len(reads)  # one AuditEvent per read, one for one


def test_over_the_api_with_the_auditor_role(stack: Stack) -> None:
    verified = stack.ok("audit", "verify", "--key", "auditor", "--json").json()
    assert verified["ok"] is True
    log = stack.ok("audit", "log", "--provider", "dr-tanaka", "--key", "auditor",
                   "--json").json()
    assert any(e["kind"] == "read" for e in log)
    bundle = json.loads(stack.ok("audit", "export", "--key", "auditor").out)
    assert bundle["type"] == "collection"
    anchored = stack.ok("audit", "anchor", "--key", "auditor", "--json").json()
    assert anchored["anchored"] >= 0

    refused = stack.kizuna("audit", "verify", "--key", "aiko")
    assert refused.code == 4
    assert "auditor role" in refused.error_line


def test_anchor_local_needs_anchor_role(stack: Stack) -> None:
    aiko = stack.address("aiko")
    with stack.provider("dr-tanaka") as tanaka:  # set-up, in process: a read (its receipt)
        tanaka.read(patient=aiko, record_id=tanaka.records(patient=aiko)[0].record_id)
    anchored = stack.ok("audit", "anchor", "--local", "--key", "auditor", "--json").json()
    # (the stack's own anchorer may have been quicker: then nothing was left to anchor)
    assert anchored["anchored"] == 0 or anchored["roots"]
    log = stack.ok("audit", "log", "--local", "--json").json()
    on_chain = {e["details"].get("root") for e in log if e["kind"] == "receipt-root-anchored"}
    assert set(anchored["roots"]) <= {str(r) for r in on_chain}, (anchored, on_chain)
    assert stack.ok("audit", "verify", "--local", "--json").json()["ok"] is True
    refused = stack.kizuna("audit", "anchor", "--local", "--key", "aiko")
    assert refused.code == 4
    assert "ANCHOR_ROLE" in refused.error_line


def test_verify_fails_on_tampered_ciphertext(stack: Stack, new_patient: str) -> None:
    record = stack.add_resource(new_patient, {  # set-up, in process
        "resourceType": "Observation", "id": "t1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 60, "unit": "/min"}})
    blocks = [p for p in (stack.home / "store" / "blocks").rglob("*") if p.is_file()
              and record["cid"] in p.name]
    assert len(blocks) == 1, "the embedded store keeps one file per CID"
    original = blocks[0].read_bytes()
    try:
        damaged = bytearray(original)
        damaged[-5] ^= 0xFF
        blocks[0].write_bytes(bytes(damaged))
        failed = stack.kizuna("audit", "verify", "--local", "--json")
        assert failed.code == 1
        report = failed.json()
        assert report["ok"] is False
        assert any(record["record_id"] in f["subject"] or record["cid"] in f["subject"]
                   for f in report["content"]["failures"]), report["content"]
        assert failed.error_line.startswith("kizuna: audit failed")
    finally:
        blocks[0].write_bytes(original)
    assert stack.ok("audit", "verify", "--local", "--json").json()["ok"] is True


def test_an_imported_history_is_one_batch_in_the_audit(stack: Stack, new_patient: str,
                                                       tmp_path: Path) -> None:
    """``kizuna patient import`` registers a history as one batch: the log shows it as one
    entry (root, count, patient, block), verify checks each record by its proof, the FHIR
    export has a Provenance per record naming the batch root."""
    source = tmp_path / "history.json"
    source.write_text(json.dumps(history(DEMO_PATIENTS[1])))
    count = stack.ok("patient", "import", str(source), "--key", new_patient,
                     "--json").json()["imported"]
    address = stack.address(new_patient)

    log = stack.ok("audit", "log", "--patient", new_patient, "--local", "--json").json()
    [batch] = [e for e in log if e["kind"] == "record-batch-registered"]
    assert not [e for e in log if e["kind"] == "record-registered"]
    assert batch["patient"] == address and batch["details"]["count"] == count
    assert batch["block_number"] > 0 and batch["event"] == "RecordBatchRegistered"
    root = batch["details"]["root"]
    table = stack.ok("audit", "log", "--patient", new_patient, "--local").out
    assert "record-batch-registered" in table and root[:8] in table

    verified = stack.ok("audit", "verify", "--local", "--json").json()
    assert verified["ok"] is True, verified["content"]["failures"]
    assert verified["content"]["counts"]["batch_records"] >= count

    out = tmp_path / "bundle.json"
    stack.ok("audit", "export", "-o", str(out), "--patient", new_patient, "--local")
    provenances = [e["resource"] for e in json.loads(out.read_text())["entry"]
                   if e["resource"]["resourceType"] == "Provenance"]
    assert len(provenances) == count
    for p in provenances:
        [extension] = [x for x in p["extension"] if x["url"] == RECORD_BATCH_EXTENSION]
        assert extension["extension"][0]["valueIdentifier"]["value"] == root
