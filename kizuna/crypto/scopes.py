"""Scope labels (FHIR-style, human) and blinded scope ids (opaque, on-chain).

A record's scope says what kind of health data it is, so a patient can grant "my lab results"
without granting "my mental-health notes". The label is FHIR-shaped:

* ``ResourceType`` -- any FHIR R4 resource type (R4B's new ones are accepted too, since Kizuna
  validates with ``fhir.resources.R4B``), e.g. ``Observation``, ``DocumentReference``,
  ``ImagingStudy``;
* ``ResourceType:category`` -- a category code of that resource, e.g.
  ``Observation:laboratory``, ``Observation:vital-signs``, ``Condition:problem-list-item``,
  ``DiagnosticReport:LAB``. Codes are case-sensitive, exactly as FHIR writes them.

The chain must not learn the label (trust model, rule 2), so it stores only::

    scope_id = HMAC-SHA256(scope_key, label as ASCII)       (32 bytes)

with ``scope_key`` the patient's 32-byte scope key derived from their wallet signature
(:mod:`kizuna.crypto.wallet_keys`, HKDF info ``kizuna/v1/scope-blinding-key``). The same label
gives the same id for one patient every time (grants and records match), different ids for
different patients (an observer cannot link "Observation" across patients), and nobody without
the patient's key can test a guess. Matching is exact: a grant on ``Observation`` does not
cover a record labelled ``Observation:laboratory``; :func:`covering_labels` lists the labels a
patient side would check. docs/keys.md documents all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from kizuna.crypto.secret import SecretBytes
from kizuna.errors import InputError
from kizuna.types import ScopeId, ScopeLabel

FHIR_R4_RESOURCE_TYPES: frozenset[str] = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement
    CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
    ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
    Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest
    CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
    EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare
    EventDefinition Evidence EvidenceVariable ExampleScenario ExplanationOfBenefit
    FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse HealthcareService
    ImagingStudy Immunization ImmunizationEvaluation ImmunizationRecommendation
    ImplementationGuide InsurancePlan Invoice Library Linkage List Location Measure MeasureReport
    Media Medication MedicationAdministration MedicationDispense MedicationKnowledge
    MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization
    MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
    MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
    MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition
    MessageHeader MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition
    OperationDefinition OperationOutcome Organization OrganizationAffiliation Parameters Patient
    PaymentNotice PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole
    Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson RequestGroup
    ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
    RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen
    SpecimenDefinition StructureDefinition StructureMap Subscription Substance
    SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation
    SubstanceSourceMaterial SubstanceSpecification SupplyDelivery SupplyRequest Task
    TerminologyCapabilities TestReport TestScript ValueSet VerificationResult VisionPrescription
    """.split()  # noqa: SIM905 - a word list reads better than 160 quoted strings
)
"""Every concrete resource type of FHIR R4 (4.0.1)."""

FHIR_R4B_ADDED_RESOURCE_TYPES: frozenset[str] = frozenset(
    """
    AdministrableProductDefinition Citation ClinicalUseDefinition EvidenceReport Ingredient
    ManufacturedItemDefinition MedicinalProductDefinition NutritionProduct
    PackagedProductDefinition RegulatedAuthorization SubscriptionStatus SubscriptionTopic
    SubstanceDefinition
    """.split()  # noqa: SIM905 - a word list reads better than 160 quoted strings
)
"""Resource types R4B (4.3.0) added; accepted because Kizuna validates FHIR as R4B."""

RESOURCE_TYPES = FHIR_R4_RESOURCE_TYPES | FHIR_R4B_ADDED_RESOURCE_TYPES

MAX_CATEGORY_LENGTH = 64
CATEGORY_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")

SCOPE_KEY_SIZE = 32


class ScopeKey(SecretBytes):
    """A patient's 32-byte scope blinding key. Secret: never printed, pickled or hashed."""

    __slots__ = ()
    SIZE = SCOPE_KEY_SIZE


@dataclass(frozen=True, slots=True)
class ParsedScope:
    """A scope label split into its parts."""

    resource_type: str
    category: str | None

    @property
    def label(self) -> ScopeLabel:
        if self.category is None:
            return ScopeLabel(self.resource_type)
        return ScopeLabel(f"{self.resource_type}:{self.category}")


def parse_scope_label(text: str, *, field: str = "scope") -> ParsedScope:
    """Validate a scope label; :class:`InputError` naming ``field`` and the reason otherwise."""
    if not isinstance(text, str):
        raise InputError(field, f"must be a string, not {type(text).__name__}")
    if not text:
        raise InputError(field, "is empty")
    resource_type, sep, category = text.partition(":")
    if resource_type not in RESOURCE_TYPES:
        hint = _case_hint(resource_type)
        raise InputError(field, f"{resource_type!r} is not a FHIR R4 resource type{hint}")
    if not sep:
        return ParsedScope(resource_type, None)
    if not category:
        raise InputError(field, f"empty category after {resource_type!r}:")
    if len(category) > MAX_CATEGORY_LENGTH:
        raise InputError(
            field, f"category is {len(category)} characters, at most {MAX_CATEGORY_LENGTH}"
        )
    if not category.isascii() or not CATEGORY_PATTERN.fullmatch(category):
        raise InputError(
            field,
            f"category {category!r} is not a code: letters, digits, '.', '-', '_' only, "
            "starting and ending with a letter or digit",
        )
    return ParsedScope(resource_type, category)


def scope_label(text: str, *, field: str = "scope") -> ScopeLabel:
    """The validated :class:`~kizuna.types.ScopeLabel` for ``text``."""
    return parse_scope_label(text, field=field).label


def covering_labels(label: ScopeLabel) -> tuple[ScopeLabel, ...]:
    """The labels whose grant would cover a record with ``label``: itself and, for a category
    label, its resource type (``Observation:laboratory`` -> also ``Observation``)."""
    parsed = parse_scope_label(label)
    if parsed.category is None:
        return (parsed.label,)
    return (parsed.label, ScopeLabel(parsed.resource_type))


def blind_scope(scope_key: ScopeKey, label: ScopeLabel | str) -> ScopeId:
    """``HMAC-SHA256(scope_key, label)``: the 32-byte scope id registered on-chain."""
    if not isinstance(scope_key, ScopeKey):
        raise TypeError(f"blind_scope needs a ScopeKey, not {type(scope_key).__name__}")
    valid = scope_label(label)
    return ScopeId(hmac.new(scope_key.reveal(), valid.encode("ascii"), hashlib.sha256).digest())


def _case_hint(name: str) -> str:
    lowered = {t.lower(): t for t in RESOURCE_TYPES}
    match = lowered.get(name.lower())
    return f" (did you mean {match!r}? names are case-sensitive)" if match else ""


__all__ = [
    "CATEGORY_PATTERN",
    "FHIR_R4B_ADDED_RESOURCE_TYPES",
    "FHIR_R4_RESOURCE_TYPES",
    "RESOURCE_TYPES",
    "ParsedScope",
    "ScopeKey",
    "blind_scope",
    "covering_labels",
    "parse_scope_label",
    "scope_label",
]
