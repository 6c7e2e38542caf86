"""The page's IPS builder (web/src/sharing/ips.ts, run by Node) against the Python builder
(kizuna/sharing/ips.py) on the same resources: whole Synthea lives (three seeds and ages, one
over 90) and a hand-made record of the rules' corners — ids that are not UUIDs (uuid5
fullUrls), a UUID in upper case, numbers Python prints its own way (1e-05, 72.0,
1e+16), text to escape (``<>&"'``), astral characters in sort keys, a medication named by
reference, references out of the summary and to contained resources, statuses left out. The
two documents must be equal, section by section and entry by entry (test_web_ips._compare);
a record with no Patient is refused by both. The browser test (test_web_ips.py) builds the
summary in Chromium from records decrypted there; this one covers more inputs, fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from synthea_data import synthea_patient
from test_web_ips import _compare

from kizuna.errors import InputError
from kizuna.sharing.ips import build_ips

ROOT = Path(__file__).resolve().parents[2]
IPS_TS = ROOT / "web" / "src" / "sharing" / "ips.ts"
NOW = 1_796_615_400
DOC = "0b3f0c1e-1111-4222-8333-444455556666"

pytestmark = pytest.mark.node

RUNNER = """
import { buildIps } from %s;
let text = "";
for await (const chunk of process.stdin) text += chunk;
const input = JSON.parse(text);
try {
  const ips = buildIps(input.resources, { now: input.now, documentId: input.id });
  process.stdout.write(JSON.stringify({ ips }));
} catch (error) {
  const issues = error.issues ?? null;
  process.stdout.write(JSON.stringify({ error: String(error.message), issues }));
}
"""


def page_ips(resources: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    out = subprocess.run(
        [node, "--input-type=module", "-e", RUNNER % json.dumps(IPS_TS.as_uri())],
        input=json.dumps({"resources": resources, "now": NOW * 1000, "id": DOC}),
        capture_output=True, text=True, cwd=ROOT / "web", timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def python_ips(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return build_ips(resources, now=datetime.fromtimestamp(NOW, UTC), document_id=DOC)


@pytest.mark.parametrize(("seed", "ages"), [(7, "50-60"), (23, "70-85"), (41, "90-99")])
def test_a_synthea_life(tmp_path: Path, synthea_patients: Callable[..., Path], seed: int,
                        ages: str) -> None:
    bundle = synthea_patient(synthea_patients, seed=seed, ages=ages)
    resources = [e["resource"] for e in bundle["entry"]]
    answer = page_ips(resources)
    assert "ips" in answer, answer
    _compare(answer["ips"], python_ips(resources))


CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def _obs(rid: str, code: str, text: str, category: str, value: dict[str, Any] | None,
         when: str, status: str = "final") -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation", "id": rid, "status": status,
        "category": [{"coding": [{"system": CAT, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}]},
        "subject": {"reference": "Patient/p-1"}, "effectiveDateTime": when}
    if value is not None:
        out["valueQuantity"] = value
    return out


def corners() -> list[dict[str, Any]]:
    active = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                          "code": "active"}]}
    resolved = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                      "condition-clinical", "code": "resolved"}]}
    return [
        {"resourceType": "Patient", "id": "p-1", "gender": "female", "birthDate": "1950-02-03",
         "name": [{"given": ["Ama", "Lé"], "family": "O'Brien <Jr> & \"Co\""}]},
        {"resourceType": "Condition", "id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
         "clinicalStatus": active, "code": {"text": "Asthma <mild> & 'wheeze'"},
         "subject": {"reference": "Patient/p-1"}, "onsetDateTime": "2001-05-06",
         "encounter": {"reference": "Encounter/not-here"}},
        {"resourceType": "Condition", "id": "c-2", "clinicalStatus": active,
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                              "display": "\U0001d49c diabetes"}]},
         "subject": {"reference": "urn:uuid:p-1"}, "onsetDateTime": "2010-01-01"},
        {"resourceType": "Condition", "id": "c-3", "clinicalStatus": active,
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "15777000",
                              "display": "\uff21 prediabetes"}]},
         "subject": {"reference": "Patient/p-1"}, "onsetDateTime": "2010-01-01"},
        {"resourceType": "Condition", "id": "c-5", "clinicalStatus": active,
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "15777000",
                              "display": "\uff21 prediabetes (older note)"}]},
         "subject": {"reference": "Patient/p-1"}, "onsetDateTime": "2005-01-01"},
        {"resourceType": "Condition", "id": "c-4", "clinicalStatus": resolved,
         "code": {"text": "Broken arm"}, "subject": {"reference": "Patient/p-1"}},
        {"resourceType": "Medication", "id": "med-1",
         "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                              "code": "197361", "display": "Amlodipine 5 MG"}]}},
        {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
         "intent": "order", "medicationReference": {"reference": "Medication/med-1"},
         "subject": {"reference": "Patient/p-1"}, "authoredOn": "2020-02-02",
         "contained": [{"resourceType": "Medication", "id": "inner"}],
         "note": [{"text": "see #inner"}],
         "reasonReference": [{"reference": "#inner"}]},
        {"resourceType": "MedicationRequest", "id": "mr-2", "status": "stopped",
         "intent": "order", "medicationCodeableConcept": {"text": "Old pill"},
         "subject": {"reference": "Patient/p-1"}},
        {"resourceType": "AllergyIntolerance", "id": "a-1", "criticality": "high",
         "patient": {"reference": "Patient/p-1"}, "code": {"text": "Peanuts"}},
        {"resourceType": "AllergyIntolerance", "id": "a-2", "patient": {"reference":
                                                                        "Patient/p-1"},
         "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                      "allergyintolerance-verification",
                                            "code": "refuted"}]}, "code": {"text": "Dust"}},
        {"resourceType": "Immunization", "id": "i-1", "status": "completed",
         "vaccineCode": {"text": "Influenza"}, "patient": {"reference": "Patient/p-1"},
         "occurrenceDateTime": "2023-10-01"},
        {"resourceType": "Immunization", "id": "i-2", "status": "not-done",
         "vaccineCode": {"text": "Measles"}, "patient": {"reference": "Patient/p-1"},
         "occurrenceDateTime": "2023-10-02"},
        _obs("o-1", "2345-7", "Glucose [Mass/volume]", "laboratory",
             {"value": 0.00001, "unit": "g/L"}, "2024-01-01"),
        _obs("o-0", "2339-0", "Glucose", "laboratory",
             {"value": 4.1, "unit": "mmol/L"}, "2023-01-01"),
        _obs("o-2", "2339-0", "Glucose", "laboratory",
             {"value": 5.25, "unit": "mmol/L"}, "2024-02-01"),
        _obs("o-3", "718-7", "Hemoglobin", "laboratory",
             {"value": 1e16, "code": "g/dL"}, "2024-02-01"),
        _obs("o-4", "8867-4", "Heart rate", "vital-signs",
             {"value": 72.0, "unit": "/min"}, "2024-03-01"),
        _obs("o-5", "8310-5", "Body temperature", "vital-signs", {"value": 36.6},
             "2024-03-01", status="preliminary"),
        _obs("o-6", "29463-7", "Body weight", "vital-signs", None, "2024-03-01"),
    ]


def test_the_rules_corners() -> None:
    resources = corners()
    answer = page_ips(resources)
    assert "ips" in answer, answer
    python = python_ips(resources)
    _compare(answer["ips"], python)
    lines = json.dumps(python)
    assert "1e-05 g/L" in lines and "5.25 mmol/L" in lines
    assert "4.1 mmol/L" not in lines  # the latest of each code only
    assert "72 /min" in lines and "1e+16 g/dL" in lines
    assert "Amlodipine 5 MG (from 2020-02-02)" in lines
    # Same date: the code-point order of the text decides (U+FF21 before U+1D49C in Python;
    # UTF-16 order would put the astral one first).
    problems = python["entry"][0]["resource"]["section"][0]["text"]["div"]
    assert problems.index("\uff21 prediabetes (since") < problems.index("\U0001d49c diabetes")
    assert "older note" not in lines


def test_no_patient_no_summary() -> None:
    resources = [r for r in corners() if r["resourceType"] != "Patient"]
    answer = page_ips(resources)
    assert answer.get("issues") and answer["issues"][0][0] == "Patient", answer
    with pytest.raises(InputError):
        python_ips(resources)
