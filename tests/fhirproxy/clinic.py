"""A small hand-made history for the search-parameter tests: a named Patient (accents, narrative,
a non-summary element), a Medication and a MedicationRequest that references it, one that names
its medication by code, and Observations with distinct dates, displays, texts and one without a
category — what ``_summary``, ``_elements``, ``_sort``, ``_include`` and the modifiers need to
be told apart. Imported through the real import path (one record per resource) like Synthea's
bundles; the ids are fixed UUIDs so expectations can name them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from kizuna.client.patient import ImportedEntry, PatientClient

NS = uuid.UUID("6f1c1d7e-3f57-4a53-9a51-8c1e1b3d2a10")
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def uid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


PATIENT = uid("patient")
MEDICATION = uid("medication")
BY_REFERENCE = uid("mr-reference")
BY_CODE = uid("mr-code")
WEIGHT_OLD, WEIGHT_NEW, HEART, PERIOD, NO_CATEGORY, NO_DATE = (
    uid("obs-weight-2019"), uid("obs-weight-2024"), uid("obs-heart-2022"),
    uid("obs-period-2021"), uid("obs-nocat-2020"), uid("obs-nodate"))

GRANTED = ("Patient", "Medication", "MedicationRequest", "Observation:vital-signs",
           "Observation")
"""Every scope of this history: the provider is granted all of it."""


def _vital(id_: str, code: str, display: str, *, when: dict[str, Any],
           text: str | None = None, category: bool = True) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": LOINC, "code": code, "display": display}]}
    if text is not None:
        concept["text"] = text
    resource: dict[str, Any] = {
        "resourceType": "Observation", "id": id_, "status": "final", "code": concept,
        "subject": {"reference": f"urn:uuid:{PATIENT}"},
        "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org",
                          "code": "kg"},
        "interpretation": [{"text": "normal"}],
        **when,
    }
    if category:
        resource["category"] = [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}]
    return resource


def bundle() -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": PATIENT,
         "meta": {"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z",
                  "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
         "text": {"status": "generated",
                  "div": '<div xmlns="http://www.w3.org/1999/xhtml">José Müller</div>'},
         "name": [{"use": "official", "family": "Müller", "given": ["José", "Ana"]}],
         "gender": "male", "birthDate": "1970-05-04",
         "maritalStatus": {"text": "married"}},
        {"resourceType": "Medication", "id": MEDICATION,
         "code": {"coding": [{"system": RXNORM, "code": "197361",
                              "display": "Amlodipine 5 MG Oral Tablet"}]}},
        {"resourceType": "MedicationRequest", "id": BY_REFERENCE, "status": "active",
         "intent": "order", "medicationReference": {"reference": f"urn:uuid:{MEDICATION}"},
         "subject": {"reference": f"urn:uuid:{PATIENT}"}, "authoredOn": "2023-02-01"},
        {"resourceType": "MedicationRequest", "id": BY_CODE, "status": "active",
         "intent": "order",
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "314076",
                                                   "display": "lisinopril 10 MG"}]},
         "subject": {"reference": f"urn:uuid:{PATIENT}"}, "authoredOn": "2024-03-01"},
        _vital(WEIGHT_OLD, "29463-7", "Body weight",
               when={"effectiveDateTime": "2019-06-01T10:00:00Z"}),
        _vital(WEIGHT_NEW, "29463-7", "Body weight",
               when={"effectiveDateTime": "2024-06-01T10:00:00Z"}, text="Résumé of weight"),
        _vital(HEART, "8867-4", "Heart rate",
               when={"effectiveDateTime": "2022-01-15T08:30:00Z"}),
        _vital(PERIOD, "8310-5", "Body temperature",
               when={"effectivePeriod": {"start": "2021-03-01", "end": "2021-03-05"}}),
        _vital(NO_CATEGORY, "8302-2", "Body height",
               when={"effectiveDateTime": "2020-02-02"}, category=False),
        _vital(NO_DATE, "9279-1", "Respiratory rate", when={}),
    ]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


DATED = [WEIGHT_OLD, NO_CATEGORY, PERIOD, HEART, WEIGHT_NEW]
"""The Observations with a date, in clinical-date order (a Period by its start)."""
OBSERVATIONS = [*DATED, NO_DATE]
VITAL_SIGNS = [o for o in OBSERVATIONS if o != NO_CATEGORY]


@dataclass
class Clinic:
    """The history imported by a patient who granted all of it to a provider, and an httpx
    client of that provider's proxy (``ttl_s=0``: every answer asks the service)."""

    patient: PatientClient
    entries: list[ImportedEntry]
    client: httpx.Client

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def record_of(self, fhir_id: str) -> Any:
        return next(e.record for e in self.entries if str(e.source.fhir_id) == fhir_id)
