"""Scope labels of FHIR resources: ``ResourceType`` or ``ResourceType:category``.

A grant on-chain names a *scope* (blinded per patient by :mod:`kizuna.crypto`); every record
carries one label saying which scope it belongs to. The label is the resource type, refined by a
category where FHIR defines a category vocabulary that patients reason in — "share my lab results
but not my social history" — and left at the resource type otherwise.

The vocabulary is closed: a category is used only when its code comes from the code system listed
in :data:`CATEGORY_SYSTEMS` for that resource type and is one of its codes. Anything else (a local
code, a US Core extension code Kizuna does not list, no category at all) gives the plain resource
type, so a label never leaks free text and two devices always agree on it. When a resource has
several listed categories, the first in document order wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kizuna.crypto.scopes import parse_scope_label as parse_label_grammar
from kizuna.errors import InputError
from kizuna.storage.fhir.model_index import resource_class
from kizuna.types import ScopeLabel


@dataclass(frozen=True, slots=True)
class CategoryVocabulary:
    """Where a resource type keeps its category, and which codes of which systems count."""

    element: str
    systems: Mapping[str, frozenset[str]]
    coded: bool = True
    """``True``: the element is a list of CodeableConcepts; ``False``: a list of plain codes."""


_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
_MEDICATIONREQUEST_CATEGORY = (
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
)

CATEGORY_SYSTEMS: Mapping[str, CategoryVocabulary] = {
    "Observation": CategoryVocabulary(
        "category",
        {
            _OBSERVATION_CATEGORY: frozenset({
                "social-history", "vital-signs", "imaging", "laboratory", "procedure",
                "survey", "exam", "therapy", "activity",
            })
        },
    ),
    "DiagnosticReport": CategoryVocabulary(
        "category",
        {
            # HL7 v2 table 0074 (diagnostic service section), as FHIR R4 binds it.
            _V2_0074: frozenset({
                "AU", "BG", "BLB", "CG", "CH", "CP", "CT", "CTH", "CUS", "EC", "EN", "GE",
                "HM", "ICU", "IMG", "IMM", "LAB", "MB", "MCB", "MYC", "NMR", "NMS", "NRS",
                "OSL", "OT", "OTH", "OUS", "PF", "PHR", "PHY", "PT", "RAD", "RC", "RT", "RUS",
                "RX", "SP", "SR", "TX", "URN", "VR", "VUS", "XRC",
            })
        },
    ),
    "Condition": CategoryVocabulary(
        "category",
        {
            _CONDITION_CATEGORY: frozenset({"problem-list-item", "encounter-diagnosis"}),
            _US_CORE_CONDITION_CATEGORY: frozenset({"health-concern"}),
        },
    ),
    "AllergyIntolerance": CategoryVocabulary(
        "category",
        {"": frozenset({"food", "medication", "environment", "biologic"})},
        coded=False,
    ),
    "MedicationRequest": CategoryVocabulary(
        "category",
        {
            _MEDICATIONREQUEST_CATEGORY: frozenset({
                "inpatient", "outpatient", "community", "discharge",
            })
        },
    ),
}
"""Resource type → where its category is and which codes become label suffixes."""

def scope_label(resource: Mapping[str, Any]) -> ScopeLabel:
    """The scope label of a (decoded, validated) FHIR resource."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_class(resource_type) is None:
        raise InputError("resourceType", f"{resource_type!r} is not a FHIR R4 resource type")
    vocabulary = CATEGORY_SYSTEMS.get(resource_type)
    if vocabulary is not None:
        category = _category(resource.get(vocabulary.element), vocabulary)
        if category is not None:
            return ScopeLabel(f"{resource_type}:{category}")
    return ScopeLabel(resource_type)


def _category(value: Any, vocabulary: CategoryVocabulary) -> str | None:
    items = value if isinstance(value, list) else [value] if value is not None else []
    for item in items:
        if not vocabulary.coded:
            if isinstance(item, str) and item in vocabulary.systems[""]:
                return item
            continue
        if not isinstance(item, Mapping):
            continue
        for coding in item.get("coding") or ():
            if not isinstance(coding, Mapping):
                continue
            codes = vocabulary.systems.get(str(coding.get("system")))
            code = coding.get("code")
            if codes is not None and isinstance(code, str) and code in codes:
                return code
    return None


def parse_scope_label(text: str) -> ScopeLabel:
    """Check that ``text`` is a label of Kizuna's vocabulary (e.g. typed by a user) and return it.

    The grammar (``ResourceType`` or ``ResourceType:category``, an R4 resource type, a code-shaped
    category) is :func:`kizuna.crypto.scopes.parse_scope_label`'s, the one every label is blinded
    under; on top of it, a category must be one of :data:`CATEGORY_SYSTEMS`, so that a grant of
    a whole resource type can be expanded into every label records of that type may carry.
    Raises :class:`~kizuna.errors.InputError` naming what is wrong.
    """
    parsed = parse_label_grammar(text)
    if parsed.category is not None:
        vocabulary = CATEGORY_SYSTEMS.get(parsed.resource_type)
        if vocabulary is None:
            raise InputError(
                "scope", f"{parsed.resource_type} has no categories in Kizuna's vocabulary"
            )
        known = set().union(*vocabulary.systems.values())
        if parsed.category not in known:
            shown = ", ".join(sorted(known))
            raise InputError(
                "scope", f"{parsed.category!r} is not a {parsed.resource_type} category ({shown})"
            )
    return parsed.label


def all_labels() -> tuple[ScopeLabel, ...]:
    """Every category label of the vocabulary (plain resource types are not listed)."""
    labels = [
        ScopeLabel(f"{rt}:{code}")
        for rt, vocabulary in CATEGORY_SYSTEMS.items()
        for codes in vocabulary.systems.values()
        for code in sorted(codes)
    ]
    return tuple(labels)


__all__ = [
    "CATEGORY_SYSTEMS",
    "CategoryVocabulary",
    "all_labels",
    "parse_scope_label",
    "scope_label",
]
