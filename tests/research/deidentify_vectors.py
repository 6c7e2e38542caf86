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

* ``web/src/research/dicom_rules.generated.json``: the DICOM Basic Profile of
  kizuna/storage/attachments.py as data (each tag's action, the dummy values, the dictionary
  VRs and transfer syntaxes the page's reader needs, what pydicom completes in a file meta
  header, what the profile records), read by web/src/research/dicom.ts;
* ``tests/vectors/deidentify_dicom.json``: small Part 10 files built here with pydicom
  (implicit and explicit VR, defined and undefined lengths, private tags at every depth,
  curves, overlays, encapsulated pixel data, known tags stored as UN, an earlier
  de-identification, a burned-in annotation) and Python's study copy of each, plus files the
  page does not read (big endian, deflated, no Part 10 header). web/test/deidentify_dicom.test.ts
  and tests/web/test_web_deidentify.py check the page's copies against them.

``python tests/research/deidentify_vectors.py`` rewrites all four; tests/research/
test_research_deidentify_vectors.py fails while any committed file differs from what this
produces (a change of the Python rules must be carried to the page by re-running this).
The secret keys are test-only.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.errors import InputError
from kizuna.research import deidentify as d
from kizuna.research.deidentify import StudyUidMap, deidentify_dicom_for_study
from kizuna.storage.attachments import _DUMMY, BASIC_PROFILE, deidentify_dicom
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


# --- DICOM (PS3.15 Annex E Basic Profile, kizuna/storage/attachments.py deidentify_dicom) -------

DICOM_RULES = ROOT / "web" / "src" / "research" / "dicom_rules.generated.json"
DICOM_VECTORS = ROOT / "tests" / "vectors" / "deidentify_dicom.json"


def _hex_tag(tag: int) -> str:
    return f"{tag:08X}"


def _profile_tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return int(tag)


def _profile_run() -> tuple[Dataset, InputError]:
    """The profile's own output for a tiny file and its refusal of burned-in annotation: the
    method text and codes it writes and the refusal's field and reason come from running it."""
    ds = _dataset("1.2.840.10008.1.2.1")
    done = deidentify_dicom(_file(ds), uids=StudyUidMap(_keys()[0][2])).dataset
    ds.BurnedInAnnotation = "YES"
    try:
        deidentify_dicom(_file(ds), uids=StudyUidMap(_keys()[0][2]))
    except InputError as exc:
        return done, exc
    raise AssertionError("the profile accepted burned-in annotation")  # pragma: no cover


def dicom_rules() -> dict[str, Any]:
    """The profile as data: each tag's action, the dummy values, the dictionary VRs the page
    needs (implicit VR files, and UN elements pydicom reads as their known VR: every SQ and PN
    tag of pydicom's dictionary, and the profile's own tags), the transfer syntaxes the page
    reads (pydicom's little-endian, not deflated ones), what pydicom writes into a file meta
    header that lacks it, and what the profile records in the copy."""
    done, refusal = _profile_run()
    profile_tags = {_profile_tag(k) for k, _ in BASIC_PROFILE}
    vrs = {_hex_tag(int(tag)): entry[0] for tag, entry in DicomDictionary.items()
           if entry[0] in ("SQ", "PN") or tag in profile_tags}
    codes = [{"CodeValue": item.CodeValue, "CodingSchemeDesignator": item.CodingSchemeDesignator,
              "CodeMeaning": item.CodeMeaning} for item in done.DeidentificationMethodCodeSequence]
    return {
        "generated_by": "tests/research/deidentify_vectors.py from kizuna/storage/attachments.py "
                        "(BASIC_PROFILE, deidentify_dicom) and pydicom's dictionary",
        "actions": {_hex_tag(_profile_tag(k)): a for k, a in BASIC_PROFILE},
        "dummy": dict(sorted(_DUMMY.items())),
        "dummy_default": _DUMMY.get("LO", "ANONYMOUS"),
        "vr": dict(sorted(vrs.items())),
        "transfer_syntaxes": {str(u): "implicit" if u.is_implicit_VR else "explicit"
                              for u in pydicom.uid.AllTransferSyntaxes
                              if u.is_little_endian and not u.is_deflated},
        "implementation_class_uid": str(pydicom.uid.PYDICOM_IMPLEMENTATION_UID),
        "implementation_version_name": f"PYDICOM {'.'.join(pydicom.__version_info__)}",
        "patient_identity_removed": done.PatientIdentityRemoved,
        "method": done.DeidentificationMethod,
        "method_codes": codes,
        "burned_in": {"field": refusal.field, "reason": refusal.reason},
    }


def _dataset(syntax: str, *, study: str = "1.2.826.0.1.3680043.10.1.1") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = UID(study + ".3.1")
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.10.99")
    meta.ImplementationVersionName = "KIZUNA_TEST"
    meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = study + ".3.1"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101112.5"
    ds.AccessionNumber = "ACC-4471"
    ds.Modality = "CT"
    ds.InstitutionName = "Boston General Hospital"
    ds.InstitutionAddress = "1 Main St, Boston"
    ds.ReferringPhysicianName = "Who^John"
    ds.StationName = "CT-SCANNER-7"
    ds.StudyDescription = "CT chest of Ama O'Brien"
    ds.OperatorsName = ["Tech^Tina", "Tech^Tom"]
    ds.PatientName = "O'Brien^Ama"
    ds.PatientID = "MRN-99912"
    ds.PatientBirthDate = "19500203"
    ds.PatientSex = "F"
    ds.OtherPatientIDs = "999-12-3456"
    ds.PatientAddress = "1 Main St^^Boston^MA^02101"
    ds.PatientTelephoneNumbers = "555-0100"
    ds.SliceThickness = "1.25"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".2"
    ds.StudyID = "S-77"
    ds.SeriesNumber = "2"
    ds.InstanceNumber = "1"
    ds.FrameOfReferenceUID = study + ".4"
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x00\x02\x00\x03\x00\x04\x00"
    return ds


def _file(ds: Dataset, *, original: bool = False) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=not original)
    return out.getvalue()


def _item(**values: Any) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _rich(syntax: str, study: str, *, undefined: bool) -> Dataset:
    """Sequences (defined or undefined lengths), private blocks at every depth, a person's
    name outside the table, curves and overlays, UIDs in items and with several values."""
    ds = _dataset(syntax, study=study)
    ds.add_new(0x00090010, "LO", "ACME 1.1")
    ds.add_new(0x00091001, "LO", "Ama O'Brien, bed 4")
    ds.add_new(0x50000010, "US", 3)  # a curve
    ds.add_new(0x60000010, "US", 2)  # an overlay's rows: kept
    ds.add_new(0x60004000, "LT", "overlay by Dr. Who")  # overlay comments: removed
    ds.add_new(0x60010010, "LO", "odd group: private")
    ds.ReviewerName = "Reviewer^Rita"  # a PN outside the table
    ds.IrradiationEventUID = [study + ".9.1", study + ".9.2"]
    ref = _item(ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                ReferencedSOPInstanceUID=study + ".3.0")
    ref.add_new(0x00291010, "LO", "private in an item")
    ref.add_new(0x00290010, "LO", "ACME")
    inner = _item(CodeValue="T-D3000", CodingSchemeDesignator="SRT", CodeMeaning="Chest")
    ref.PurposeOfReferenceCodeSequence = [inner]
    ds.ReferencedImageSequence = [ref, _item(ReferencedSOPInstanceUID=study + ".3.2",
                                             PatientName="Leak^Item")]
    ds.OtherPatientIDsSequence = [_item(PatientID="OTHER-1")]
    ds.ProcedureCodeSequence = []
    ds.ObservationDateTime = "20240301101112"
    ds.PersonName = "Person^Pat"
    if undefined:
        ds["ReferencedImageSequence"].is_undefined_length = True
        for item in ds.ReferencedImageSequence:
            item.is_undefined_length_sequence_item = True
        ds["ProcedureCodeSequence"].is_undefined_length = True
    return ds


def _dicom_cases() -> list[tuple[str, int, bytes]]:
    study = "1.2.826.0.1.3680043.10.1.1"
    plain = _dataset("1.2.840.10008.1.2.1")
    implicit = _rich("1.2.840.10008.1.2", study, undefined=True)
    explicit = _rich("1.2.840.10008.1.2.1", study, undefined=False)
    explicit.SOPInstanceUID = study + ".3.7"
    explicit.file_meta.MediaStorageSOPInstanceUID = UID(study + ".3.7")
    undefined = _rich("1.2.840.10008.1.2.1", study, undefined=True)
    jpeg = _dataset("1.2.840.10008.1.2.4.50", study="1.2.826.0.1.3680043.10.1.2")
    jpeg.PixelData = encapsulate([b"\xff\xd8\xff\xe0fake-frame\xff\xd9"])
    jpeg["PixelData"].VR = "OB"
    jpeg["PixelData"].is_undefined_length = True
    again = _dataset("1.2.840.10008.1.2.1")
    again.PatientIdentityRemoved = "NO"
    again.DeidentificationMethod = "an earlier tool"
    again.DeidentificationMethodCodeSequence = [_item(CodeValue="1", CodingSchemeDesignator="X",
                                                      CodeMeaning="earlier")]
    again.BurnedInAnnotation = "NO"
    bare = _dataset("1.2.840.10008.1.2.1")
    del bare.file_meta.ImplementationVersionName
    del bare.file_meta.ImplementationClassUID
    del bare.file_meta.MediaStorageSOPClassUID
    bare.Date = ""  # D on an empty value: the dummy all the same
    bare.Time = "1200"
    same = _file(_dataset("1.2.840.10008.1.2.1"))
    un = _dataset("1.2.840.10008.1.2.1")
    un.ReviewerName = "Reviewer^Una"
    burned = _dataset("1.2.840.10008.1.2.1")
    burned.BurnedInAnnotation = "YES"
    return [
        ("the basic file: patient, institution, dates, UIDs, file meta", 0, _file(plain)),
        ("implicit VR: undefined-length sequences and items, private tags in items", 0,
         _file(implicit)),
        ("explicit VR: defined-length sequences, curves, overlays, several UIDs", 0,
         _file(explicit)),
        ("explicit VR: undefined lengths", 1, _file(undefined)),
        ("JPEG baseline: encapsulated pixel data kept as it is", 2, _file(jpeg)),
        ("an earlier de-identification replaced", 3, _file(again)),
        ("a file meta without the implementation's name and class, D on empty values", 0,
         _file(bare, original=True)),
        ("known tags stored as UN", 0,
         _as_un(_file(un), (0x300E, 0x0008, "PN"), (0x0010, 0x0010, "PN"))),
        ("burned-in annotation refused", 0, _file(burned)),
        ("the same file for another study", 1, same),
    ]


def _values_only_cases() -> list[tuple[str, int, bytes]]:
    """Files pydicom normalises as it reads them (and so writes back otherwise) where the page
    keeps the original bytes: the copies hold the same elements and values, not the same bytes."""
    spaces = _dataset("1.2.840.10008.1.2.1")
    spaces.ManufacturerModelName = "SCANNER  "  # trailing spaces beyond the padding
    return [("text with trailing spaces beyond the padding", 0, _file(spaces)),
            ("a known tag outside the profile stored as UN", 0,
             _as_un(_file(_dataset("1.2.840.10008.1.2.1")), (0x0018, 0x0050, "DS")))]


def _as_un(content: bytes, *elements: tuple[int, int, str]) -> bytes:
    """An explicit VR file with these elements' VR rewritten to UN (pydicom writes a known
    tag's own VR even when told UN, so the bytes are patched here)."""
    for group, element, vr in elements:
        head = group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr.encode()
        at = content.index(head, 132)
        length = int.from_bytes(content[at + 6:at + 8], "little")
        content = (content[:at + 4] + b"UN\0\0" + length.to_bytes(4, "little")
                   + content[at + 8:])
    return content


def _page_refusals() -> list[tuple[str, bytes]]:
    """Files Python's profile takes but the page does not read (it says so)."""
    big = _dataset("1.2.840.10008.1.2.2")
    deflated = _dataset("1.2.840.10008.1.2.1.99")
    return [("explicit VR big endian", _file(big)), ("deflated", _file(deflated)),
            ("not a Part 10 file", _file(_dataset("1.2.840.10008.1.2.1"))[132:])]


def build_dicom() -> dict[str, Any]:
    keys = _keys()
    cases = []
    values_only = _values_only_cases()
    for name, index, content in _dicom_cases() + values_only:
        case: dict[str, Any] = {"name": name, "key": index,
                                "input": base64.b64encode(content).decode()}
        if (name, index, content) in values_only:
            case["same_bytes"] = False
        try:
            out = deidentify_dicom_for_study(content, keys[index][2])
        except InputError as exc:
            case["error"] = {"field": exc.field, "reason": exc.reason}
        else:
            case["output"] = base64.b64encode(out).decode()
        cases.append(case)
    refusals = [{"name": name, "input": base64.b64encode(content).decode()}
                for name, content in _page_refusals()]
    return {
        "description": (
            "DICOM files through Kizuna's PS3.15 Annex E Basic Profile for a study "
            "(kizuna/research/deidentify.py deidentify_dicom_for_study), base64. Keys: "
            "tests/vectors/deidentify.json's (the same index). Generated by "
            "tests/research/deidentify_vectors.py; checked by web/test/deidentify_dicom.test.ts "
            "and tests/web/test_web_deidentify_dicom.py. same_bytes false: the page's copy holds "
            "the same elements and values once read by pydicom, not the same bytes. "
            "page_refusals: files the page does not read."
        ),
        "cases": cases,
        "page_refusals": refusals,
    }


def render_vectors() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def render_rules() -> str:
    return json.dumps(rules(), indent=1, ensure_ascii=False) + "\n"


def render_dicom_rules() -> str:
    return json.dumps(dicom_rules(), indent=1, ensure_ascii=False) + "\n"


def render_dicom_vectors() -> str:
    return json.dumps(build_dicom(), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    RULES.write_text(render_rules(), "utf-8")
    VECTORS.write_text(render_vectors(), "utf-8")
    DICOM_RULES.write_text(render_dicom_rules(), "utf-8")
    DICOM_VECTORS.write_text(render_dicom_vectors(), "utf-8")
    for path in (RULES, VECTORS, DICOM_RULES, DICOM_VECTORS):
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
