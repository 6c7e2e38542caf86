"""Generates the page's de-identification data from kizuna/research/deidentify.py (issue 16):

* ``web/src/research/rules.generated.json``: the module's tables and constants (the keys
  dropped, the types never shared, the date patterns, the HKDF salt and info, the age group),
  which web/src/research/deidentify.ts reads instead of keeping its own copy: Python's module
  stays the one home of the rules;
* ``tests/vectors/deidentify.json``: study keys (offset and pseudonym key from a secret key
  and a study id), pseudonyms, DICOM UIDs, and resources with their de-identified copies as
  canonical JSON, covering the rules' corners (dates of every precision, time zones, leap days,
  dates off the calendar, Unicode digits, a trailing newline; references of every form; ages;
  attachments; decimals as Python writes them). web/test/deidentify.test.ts (Node) and
  tests/web/test_web_deidentify.py (Chromium) check the page's code against it.

``python tests/research/deidentify_vectors.py`` rewrites both; tests/research/
test_research_deidentify_vectors.py fails while either committed file differs from what this
produces (a change of the Python rules must be carried to the page by re-running this).
The secret keys are test-only.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.errors import InputError
from kizuna.research import deidentify as d
from kizuna.storage.fhir.canonical import canonical_json

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "web" / "src" / "research" / "rules.generated.json"
VECTORS = ROOT / "tests" / "vectors" / "deidentify.json"
AS_OF = "2026-12-07"


def rules() -> dict[str, Any]:
    """The tables of deidentify.py, as data (Python regex syntax: the page translates it)."""
    return {
        "generated_by": "tests/research/deidentify_vectors.py from kizuna/research/deidentify.py",
        "hkdf_salt": d.HKDF_SALT.decode(),
        "info_study_key": d.INFO_STUDY_KEY.decode(),
        "max_shift_days": d.MAX_SHIFT_DAYS,
        "age_group_url": d.AGE_GROUP_URL,
        "deidentified_tag": d.DEIDENTIFIED_TAG,
        "not_shared": sorted(d.NOT_SHARED),
        "drop": sorted(d._DROP),
        "date": {"pattern": d._DATE.pattern, "ignore_case": bool(d._DATE.flags & 2)},
        "date_key": {"pattern": d._DATE_KEY.pattern.removeprefix("(?i)"),
                     "ignore_case": bool(d._DATE_KEY.flags & 2)},
        "ucum": d._UCUM,
        "dicom_uid_prefix": "dicom-uid:",
    }


def _key(secret: int, study: int) -> tuple[bytes, bytes, d.StudyKey]:
    secret_bytes = bytes([secret]) * 32
    study_id = bytes([study]) * 32
    return secret_bytes, study_id, d.study_key(UmbralSecretKey.from_secret_bytes(secret_bytes),
                                               study_id)


def _keys() -> list[tuple[bytes, bytes, d.StudyKey]]:
    """Study keys with a negative and a positive offset among them (both directions)."""
    out = [_key(7, 1), _key(8, 1), _key(7, 2), _key(9, 4)]
    study = 3
    while len({k.offset_days > 0 for _, _, k in out}) < 2:
        out.append(_key(7, study))
        study += 1
    return out


SUBJECT = {"reference": "Patient/p-1", "display": "Ama O'Brien"}

CASES: list[tuple[str, int, dict[str, str], str]] = [
    ("patient", 0, {}, json.dumps({
        "resourceType": "Patient", "id": "p-1",
        "meta": {"versionId": "3", "lastUpdated": "2024-01-02T03:04:05.678Z"},
        "text": {"status": "generated", "div": "<div>Ama O'Brien</div>"},
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
             "valueString": "Lé Fèvre"},
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
             "valueAddress": {"city": "Boston", "state": "MA"}},
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
             "extension": [{"url": "ombCategory", "valueCoding": {
                 "system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3",
                 "display": "White"}}, {"url": "text", "valueString": "White"}]},
            {"url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
             "valueDecimal": 1.50},
        ],
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-12-3456"}],
        "name": [{"family": "O'Brien", "given": ["Ama"]}],
        "telecom": [{"system": "phone", "value": "555-0100"}],
        "gender": "female", "birthDate": "1950-02-03",
        "address": [{"line": ["1 Main St"], "city": "Boston", "postalCode": "02101"}],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                "v3-MaritalStatus", "code": "M",
                                      "display": "Married"}], "text": "Married"},
        "multipleBirthBoolean": False,
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                    "code": "en-US", "display": "English"}],
                                        "text": "English"}}],
    })),
    ("patient aged 89 (90 tomorrow), with an extension of its own", 1, {}, json.dumps({
        "resourceType": "Patient", "id": "p-old", "birthDate": "1936-12-08",
        "extension": [{"url": "http://example.org/kept", "valueCode": "x"}],
    })),
    ("patient who turns 90 today", 1, {}, json.dumps({
        "resourceType": "Patient", "id": "p-90", "birthDate": "1936-12-07",
    })),
    ("calendar edges, moved earlier", 0, {}, json.dumps({
        "resourceType": "Procedure", "id": "pr-1", "status": "completed",
        "performedPeriod": {"start": "0001-01-02", "end": "2024-03-01T00:00:00Z"},
        "recorded": "2000-02-29", "issued": "1900-03-01",
    })),
    ("patient who died at 95: the age is at death", 0, {}, json.dumps({
        "resourceType": "Patient", "id": "p-dead", "birthDate": "1900-06-15",
        "deceasedDateTime": "1995-06-15T08:00:00Z",
    })),
    ("patient who died at 89", 0, {}, json.dumps({
        "resourceType": "Patient", "id": "p-dead2", "birthDate": "1900-06-15",
        "deceasedDateTime": "1990-06-14",
    })),
    ("patient born on a date of year and month", 2, {}, json.dumps({
        "resourceType": "Patient", "id": "p-ym", "birthDate": "1930-07",
    })),
    ("observation with references of every form", 0,
     {"5f1a": "Encounter", "urn:uuid:7c2b": "Condition"}, json.dumps({
         "resourceType": "Observation", "id": "o-1", "status": "final",
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                             "observation-category", "code": "vital-signs",
                                   "display": "Vital signs"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                              "display": "Heart rate"}], "text": "Heart rate"},
         "subject": SUBJECT,
         "encounter": {"reference": "urn:uuid:5f1a"},
         "focus": [{"reference": "urn:uuid:7c2b"}, {"reference": "urn:uuid:unknown"},
                   {"reference": "#contained-1"},
                   {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|99"},
                   {"reference": "https://fhir.example.org/Patient/p-1"},
                   {"reference": "Patient/p-1/_history/2"}, {"reference": "Patient/"},
                   {"reference": "no-slash"}, {"display": "only a display"}, {}],
         "performer": [{"reference": "Practitioner/pr-9", "display": "Dr. Who"}],
         "effectiveDateTime": "2024-02-29T10:11:12+09:00",
         "issued": "2024-03-01T00:00:00.123Z",
         "valueQuantity": {"value": 72.0, "unit": "/min", "system": "http://unitsofmeasure.org",
                           "code": "/min"},
         "note": [{"text": "Patient Ama said hello"}],
         "interpretation": [{"text": "high"}],
     })),
    ("dates of every precision and key", 3, {}, json.dumps({
        "resourceType": "Condition", "id": "c-1",
        "onsetDateTime": "2024-01-01", "abatementDateTime": "2024-05",
        "recordedDate": "2024", "onsetString": "2024",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "2024",
                             "display": "A code that is a year"}]},
        "evidence": [{"code": [{"coding": [{"system": "s", "code": "2024-13-01"}]}]}],
        "onsetPeriod": {"start": "0001-01-02", "end": "9999-12-30T23:59"},
        "stage": [{"assessment": [{"reference": "Observation/2024"}]}],
        "_recordedDate": {"extension": [{"url": "http://x", "valueDateTime": "2023-02-28"}]},
        "period": {"START": "2020-12-31T23:59:59", "eNd": "2021-01-01T00:00:00.5-03:30"},
        "dates": ["2024-06-30", "2024", "not a date"],
        "date": ["2024", "1999-12-31"],
        "occurredDateTime": "2024-01-01\n",
        "sentDate": "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0661\u0665",
        "receivedDate": "\uff12\uff10\uff12\uff14-\uff10\uff12",
        "timestamp": "\U0001d7ce\U0001d7d0\U0001d7d1\U0001d7d2",
        "created": "2024-1-01", "lastUpdated": "2024-02-30",
        "authoredOn": "2023-02-29T12:00:00Z", "instant": "2000-01-01T00:00:00.000000001Z",
        "severity": {"coding": [{"system": "s", "code": "1999-01-01", "display": "1999-01-01"}]},
    })),
    ("ages and decimals", 0, {}, json.dumps({
        "resourceType": "Observation", "id": "o-age", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0"}]},
        "valueQuantity": {"value": 95.5, "unit": "a", "system": "http://unitsofmeasure.org",
                          "code": "a"},
        "component": [
            {"valueQuantity": {"value": 90, "system": "http://unitsofmeasure.org", "code": "a"}},
            {"valueQuantity": {"value": 89.99, "system": "http://unitsofmeasure.org",
                               "code": "a"}},
            {"valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org",
                               "code": "mo"}},
            {"valueQuantity": {"value": 1e-7, "code": "g"}},
            {"valueQuantity": {"value": 1e16, "code": "g"}},
            {"valueQuantity": {"value": 123456789012345678901234567890}},
            {"valueQuantity": {"value": -0.0}},
            {"valueQuantity": {"value": 0.1}},
            {"valueQuantity": {"value": 1.5e-5}},
            {"valueQuantity": {"value": 1234567890123456.7}},
            {"valueInteger": 0}, {"valueBoolean": True}, {"valueRange": {"low": None}},
        ],
    }).replace('"value": 95.5', '"value": 95.50').replace('"value": 0.1}', '"value": 1E-1}')),
    ("attachments, binaries and free text", 0, {}, json.dumps({
        "resourceType": "DocumentReference", "id": "d-1", "status": "current",
        "description": "Letter about Ama", "date": "2024-04-04T04:04:04Z",
        "content": [{"attachment": {"contentType": "text/plain", "data": "QW1h",
                                    "title": "letter", "creation": "2024-04-04"}},
                    {"attachment": {"contentType": "application/pdf",
                                    "url": "https://files.example.org/ama.pdf"}},
                    {"attachment": {"contentType": "image/png", "size": 10}}],
        "context": {"related": [{"reference": "DiagnosticReport/x", "display": "Ama's report"}]},
        "securityLabel": [{"coding": [{"system": "s", "code": "N"}]}],
    })),
    ("a Binary is an attachment as a whole", 0, {}, json.dumps({
        "resourceType": "Binary", "id": "b-1", "contentType": "text/plain", "data": "QW1h",
    })),
    ("imaging study UIDs", 0, {}, json.dumps({
        "resourceType": "ImagingStudy", "id": "is-1", "status": "available",
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
        "subject": {"reference": "Patient/p-1"}, "started": "2024-01-01T09:00:00Z",
        "series": [{"uid": "1.2.840.113619.2.1", "number": 1,
                    "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                                 "code": "CT"},
                    "instance": [{"uid": "1.2.840.113619.2.1.1",
                                  "sopClass": {"system": "urn:ietf:rfc:3986",
                                               "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                                  "number": 1, "title": "slice 1"}]}],
        "note": [{"text": "study of Ama"}],
    })),
    ("lists keep their nulls out, empty things go", 0, {}, json.dumps({
        "resourceType": "Encounter", "id": "e-1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [None, {}, {"text": "only text"}, {"coding": []}, [], {"coding": [
            {"system": "http://snomed.info/sct", "code": "185345009", "display": "Encounter"}]}],
        "participant": [{"individual": {"display": "Dr. Who"}}],
        "serviceProvider": {"reference": "Organization/o-1", "display": "Boston Clinic"},
        "length": {"value": 30, "unit": "min"}, "priority": None,
        "extension": [{"url": "http://x", "valueString": "gone"},
                      {"url": "http://y", "valueUri": "http://z"},
                      {"url": "http://w", "extension": [{"url": "a", "valueString": "b"}]},
                      {"url": "http://v", "valueCode": "kept", "id": "ext-1"}],
    })),
    ("people and places are never shared", 0, {}, json.dumps({
        "resourceType": "Practitioner", "id": "pr-9", "name": [{"family": "Who"}],
    })),
    ("an organization neither", 0, {}, json.dumps({
        "resourceType": "Organization", "id": "o-1", "name": "Boston Clinic",
    })),
    ("a resource without an id", 1, {}, json.dumps({
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "patient": {"reference": "urn:uuid:p-1"}, "occurrenceDateTime": "2021-10-01T10:00:00",
        "id2": 5,
    })),
]

ERRORS: list[tuple[str, str]] = [
    ("no resourceType", json.dumps({"id": "x", "status": "final"})),
    ("resourceType not a string", json.dumps({"resourceType": 5})),
]

IDS = ["p-1", "", "Patient/p-1", "患者-1", "\U0001f600", "a" * 200]
UIDS = ["1.2.840.113619.2.1", "2.25.1", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20"]


def build() -> dict[str, Any]:
    keys = _keys()
    as_of = date.fromisoformat(AS_OF)
    out_keys = [{"secret_key": "0x" + secret.hex(), "study_id": "0x" + study.hex(),
                 "offset_days": key.offset_days,
                 "pseudonym_key": "0x" + key.pseudonym_key.hex(),
                 "pseudonyms": {i: d.Deidentifier(key).pseudonym(i) for i in IDS},
                 "uids": {u: d.StudyUidMap(key)(u) for u in UIDS}}
                for secret, study, key in keys]
    cases = []
    for name, index, types, text in CASES:
        deid = d.Deidentifier(keys[index][2], types=types, as_of=as_of)
        copy = deid.resource(json.loads(text))
        cases.append({"name": name, "key": index, "types": types, "input": text,
                      "output": None if copy is None else canonical_json(copy).decode()})
    errors = []
    for name, text in ERRORS:
        try:
            d.Deidentifier(keys[0][2], as_of=as_of).resource(json.loads(text))
        except InputError as exc:
            errors.append({"name": name, "input": text, "field": exc.field})
        else:  # pragma: no cover - the generator's own check
            raise AssertionError(f"{name}: Python accepted it")
    return {
        "description": (
            "Kizuna's de-identification for research studies (kizuna/research/deidentify.py). "
            "Test-only keys. Generated by tests/research/deidentify_vectors.py; checked by "
            "tests/research/test_research_deidentify_vectors.py, web/test/deidentify.test.ts "
            "and tests/web/test_web_deidentify.py. Inputs are JSON text (decimals as written); "
            "outputs are canonical JSON (kizuna/storage/fhir/canonical.py) or null (not shared)."
        ),
        "as_of": AS_OF,
        "keys": out_keys,
        "cases": cases,
        "errors": errors,
    }


def render_vectors() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def render_rules() -> str:
    return json.dumps(rules(), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    RULES.write_text(render_rules(), "utf-8")
    VECTORS.write_text(render_vectors(), "utf-8")
    print(f"wrote {RULES.relative_to(ROOT)} and {VECTORS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
