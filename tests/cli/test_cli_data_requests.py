"""Data requests through the real ``kizuna`` entry point against the running demo stack: the
README's recipe run as written (kenji asks dr-tanaka for his 2024 labs; dr-tanaka reads the
note, acknowledges, fulfils in part then in whole; kenji sees the state, takes the files in as
his records, exports the FHIR Task), then a decline, a stranger refused, and bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from roles_stack import Stack

from kizuna.cli.participant import hex32

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = "0x5c1e7a"


def recipe(name: str) -> list[list[str]]:
    """The README's fenced block after ``<!-- recipe: name -->``, one argv per line."""
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)\n```",
                      README.read_text(encoding="utf-8"), re.S)
    assert found, f"README.md has no recipe {name!r}"
    lines = [shlex.split(line) for line in found.group(1).splitlines() if line.strip()]
    assert all(line[0] == "kizuna" for line in lines)
    return [line[1:] for line in lines]


def test_the_readme_recipe(stack: Stack, tmp_path: Path) -> None:
    kenji = stack.address("kenji")
    labs = tmp_path / "labs-2024.json"
    labs.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": "a1c-2024", "status": "final",
                      "code": {"text": "HbA1c"}, "effectiveDateTime": "2024-04-11",
                      "valueQuantity": {"value": 5.4, "unit": "%"}}}]}))
    (tmp_path / "discharge.pdf").write_bytes(b"%PDF-1.4\n% discharge summary\n%%EOF\n")
    steps = recipe("data-requests")
    with stack.patient("kenji") as client:  # kenji's records, in process (what `patient
        before = len(client.records())       # records` lists: test_cli_patient runs it)

    asked = stack.ok(*steps[0], "--json").json()
    assert asked["status"] == "open" and asked["provider"] != kenji
    assert asked["types"] == ["Observation"] and asked["period"] == "2024-01-01 to 2024-12-31"
    request = asked["request"]
    outputs = []
    for step in steps[1:]:
        argv = [request[:14] if a == PLACEHOLDER else a for a in step]
        argv = [str(tmp_path / a) if (tmp_path / a).exists() else a for a in argv]
        outputs.append(stack.ok(*argv, "--json").out if "--fhir" not in argv
                       else stack.ok(*argv).out)
    listed, acked, part, final, state, received, tasks = outputs
    mine = next(r for r in json.loads(listed) if r["request"] == request)
    assert mine["note"] == "All my lab results of 2024" and mine["patient"] == kenji
    assert json.loads(acked)["status"] == "acknowledged"
    assert json.loads(part)["status"] == "fulfilled-in-part"
    assert json.loads(final)["status"] == "fulfilled" and json.loads(final)["files"] == 2
    row = next(r for r in json.loads(state) if r["request"] == request)
    assert row["status"] == "fulfilled"
    assert [e["state"] for e in row["events"]] == ["asked", "acknowledged",
                                                   "fulfilled-in-part", "fulfilled"]
    got = json.loads(received)
    assert got["registered"] == 4 and len(got["batches"]) == 1  # 2 resources + 2 Provenance
    with stack.patient("kenji") as client:
        assert len(client.records()) == before + 4
        inbox = client.inbox()
    assert "data-request-fulfilled" in {i.kind for i in inbox if hex32(i.ref) == request}
    task = next(e["resource"] for e in json.loads(tasks)["entry"]
                if e["resource"]["identifier"][0]["value"] == request)
    assert task["status"] == "completed" and task["restriction"]["period"]["end"]
    # the human table says the same
    assert "fulfilled" in stack.ok("patient", "data-requests", "--key", "kenji").out


def test_decline_stranger_and_bad_input(stack: Stack) -> None:
    asked = stack.ok("patient", "ask", "dr-tanaka", "--type", "Immunization",
                     "--deadline-days", "10", "--key", "aiko", "--json").json()
    request = asked["request"]
    # another provider cannot see or answer it
    refused = stack.kizuna("provider", "decline", request[:14], "--reason", "no",
                           "--key", "dr-sato")
    assert refused.code != 0 and "no request" in refused.error_line
    declined = stack.ok("provider", "decline", request[:14], "--reason",
                        "We hold no immunisation records of yours", "--key", "dr-tanaka",
                        "--json").json()
    assert declined["status"] == "declined"
    again = stack.kizuna("provider", "acknowledge", request[:14], "--key", "dr-tanaka")
    assert again.code != 0 and "declined" in again.error_line
    row = next(r for r in stack.ok("patient", "data-requests", "--key", "aiko",
                                   "--json").json() if r["request"] == request)
    assert row["status"] == "declined" and row["reason"].startswith("We hold no")

    bad = stack.kizuna("patient", "ask", "dr-tanaka", "--type", "Labs", "--key", "aiko")
    assert bad.code != 0 and "types[0]" in bad.error_line
    late = stack.kizuna("patient", "ask", "dr-tanaka", "--type", "Observation",
                        "--deadline-days", "0", "--key", "aiko")
    assert late.code != 0 and "deadline_days" in late.error_line
    nothing = stack.kizuna("provider", "fulfil", request[:14], "--key", "dr-tanaka")
    assert nothing.code != 0 and "files" in nothing.error_line
