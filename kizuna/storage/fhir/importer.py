"""Import of a patient's FHIR Bundle into Kizuna records: one record per resource.

Why per resource, not per encounter: a grant names a *scope* (``Observation:laboratory``,
``Condition``, ...) and the scope belongs to a record. One encounter of a Synthea patient holds
vital signs, lab results, conditions, medications and a claim — scopes a patient shares with
different people. A record per encounter would need one scope for all of them (oversharing) or a
copy per scope (duplicates). Per resource, each record has exactly one scope label and one date
for the timeline, and a provider granted ``Observation:vital-signs`` decrypts nothing else.
The price is more records (a Synthea life is thousands), which the ledger registers in batches.
Resources outside any encounter (Patient, Practitioner, Organization, Coverage, ...) need no
special case.

References between records survive: each record keeps its resource exactly as it was (so its
``urn:uuid:`` / ``Type/id`` references are unchanged), its ``fullUrl`` and its FHIR ``id``, and
the import checks first that every reference resolves inside the Bundle.

Everything is validated before the first record is produced, and every problem is reported in one
:class:`~kizuna.errors.FhirValidationError`. Records are then produced lazily (the canonical
bytes of one resource at a time), so a caller can encrypt and store them one by one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kizuna.errors import FhirValidationError
from kizuna.storage.fhir.canonical import CONTENT_TYPE, canonical_json
from kizuna.storage.fhir.dates import to_timestamp
from kizuna.storage.fhir.jsonio import FhirJson
from kizuna.storage.fhir.scopes import scope_label
from kizuna.storage.fhir.validate import EntryMapper, validate
from kizuna.types import ScopeLabel

# Where each resource type keeps the date that places it on a patient's timeline: the first
# element present wins. Paths are JSON element names; "a.b" descends into an object.
TIMELINE_DATE: Mapping[str, tuple[str, ...]] = {
    "AdverseEvent": ("date", "detected", "recordedDate"),
    "AllergyIntolerance": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "Appointment": ("start", "created"),
    "CarePlan": ("period.start", "created"),
    "CareTeam": ("period.start",),
    "Claim": ("billablePeriod.start", "created"),
    "ClaimResponse": ("created",),
    "ClinicalImpression": ("effectiveDateTime", "effectivePeriod.start", "date"),
    "Communication": ("sent", "received"),
    "Composition": ("date",),
    "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "Consent": ("dateTime",),
    "Coverage": ("period.start",),
    "DeviceRequest": ("occurrenceDateTime", "occurrencePeriod.start", "authoredOn"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "DocumentReference": ("date", "context.period.start"),
    "Encounter": ("period.start",),
    "EpisodeOfCare": ("period.start",),
    "ExplanationOfBenefit": ("billablePeriod.start", "created"),
    "FamilyMemberHistory": ("date",),
    "Flag": ("period.start",),
    "Goal": ("startDate", "statusDate"),
    "ImagingStudy": ("started",),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "MedicationAdministration": ("effectiveDateTime", "effectivePeriod.start"),
    "MedicationDispense": ("whenHandedOver", "whenPrepared"),
    "MedicationRequest": ("authoredOn",),
    "List": ("date",),
    "Media": ("createdDateTime", "createdPeriod.start", "issued"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "NutritionOrder": ("dateTime",),
    "Observation": ("effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "Provenance": ("recorded",),
    "QuestionnaireResponse": ("authored",),
    "RiskAssessment": ("occurrenceDateTime", "occurrencePeriod.start"),
    "ServiceRequest": ("occurrenceDateTime", "occurrencePeriod.start", "authoredOn"),
    "Specimen": ("collection.collectedDateTime", "collection.collectedPeriod.start",
                 "receivedTime"),
    "SupplyDelivery": ("occurrenceDateTime", "occurrencePeriod.start"),
    "Task": ("executionPeriod.start", "authoredOn"),
}
"""Resource type → elements (in order of preference) holding its timeline date."""


@dataclass(frozen=True, slots=True)
class ImportedRecord:
    """One record made from one FHIR resource, ready to be encrypted and stored."""

    content: bytes
    """The resource in canonical JSON (:mod:`kizuna.storage.fhir.canonical`)."""
    resource_type: str
    scope_label: ScopeLabel
    fhir_id: str | None
    """The resource's ``id`` (``None`` if it had none)."""
    full_url: str | None
    """The Bundle entry's ``fullUrl`` — what ``urn:uuid:`` references point at."""
    date: str | None
    """The timeline date as FHIR wrote it (see :data:`TIMELINE_DATE`), or ``None``."""
    timestamp: datetime | None
    """``date`` as an aware UTC datetime (start of a partial date), for sorting."""
    references: tuple[str, ...]
    """Every ``reference`` string the resource holds, in document order, as written."""
    content_type: str = CONTENT_TYPE


class ImportedBundle:
    """A validated Bundle whose entries become :class:`ImportedRecord` s when iterated."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self._entries: list[Mapping[str, Any]] = list(bundle.get("entry") or ())
        self.bundle_type: str | None = bundle.get("type")

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ImportedRecord]:
        for resource, full_url in self.entries():
            yield record_for(resource, full_url=full_url)

    def entries(self) -> Iterator[tuple[Mapping[str, Any], str | None]]:
        """The validated entries as (resource, ``fullUrl``): what iterating makes records of
        with :func:`record_for` — for a caller that makes them elsewhere (the import
        pipeline canonicalises in a pool of processes)."""
        for entry in self._entries:
            full_url = entry.get("fullUrl")
            yield entry["resource"], full_url if isinstance(full_url, str) else None


def import_bundle(data: FhirJson, *, entry_mapper: EntryMapper | None = None) -> ImportedBundle:
    """Validate a patient Bundle (every reference must resolve inside it) and prepare its
    records. Raises :class:`~kizuna.errors.FhirValidationError` with every problem.
    ``entry_mapper``: checks the entries' resources elsewhere (a process pool's ``map``; see
    :data:`~kizuna.storage.fhir.validate.EntryMapper`), with the same problems found."""
    validated = validate(data, self_contained=True, entry_mapper=entry_mapper)
    if validated.resource_type != "Bundle":
        raise FhirValidationError(
            [("resourceType", f"expected a Bundle to import, got {validated.resource_type}")]
        )
    missing = [
        (f"Bundle.entry[{i}]", "entry has no resource to import")
        for i, entry in enumerate(validated.data.get("entry") or ())
        if not isinstance(entry.get("resource"), dict)
    ]
    if missing:
        raise FhirValidationError(missing)
    return ImportedBundle(validated.data)


def import_resource(data: FhirJson) -> ImportedRecord:
    """Validate one resource and make its record."""
    validated = validate(data)
    return record_for(validated.data)


def record_for(resource: Mapping[str, Any], *, full_url: str | None = None) -> ImportedRecord:
    """The record of one already validated resource."""
    resource_type = str(resource["resourceType"])
    date = timeline_date(resource)
    fhir_id = resource.get("id")
    return ImportedRecord(
        content=canonical_json(resource),
        resource_type=resource_type,
        scope_label=scope_label(resource),
        fhir_id=fhir_id if isinstance(fhir_id, str) else None,
        full_url=full_url,
        date=date,
        timestamp=to_timestamp(date) if date else None,
        references=tuple(_references(resource)),
    )


def timeline_date(resource: Mapping[str, Any]) -> str | None:
    """The date that places ``resource`` on a timeline (see :data:`TIMELINE_DATE`)."""
    for path in TIMELINE_DATE.get(str(resource.get("resourceType")), ()):
        value: Any = resource
        for step in path.split("."):
            value = value.get(step) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            return value
    return None


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


__all__ = [
    "TIMELINE_DATE",
    "ImportedBundle",
    "ImportedRecord",
    "import_bundle",
    "import_resource",
    "record_for",
    "timeline_date",
]
