"""``kizuna patient ...`` through the real entry point against the running stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from roles_stack import Stack

from kizuna.cli.participant import hex32
from kizuna.errors import AccessDenied, ContractReverted
from kizuna.stack.demo_data import DEMO_PATIENTS, history
from kizuna.storage.fhir.importer import import_bundle

HEART_RATE: dict[str, Any] = {
    "resourceType": "Observation", "id": "hr1", "status": "final",
    "category": [{"coding": [{"system":
                              "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                         "display": "Heart rate"}]},
    "effectiveDateTime": "2026-11-01T10:00:00Z",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                      "code": "/min"},
}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_import_then_records_and_get(stack: Stack, new_patient: str, tmp_path: Path) -> None:
    bundle = history(DEMO_PATIENTS[0])
    source = tmp_path / "history.json"
    source.write_text(json.dumps(bundle))
    expected = list(import_bundle(bundle))

    imported = stack.ok("patient", "import", str(source), "--key", new_patient, "--json").json()
    assert imported["imported"] == len(expected)
    by_label: dict[str, int] = {}
    for entry in expected:
        by_label[str(entry.scope_label)] = by_label.get(str(entry.scope_label), 0) + 1
    assert imported["by_scope"] == by_label

    listed = stack.ok("patient", "records", "--key", new_patient, "--json").json()
    assert len(listed) == len(expected)
    assert sorted(r["label"] for r in listed) == sorted(str(e.scope_label) for e in expected)
    labs = stack.ok("patient", "records", "--scope", "Observation:laboratory",
                    "--key", new_patient, "--json").json()
    assert labs and {r["label"] for r in labs} == {"Observation:laboratory"}

    # get: the decrypted record is exactly one of the imported resources (canonical JSON)
    target = tmp_path / "record.json"
    stack.ok("patient", "get", labs[0]["record_id"][:14], "-o", str(target),
             "--key", new_patient)
    assert target.read_bytes() in {e.content for e in expected}
    assert target.stat().st_mode & 0o777 == 0o600

    table = stack.ok("patient", "records", "--key", new_patient).out
    assert "Observation:laboratory" in table and "record(s)" in table


def test_add_fhir_and_pdf(stack: Stack, new_patient: str, tmp_path: Path) -> None:
    resource = tmp_path / "hr.json"
    resource.write_text(json.dumps(HEART_RATE))
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(PDF)
    added = stack.ok("patient", "add", str(resource), str(pdf), "--key", new_patient,
                     "--json").json()
    kinds = sorted((r["label"], r["content_type"]) for r in added)
    assert kinds == [("DocumentReference", "application/fhir+json"),
                     ("DocumentReference", "application/pdf"),
                     ("Observation:vital-signs", "application/fhir+json")]
    pdf_id = next(r["record_id"] for r in added if r["content_type"] == "application/pdf")
    out = tmp_path / "back.pdf"
    stack.ok("patient", "get", pdf_id, "-o", str(out), "--key", new_patient)
    assert out.read_bytes() == PDF

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**HEART_RATE, "status": "not-a-status"}))
    refused = stack.kizuna("patient", "add", str(bad), "--key", new_patient)
    assert refused.code == 6, refused.err
    assert "status" in refused.error_line


def test_grant_read_revoke_refused(stack: Stack, new_patient: str) -> None:
    record = stack.add_resource(new_patient, HEART_RATE)  # set-up, in process

    granted = stack.ok("patient", "grant", "dr-sato", "Observation", "--days", "3",
                       "--key", new_patient, "--json").json()
    assert "Observation" in granted["scopes"] and "Observation:vital-signs" in granted["scopes"]
    grants = stack.ok("patient", "grants", "--key", new_patient, "--json").json()
    assert {g["scope"] for g in grants} == set(granted["scopes"])

    me = stack.address(new_patient)
    record_id = bytes.fromhex(record["record_id"][2:])
    # dr-sato's reads in process, as `provider read` reads (that command: test_cli_provider)
    with stack.provider("dr-sato") as doctor:
        assert json.loads(doctor.read(patient=me, record_id=record_id))["id"] == "hr1"
    reads = stack.ok("patient", "reads", "--key", new_patient, "--json").json()
    sato = stack.address("dr-sato")
    assert [(r["provider"], r["record_id"]) for r in reads] == [(sato, record["record_id"])]
    assert reads[0]["scope"] == "Observation:vital-signs"

    stack.ok("patient", "revoke", "dr-sato", "Observation:vital-signs", "--key", new_patient)
    with stack.provider("dr-sato") as doctor, pytest.raises(AccessDenied, match="revoked"):
        doctor.read(patient=me, record_id=record_id)

    everything = stack.ok("patient", "revoke", "dr-sato", "--all", "--key", new_patient,
                          "--json")
    assert everything.json()["scopes"] == ["*"]
    assert stack.ok("patient", "grants", "--key", new_patient, "--json").json() == []
    again = stack.kizuna("patient", "revoke", "dr-sato", "Observation", "--key", new_patient)
    assert again.code == 3, again.err
    assert "no live grant" in again.error_line


def test_request_answered_with_a_grant(stack: Stack, new_patient: str) -> None:
    # set-up in process: the patient's inbox key published, dr-tanaka's request sent (as
    # `kizuna provider request` sends it: test_cli_provider)
    me = stack.address(new_patient)
    with stack.patient(new_patient), stack.provider("dr-tanaka") as tanaka:
        tanaka.request_access(me, b"Referral: please share vitals")
    requests = stack.ok("patient", "requests", "--key", new_patient, "--json").json()
    assert len(requests) == 1
    note = stack.ok("patient", "open", requests[0]["ref"][:12], "--key", new_patient).out
    assert note == "Referral: please share vitals"
    answered = stack.ok("patient", "answer", requests[0]["ref"][:10], "--grant",
                        "Observation:vital-signs", "--days", "2", "--key", new_patient,
                        "--json").json()
    assert answered["answer"] == "granted"
    with stack.provider("dr-tanaka") as tanaka:  # what `provider inbox` lists, in process
        inbox = tanaka.inbox()
    assert any(i.patient == me and i.kind == "request-granted" for i in inbox), inbox
    assert stack.ok("patient", "requests", "--key", new_patient, "--json").json() == []


def test_request_denied(stack: Stack) -> None:
    kenji = stack.address("kenji")
    with stack.provider("dr-sato") as sato:  # set-up, in process
        sato.request_access(kenji, b"second opinion")
    denied = stack.ok("patient", "answer", "dr-sato", "--deny", "--key", "kenji", "--json")
    assert denied.json()["answer"] == "denied"
    none_left = stack.kizuna("patient", "answer", "dr-sato", "--deny", "--key", "kenji")
    assert none_left.code == 3
    assert "no open access request" in none_left.error_line


def test_inbox_and_open_report(stack: Stack) -> None:
    inbox = stack.ok("patient", "inbox", "--key", "aiko", "--json").json()
    report = next(i for i in inbox if i["kind"] == "report")
    opened = json.loads(stack.ok("patient", "open", report["ref"], "--key", "aiko").out)
    assert opened["resourceType"] == "Communication"
    assert "HbA1c" in opened["payload"][0]["contentString"]


def test_guardian_and_emergency_policy(stack: Stack) -> None:
    added = stack.ok("patient", "guardian", "add", "aiko", "--days", "30", "--key", "kenji",
                     "--json").json()
    aiko = stack.address("aiko")
    assert added["guardian"] == aiko
    listed = stack.ok("patient", "guardian", "list", "--key", "kenji", "--json").json()
    assert [g["guardian"] for g in listed] == [aiko]
    stack.ok("patient", "guardian", "remove", "aiko", "--key", "kenji")
    assert stack.ok("patient", "guardian", "list", "--key", "kenji", "--json").json() == []

    policy = stack.ok("patient", "emergency-policy", "--deny", "--key", "kenji", "--json")
    assert policy.json()["allowed"] is False
    # dr-sato's break-glass refused, in process (`provider break-glass`: test_cli_provider)
    with stack.provider("dr-sato") as sato, pytest.raises(ContractReverted,
                                                          match="EmergencyNotAllowed"):
        sato.break_glass(stack.address("kenji"), duration=2 * 3600, reason_code=1)


def test_add_dicom_deidentified(stack: Stack, new_patient: str, tmp_path: Path) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    ct = Path(str(get_testdata_file("CT_small.dcm", download=False)))
    original = pydicom.dcmread(ct)
    assert str(original.PatientName)  # the test file names a patient
    source = tmp_path / "ct.dcm"
    source.write_bytes(ct.read_bytes())
    added = stack.ok("patient", "add", str(source), "--deidentify", "--key", new_patient,
                     "--json").json()
    assert sorted(r["content_type"] for r in added) == ["application/dicom",
                                                        "application/fhir+json"]
    assert {r["label"] for r in added} == {"ImagingStudy"}
    dicom_id = next(r["record_id"] for r in added if r["content_type"] == "application/dicom")
    back = tmp_path / "back.dcm"
    stack.ok("patient", "get", dicom_id, "-o", str(back), "--key", new_patient)
    cleaned = pydicom.dcmread(back)
    assert str(cleaned.get("PatientName", "")) != str(original.PatientName)
    assert cleaned.SOPInstanceUID != original.SOPInstanceUID
    assert cleaned.pixel_array.shape == original.pixel_array.shape


def test_add_new_version_over_the_api(stack: Stack, new_patient: str, tmp_path: Path) -> None:
    """``patient add --replaces``: the new version is served, the old one no longer is, and
    neither a superseded record nor a stranger's can be replaced."""
    first = tmp_path / "hr.json"
    first.write_text(json.dumps(HEART_RATE))
    old = stack.add_resource(new_patient, HEART_RATE)  # set-up, in process
    stack.grant(new_patient, "dr-sato", "Observation:vital-signs")
    corrected = tmp_path / "hr-corrected.json"
    corrected.write_text(json.dumps({**HEART_RATE, "id": "hr2",
                                     "valueQuantity": {**HEART_RATE["valueQuantity"],
                                                       "value": 74}}))
    new = stack.ok("patient", "add", str(corrected), "--replaces", old["record_id"][:14],
                   "--key", new_patient, "--json").json()
    assert len(new) == 1 and new[0]["record_id"] != old["record_id"]
    assert new[0]["label"] == "Observation:vital-signs"

    me = stack.address(new_patient)
    # what dr-sato is served, in process (`provider records` / `read`: test_cli_provider)
    with stack.provider("dr-sato") as sato:
        readable = sato.records(patient=me)
        assert [hex32(r.record_id) for r in readable] == [new[0]["record_id"]]
        read = sato.read(patient=me, record_id=bytes.fromhex(new[0]["record_id"][2:]))
        assert json.loads(read)["id"] == "hr2"
        with pytest.raises(AccessDenied) as refused:
            sato.read(patient=me, record_id=bytes.fromhex(old["record_id"][2:]))
    assert "supersede" in str(refused.value).lower()

    again = stack.kizuna("patient", "add", str(corrected), "--replaces", old["record_id"],
                         "--key", new_patient)
    assert again.code == 5, again.err  # conflict: superseded already
    assert "superseded already" in again.error_line
    with stack.patient("aiko") as aiko:
        aiko_record = hex32(aiko.records()[0].record_id)
    theirs = stack.kizuna("patient", "add", str(corrected), "--replaces", aiko_record,
                          "--key", new_patient)
    assert theirs.code == 3, theirs.err  # not among the patient's own records
    two_files = stack.kizuna("patient", "add", str(first), str(corrected), "--replaces",
                             old["record_id"], "--key", new_patient)
    assert two_files.code == 6 and "replaces" in two_files.error_line


def test_guardian_acts_for_ward_over_the_api(stack: Stack, new_patient: str) -> None:
    """``--for``: a live guardian lists the ward's records and sets the ward's emergency
    policy over the API; someone who is not (or no longer) their guardian is refused."""
    record = stack.add_resource(new_patient, HEART_RATE)  # set-up, in process
    ward = stack.address(new_patient)
    with stack.patient(new_patient) as client:  # as `patient guardian add kenji --days 30`
        client.appoint_guardian(stack.address("kenji"), until=client.now() + 30 * 86_400)

    listed = stack.ok("patient", "records", "--for", new_patient, "--key", "kenji",
                      "--json").json()
    assert [(r["record_id"], r["label"]) for r in listed] == [(record["record_id"], None)]
    policy = stack.ok("patient", "emergency-policy", "--allow", "--max-hours", "2", "--for",
                      new_patient, "--key", "kenji", "--json").json()
    assert policy["allowed"] is True
    # the ward's policy, set by the guardian, allows dr-sato's break-glass (in process, as
    # `provider break-glass` opens it: test_cli_provider)
    with stack.provider("dr-sato") as sato:
        assert sato.break_glass(ward, duration=3600, reason_code=1).tx_hash

    stranger = stack.kizuna("patient", "records", "--for", new_patient, "--key", "aiko")
    assert stranger.code == 4 and "not a live guardian" in stranger.error_line
    # in process, as `patient guardian remove kenji` does (that command: the test above)
    with stack.patient(new_patient) as client:
        client.chain.ledger.remove_guardian(to_checksum_address(stack.address("kenji")),
                                            signer=client.signer)
    removed = stack.kizuna("patient", "records", "--for", ward, "--key", "kenji")
    assert removed.code == 4, removed.err
    mixed = stack.kizuna("patient", "records", "--for", ward, "--scope", "Observation",
                         "--key", "kenji")
    assert mixed.code == 6 and "--for" in mixed.error_line


def test_revoke_moves_the_key_epoch_and_rekeys_who_remains(stack: Stack,
                                                           new_patient: str) -> None:
    """docs/keys.md "Epochs": the revoke moves the scope's key epoch and re-issues fragments of
    it to the provider that remains, who reads a record written afterwards; `patient rekey`
    reports where each granted scope stands."""
    me = stack.address(new_patient)
    for doctor in ("dr-sato", "dr-tanaka"):  # set-up, in process
        stack.grant(new_patient, doctor, "Observation:vital-signs")
    revoked = stack.ok("patient", "revoke", "dr-sato", "Observation:vital-signs",
                       "--key", new_patient, "--json").json()
    assert list(revoked["epochs"].values()) == [1]
    # written after the revoke (in process, as `patient add` writes it), under epoch 1
    record = stack.add_resource(new_patient, {**HEART_RATE, "id": "hr-after"})
    with stack.provider("dr-tanaka") as doctor:  # as `provider read` reads, in process
        read = doctor.read(patient=me, record_id=bytes.fromhex(record["record_id"][2:]))
    assert json.loads(read)["id"] == "hr-after"
    rekeyed = stack.ok("patient", "rekey", "--key", new_patient, "--json").json()
    tanaka = stack.address("dr-tanaka")
    assert [(s["scope"], s["epoch"], s["providers"]) for s in rekeyed["scopes"]] \
        == [("Observation:vital-signs", 1, [tanaka])]
