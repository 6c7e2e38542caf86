"""FHIR search over the proxy's resources: parameters parsed strictly, matched per type.

Supported, on every type: ``_id``, ``identifier`` (``system|value`` or ``value``),
``_count`` (1–1000, default 50), ``_offset`` (the paging links), ``_format`` (json only). Per
type (:data:`SEARCH_ELEMENTS`): ``patient`` / ``subject`` (an id, ``Patient/id``,
``urn:uuid:id`` — the patient's Ethereum address is always one of their ids),
``date`` (prefixes ``eq ne gt lt ge le`` on the type's clinical date, :mod:`.dates`),
``code`` (``system|code``, ``code``, ``system|`` or ``|code`` on the type's CodeableConcept) and
``category``. A comma is OR, a repeated parameter AND. Anything else — an unknown parameter, a
modifier (``code:text``), a value that does not parse — is an :class:`SearchError` (400 with an
OperationOutcome naming the parameter): a FHIR client is told, never silently given more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kizuna.errors import InputError
from kizuna.fhirproxy.cache import CachedResource, Snapshot
from kizuna.fhirproxy.dates import DateCondition, element_range

DEFAULT_COUNT = 50
MAX_COUNT = 1000


class SearchError(InputError):
    """A search parameter the proxy does not support, or a value it cannot parse (400)."""


@dataclass(frozen=True)
class TypeSearch:
    """Where a type keeps what its search parameters look at (dotted paths; ``[x]`` spelled out)."""

    patient: tuple[str, ...] = ()
    date: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    category: tuple[str, ...] = ()


SEARCH_ELEMENTS: dict[str, TypeSearch] = {
    "Observation": TypeSearch(("subject",), ("effectiveDateTime", "effectivePeriod",
                                             "effectiveInstant", "issued"),
                              ("code",), ("category",)),
    "Condition": TypeSearch(("subject",), ("onsetDateTime", "onsetPeriod", "recordedDate"),
                            ("code",), ("category",)),
    "Encounter": TypeSearch(("subject",), ("period",), ("type",), ("class",)),
    "MedicationRequest": TypeSearch(("subject",), ("authoredOn",),
                                    ("medicationCodeableConcept",), ("category",)),
    "DiagnosticReport": TypeSearch(("subject",), ("effectiveDateTime", "effectivePeriod",
                                                  "issued"), ("code",), ("category",)),
    "Procedure": TypeSearch(("subject",), ("performedDateTime", "performedPeriod"),
                            ("code",), ("category",)),
    "Immunization": TypeSearch(("patient",), ("occurrenceDateTime", "recorded"),
                               ("vaccineCode",), ()),
    "AllergyIntolerance": TypeSearch(("patient",), ("onsetDateTime", "onsetPeriod",
                                                    "recordedDate"), ("code",), ("category",)),
    "DocumentReference": TypeSearch(("subject",), ("date", "context.period"), ("type",),
                                    ("category",)),
    "ImagingStudy": TypeSearch(("subject",), ("started",), ("procedureCode",), ()),
    "CarePlan": TypeSearch(("subject",), ("period",), (), ("category",)),
    "CareTeam": TypeSearch(("subject",), ("period",), (), ("category",)),
    "Claim": TypeSearch(("patient",), ("created",), (), ()),
    "ExplanationOfBenefit": TypeSearch(("patient",), ("created",), (), ()),
    "Coverage": TypeSearch(("beneficiary",), (), (), ()),
    "MedicationAdministration": TypeSearch(("subject",), ("effectiveDateTime",
                                                          "effectivePeriod"),
                                           ("medicationCodeableConcept",), ()),
    "Goal": TypeSearch(("subject",), ("startDate",), (), ("category",)),
    "Patient": TypeSearch(),
}
"""The types the proxy describes in its CapabilityStatement, and their search elements. Any
other R4 type a patient granted is served too, with the common parameters only."""

COMMON = ("_id", "identifier", "_count", "_offset", "_format")


def supported_parameters(resource_type: str) -> list[str]:
    spec = SEARCH_ELEMENTS.get(resource_type, TypeSearch())
    names = list(COMMON)
    if spec.patient:
        names += ["patient", "subject"]
    if spec.date:
        names.append("date")
    if spec.code:
        names.append("code")
    if spec.category:
        names.append("category")
    return names


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system
    code: str | None    # None: any code

    @classmethod
    def parse(cls, text: str, *, field: str) -> Token:
        if not text:
            raise SearchError(field, "an empty token")
        if "|" not in text:
            return cls(None, text)
        system, _, code = text.partition("|")
        if not code and not system:
            raise SearchError(field, f"{text!r}: neither system nor code")
        return cls(system, code or None)

    def matches_identifier(self, identifier: Any) -> bool:
        """``system|value`` against an ``Identifier``."""
        if not isinstance(identifier, dict):
            return False
        if self.system is not None and (identifier.get("system") or "") != self.system:
            return False
        return self.code is None or identifier.get("value") == self.code

    def matches(self, concept: Any) -> bool:
        if isinstance(concept, str):  # a plain code element (AllergyIntolerance.category)
            return self.system in (None, "") and self.code == concept
        if not isinstance(concept, dict):
            return False
        if "code" in concept and "coding" not in concept and "system" in concept:
            codings = [concept]  # a Coding (Encounter.class)
        else:
            codings = [c for c in concept.get("coding") or () if isinstance(c, dict)]
        for coding in codings:
            system = coding.get("system")
            if self.system is not None and (system or "") != self.system:
                continue
            if self.code is not None and coding.get("code") != self.code:
                continue
            return True
        return False


@dataclass
class Query:
    """A parsed search: conditions ANDed, each a list of alternatives ORed."""

    resource_type: str
    ids: list[set[str]] = field(default_factory=list)
    identifiers: list[list[Token]] = field(default_factory=list)
    patients: list[list[str]] = field(default_factory=list)
    dates: list[list[DateCondition]] = field(default_factory=list)
    codes: list[list[Token]] = field(default_factory=list)
    categories: list[list[Token]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0

    def canonical_params(self, raw: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The request's parameters without the paging ones (for the links)."""
        return [(k, v) for k, v in raw if k not in ("_count", "_offset")]


def _int(name: str, text: str, *, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SearchError(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise SearchError(name, f"{value} is outside {low}..{high}")
    return value


def parse_query(resource_type: str, params: Sequence[tuple[str, str]]) -> Query:
    """Parse a search's query parameters for ``resource_type`` (raises :class:`SearchError`)."""
    allowed = set(supported_parameters(resource_type))
    query = Query(resource_type)
    for name, value in params:
        base = name.partition(":")[0]
        if ":" in name:
            raise SearchError(name, "search modifiers are not supported")
        if base not in allowed:
            raise SearchError(name, f"not a supported search parameter of {resource_type} "
                                    f"(supported: {', '.join(sorted(allowed))})")
        alternatives = value.split(",")
        if base == "_id":
            query.ids.append(set(alternatives))
        elif base == "identifier":
            query.identifiers.append([Token.parse(a, field=name) for a in alternatives])
        elif base == "_count":
            query.count = _int(name, value, low=1, high=MAX_COUNT)
        elif base == "_offset":
            query.offset = _int(name, value, low=0, high=10**9)
        elif base == "_format":
            if value not in ("json", "application/json", "application/fhir+json"):
                raise SearchError(name, f"{value!r}: only JSON is served")
        elif base in ("patient", "subject"):
            if any(not a.strip() for a in alternatives):
                raise SearchError(name, "an empty reference")
            query.patients.append(alternatives)
        elif base == "date":
            try:
                query.dates.append([DateCondition.parse(a, field=name) for a in alternatives])
            except InputError as exc:
                raise SearchError(exc.field, exc.reason) from None
        elif base == "code":
            query.codes.append([Token.parse(a, field=name) for a in alternatives])
        elif base == "category":
            query.categories.append([Token.parse(a, field=name) for a in alternatives])
    return query


def _get(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _concepts(resource: dict[str, Any], paths: tuple[str, ...]) -> list[Any]:
    found: list[Any] = []
    for path in paths:
        value = _get(resource, path)
        found += value if isinstance(value, list) else [] if value is None else [value]
    return found


def _matches(item: CachedResource, query: Query, snapshot: Snapshot) -> bool:
    spec = SEARCH_ELEMENTS.get(item.resource_type, TypeSearch())
    resource = item.resource
    if any(item.id not in ids for ids in query.ids):
        return False
    for tokens in query.identifiers:
        if not any(t.matches_identifier(i) for t in tokens
                   for i in _concepts(resource, ("identifier",))):
            return False
    for alternatives in query.patients:
        if not any(snapshot.patient_of(a) == item.patient for a in alternatives):
            return False
    if query.dates:
        ranges = [r for r in (element_range(_get(resource, p)) for p in spec.date)
                  if r is not None][:1]  # the type's date: the first of its elements present
        if not ranges:
            return False
        for conditions in query.dates:
            if not any(c.matches(ranges[0]) for c in conditions):
                return False
    for tokens in query.codes:
        concepts = _concepts(resource, spec.code)
        if not any(t.matches(c) for t in tokens for c in concepts):
            return False
    for tokens in query.categories:
        concepts = _concepts(resource, spec.category)
        if not any(t.matches(c) for t in tokens for c in concepts):
            return False
    return True


def search(snapshot: Snapshot, query: Query) -> list[CachedResource]:
    """Every resource of the query's type that matches it, in a stable order (patient, then
    the order the records were registered)."""
    return [item for item in snapshot.of_type(query.resource_type)
            if _matches(item, query, snapshot)]


__all__ = ["DEFAULT_COUNT", "MAX_COUNT", "SEARCH_ELEMENTS", "Query", "SearchError", "Token",
           "parse_query", "search", "supported_parameters"]
