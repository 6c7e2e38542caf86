"""``kizuna provider ...`` through the real entry point against the running stack."""

from __future__ import annotations

import json
from pathlib import Path

from roles_stack import Stack

from kizuna.cli.participant import hex32


def test_patients_and_records(stack: Stack) -> None:
    aiko = stack.address("aiko")
    kenji = stack.address("kenji")
    patients = stack.ok("provider", "patients", "--key", "dr-tanaka", "--json").json()
    assert {aiko, kenji} <= {p["patient"] for p in patients}
    assert {p["name"] for p in patients if p["patient"] in (aiko, kenji)} == {"aiko", "kenji"}

    mine = stack.ok("provider", "records", "--patient", "aiko", "--key", "dr-tanaka",
                    "--json").json()
    assert mine and {r["patient"] for r in mine} == {aiko}
    everything = stack.ok("provider", "records", "--key", "dr-tanaka", "--json").json()
    assert len(everything) > len(mine)
    assert stack.ok("provider", "records", "--type", "pdf", "--patient", "aiko",
                    "--key", "dr-tanaka", "--json").json() == []
    assert stack.ok("provider", "records", "--since", "2999-01-01", "--key", "dr-tanaka",
                    "--json").json() == []
    table = stack.ok("provider", "records", "--patient", "aiko", "--key", "dr-tanaka").out
    assert "readable record(s)" in table


def test_read_to_file_leaves_a_receipt(stack: Stack, tmp_path: Path) -> None:
    # the record, and aiko's reads before and after, in process (what `provider records` and
    # `patient reads` show: those commands are tested in their own tests)
    aiko = stack.address("aiko")
    with stack.provider("dr-tanaka") as tanaka:
        record_id = hex32(tanaka.records(patient=aiko)[0].record_id)
    with stack.patient("aiko") as patient:
        before = len(patient.reads())
        out = tmp_path / "record.json"
        stack.ok("provider", "read", "aiko", record_id[:16], "-o", str(out),
                 "--key", "dr-tanaka")
        resource = json.loads(out.read_bytes())
        assert resource["resourceType"] in ("Observation", "Condition", "MedicationRequest")
        assert resource["id"] and resource["subject"]["reference"]
        reads = patient.reads()
    assert len(reads) == before + 1
    assert record_id in {hex32(r.record_id) for r in reads}  # a receipt, under aiko's reads


def test_send_report_opened_by_patient(stack: Stack, tmp_path: Path) -> None:
    report = {"resourceType": "Communication", "status": "completed",
              "payload": [{"contentString": "Blood pressure fine; recheck in a year."}]}
    source = tmp_path / "report.json"
    source.write_text(json.dumps(report))
    sent = stack.ok("provider", "send", "kenji", "report", str(source), "--key", "dr-tanaka",
                    "--json").json()
    assert sent["kind"] == "report"
    # kenji's side in process (what `patient inbox` / `patient open` show: test_cli_patient)
    with stack.patient("kenji") as kenji:
        inbox = {hex32(i.ref): i for i in kenji.inbox()}
        assert sent["ref"] in inbox
        assert json.loads(kenji.open_message(inbox[sent["ref"]].ref)) == report

    booking = tmp_path / "booking.json"
    booking.write_text(json.dumps({"resourceType": "Appointment", "status": "booked",
                                   "participant": [{"status": "accepted"}]}))
    sent = stack.ok("provider", "send", "kenji", "booking", str(booking), "--key", "dr-tanaka",
                    "--json").json()
    assert sent["kind"] == "booking-confirmation"


def test_break_glass_allowed_by_policy(stack: Stack, new_patient: str) -> None:
    with stack.patient(new_patient) as patient:  # set-up, in process: policy allows 6 hours
        patient.set_emergency_policy(allowed=True, max_duration=6 * 3600)
    too_long = stack.kizuna("provider", "break-glass", new_patient, "--reason", "1",
                            "--hours", "12", "--key", "dr-sato")
    assert too_long.code != 0
    assert len(too_long.err.strip().splitlines()) == 1
    opened = stack.ok("provider", "break-glass", new_patient, "--reason", "1", "--hours", "2",
                      "--key", "dr-sato", "--json").json()
    assert opened["hours"] == 2
    log = stack.ok("audit", "log", "--patient", new_patient, "--local", "--json").json()
    emergency = [e for e in log if e["kind"] == "emergency-opened"]
    assert len(emergency) == 1 and "flagged-for-review" in emergency[0]["flags"]


def test_inbox_lists_requests(stack: Stack) -> None:
    aiko = stack.address("aiko")
    stack.ok("provider", "request", "aiko", "--note", "follow-up", "--key", "dr-sato")
    inbox = stack.ok("provider", "inbox", "--key", "dr-sato", "--json").json()
    assert any(i["patient"] == aiko and i["kind"] == "request-open" for i in inbox), inbox


def test_emergency_kit_then_break_glass_read(stack: Stack, new_patient: str) -> None:
    """Over the API: the kit lets a break-glass read be served; the read is still decided on
    chain state (no emergency access: refused)."""
    record = stack.add_resource(new_patient, {  # set-up, in process
        "resourceType": "AllergyIntolerance", "id": "a1",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005",
                             "display": "Allergy to penicillin"}]}})
    assert record["label"] == "AllergyIntolerance"
    kit = stack.ok("patient", "emergency-policy", "--allow", "--max-hours", "4", "--kit",
                   "AllergyIntolerance", "--key", new_patient, "--json").json()
    assert kit["kit_fragments"] >= 2  # one set per active provider
    refused = stack.kizuna("provider", "read", new_patient, record["record_id"],
                           "--key", "dr-sato")
    assert refused.code == 4
    stack.ok("provider", "break-glass", new_patient, "--reason", "2", "--hours", "1",
             "--key", "dr-sato")
    read = stack.ok("provider", "read", new_patient, record["record_id"], "--key", "dr-sato")
    assert json.loads(read.out)["id"] == "a1"


def test_emergency_kit_local_and_api_agree(stack: Stack, new_patient: str) -> None:
    """--local leaves the same kit as the API (one set per active provider, same count)."""
    over_api = stack.ok("patient", "emergency-policy", "--allow", "--kit", "Immunization",
                        "--key", new_patient, "--json").json()
    local = stack.ok("patient", "emergency-policy", "--allow", "--kit", "Immunization",
                     "--local", "--key", new_patient, "--json").json()
    assert over_api["kit_fragments"] == local["kit_fragments"] >= 2
