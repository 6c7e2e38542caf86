"""FHIR search over the proxy's resources (R4 search.html): parameters parsed, matched per type.

Search parameters, on every type: ``_id``, ``identifier`` (``system|value`` or ``value``),
``_lastUpdated`` (the ``date`` prefixes, on ``meta.lastUpdated``). Per type
(:data:`SEARCH_ELEMENTS`): ``patient`` / ``subject`` (an id, ``Patient/id``, ``urn:uuid:id`` —
the patient's Ethereum address is always one of their ids), ``date`` (prefixes ``eq ne gt lt ge
le`` on the type's clinical date, :mod:`.dates`), ``code`` (``system|code``, ``code``,
``system|`` or ``|code`` on the type's CodeableConcept), ``category``, the other references
(``encounter``, ``medication``, ``result``) and Patient's ``name`` / ``family`` / ``given`` /
``gender``. A comma is OR, a repeated parameter AND.

Modifiers (R4 search.html#modifiers): strings ``:exact`` (whole value, case- and
accent-sensitive) and ``:contains`` (anywhere; the default is "starts with", both case- and
accent-insensitive); tokens ``:text`` (the default string match on ``CodeableConcept.text`` /
``Coding.display`` / ``Identifier.type.text``) and ``:not``; ``:missing=true|false`` on every
parameter but ``_id`` / ``_lastUpdated`` (which every resource has).

Result parameters: ``_count`` (0–1000, default 50; 0: the total only), ``_offset`` (the paging
links), ``_sort`` (comma-separated keys, ``-`` descending: ``_id``, ``_lastUpdated`` and the
type's date and string parameters), ``_summary`` (``true text data count false``),
``_elements`` and ``_include`` (``Type:param[:Target]`` over the type's reference parameters;
the included resources carry ``search.mode = include``). ``_format`` is the app's
(:mod:`.app`: JSON only, otherwise 406).

Anything else — an unknown parameter, an unsupported modifier — is a :class:`SearchError` (400
with an OperationOutcome naming the parameter: a FHIR client is told, never silently given
more), unless the client asked ``Prefer: handling=lenient``: then it is ignored, and left out of
the ``self`` link so the client can see what was applied. A value that does not parse is an
error either way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from kizuna.errors import InputError
from kizuna.fhirproxy.cache import CachedResource, Snapshot
from kizuna.fhirproxy.dates import DateCondition, DateRange, date_range, element_range

DEFAULT_COUNT = 50
MAX_COUNT = 1000
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}
"""The tag a resource carries when ``_summary`` / ``_elements`` left some of it out."""


class SearchError(InputError):
    """A search parameter the proxy does not support, or a value it cannot parse (400)."""


Elements = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class TypeSearch:
    """Where a type keeps what its search parameters look at (dotted paths; ``[x]`` spelled out;
    a list on the way is searched element by element)."""

    patient: tuple[str, ...] = ()
    date: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    references: Elements = ()
    """Other reference parameters: name → elements (``_include`` targets too)."""
    strings: Elements = ()
    tokens: Elements = ()


_ENCOUNTER: Elements = (("encounter", ("encounter",)),)
_NAME = ("name.family", "name.given", "name.text", "name.prefix", "name.suffix")

SEARCH_ELEMENTS: dict[str, TypeSearch] = {
    "Observation": TypeSearch(("subject",), ("effectiveDateTime", "effectivePeriod",
                                             "effectiveInstant", "issued"),
                              ("code",), ("category",), references=_ENCOUNTER),
    "Condition": TypeSearch(("subject",), ("onsetDateTime", "onsetPeriod", "recordedDate"),
                            ("code",), ("category",), references=_ENCOUNTER),
    "Encounter": TypeSearch(("subject",), ("period",), ("type",), ("class",)),
    "MedicationRequest": TypeSearch(("subject",), ("authoredOn",),
                                    ("medicationCodeableConcept",), ("category",),
                                    references=(*_ENCOUNTER,
                                                ("medication", ("medicationReference",)))),
    "DiagnosticReport": TypeSearch(("subject",), ("effectiveDateTime", "effectivePeriod",
                                                  "issued"), ("code",), ("category",),
                                   references=(*_ENCOUNTER, ("result", ("result",)))),
    "Procedure": TypeSearch(("subject",), ("performedDateTime", "performedPeriod"),
                            ("code",), ("category",), references=_ENCOUNTER),
    "Immunization": TypeSearch(("patient",), ("occurrenceDateTime", "recorded"),
                               ("vaccineCode",), (), references=_ENCOUNTER),
    "AllergyIntolerance": TypeSearch(("patient",), ("onsetDateTime", "onsetPeriod",
                                                    "recordedDate"), ("code",), ("category",)),
    "DocumentReference": TypeSearch(("subject",), ("date", "context.period"), ("type",),
                                    ("category",),
                                    references=(("encounter", ("context.encounter",)),)),
    "ImagingStudy": TypeSearch(("subject",), ("started",), ("procedureCode",), (),
                               references=_ENCOUNTER),
    "CarePlan": TypeSearch(("subject",), ("period",), (), ("category",),
                           references=_ENCOUNTER),
    "CareTeam": TypeSearch(("subject",), ("period",), (), ("category",),
                           references=_ENCOUNTER),
    "Claim": TypeSearch(("patient",), ("created",), (), ()),
    "ExplanationOfBenefit": TypeSearch(("patient",), ("created",), (), ()),
    "Coverage": TypeSearch(("beneficiary",), (), (), ()),
    "MedicationAdministration": TypeSearch(("subject",), ("effectiveDateTime",
                                                          "effectivePeriod"),
                                           ("medicationCodeableConcept",), (),
                                           references=(("medication",
                                                        ("medicationReference",)),)),
    "Goal": TypeSearch(("subject",), ("startDate",), (), ("category",)),
    "Patient": TypeSearch(strings=(("name", _NAME), ("family", ("name.family",)),
                                   ("given", ("name.given",))),
                          tokens=(("gender", ("gender",)),)),
}
"""The types the proxy describes in its CapabilityStatement, and their search elements. Any
other R4 type a patient granted is served too, with the common parameters only."""

MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("exact", "contains", "missing"),
    "token": ("text", "not", "missing"),
    "date": ("missing",),
    "reference": ("missing",),
}


@dataclass(frozen=True)
class Param:
    """One search parameter of a type: its FHIR type, where it looks, its modifiers."""

    name: str
    type: str
    elements: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    documentation: str = ""


RESULT_PARAMETERS: dict[str, Param] = {p.name: p for p in (
    Param("_count", "number", documentation="page size 0–1000 (default 50; 0: the total only)"),
    Param("_offset", "number", documentation="the first match of the page (the paging links)"),
    Param("_format", "token", documentation="json / application/fhir+json only (else 406)"),
    Param("_sort", "string", documentation="comma-separated keys, '-' for descending: _id, "
                                           "_lastUpdated and the type's date and string "
                                           "parameters"),
    Param("_summary", "token", documentation="true, text, data, count or false"),
    Param("_elements", "string", documentation="top-level elements to return (plus id, meta "
                                               "and the mandatory ones)"),
    Param("_include", "string", documentation="Type:param[:Target] over the type's reference "
                                              "parameters (searchInclude); no :iterate, no *"),
)}


@cache
def parameters(resource_type: str) -> dict[str, Param]:
    """The search parameters ``resource_type`` supports here, by name."""
    spec = SEARCH_ELEMENTS.get(resource_type, TypeSearch())
    found = [Param("_id", "token", documentation="the resource id"),
             Param("_lastUpdated", "date", documentation="meta.lastUpdated (when the record "
                                                         "was registered); date prefixes"),
             Param("identifier", "token", ("identifier",), MODIFIERS["token"])]
    if spec.patient:
        found += [Param(name, "reference", spec.patient, MODIFIERS["reference"],
                        "the patient: their address, their Patient id or their records' "
                        "subject id") for name in ("patient", "subject")]
    if spec.date:
        found.append(Param("date", "date", spec.date, MODIFIERS["date"],
                           "prefixes eq ne gt lt ge le on: " + ", ".join(spec.date)))
    if spec.code:
        found.append(Param("code", "token", spec.code, MODIFIERS["token"]))
    if spec.category:
        found.append(Param("category", "token", spec.category, MODIFIERS["token"]))
    found += [Param(n, "reference", e, MODIFIERS["reference"]) for n, e in spec.references]
    found += [Param(n, "string", e, MODIFIERS["string"]) for n, e in spec.strings]
    found += [Param(n, "token", e, MODIFIERS["token"]) for n, e in spec.tokens]
    return {p.name: p for p in found}


def reference_parameters(resource_type: str) -> list[str]:
    """The parameters ``_include`` can follow for ``resource_type``."""
    return [p.name for p in parameters(resource_type).values() if p.type == "reference"]


def sort_keys(resource_type: str) -> list[str]:
    return ["_id", "_lastUpdated", *(p.name for p in parameters(resource_type).values()
                                     if p.type in ("date", "string") and p.elements)]


def supported_parameters(resource_type: str) -> list[str]:
    """Every parameter name a search of ``resource_type`` accepts (search, then result)."""
    return [*parameters(resource_type), *RESULT_PARAMETERS]


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

    def matches_pairs(self, pairs: frozenset[tuple[str, str | None]]) -> bool:
        """Against the ``(system or "", code)`` pairs of :func:`code_pairs` (every
        concept of a resource's element at once)."""
        if self.system is not None and self.code is not None:
            return (self.system, self.code) in pairs
        if self.system is None:
            return any(code == self.code for _, code in pairs)
        return any(system == self.system for system, _ in pairs)


@dataclass(frozen=True)
class Include:
    """``_include=Type:param[:Target]``."""

    param: str
    target: str | None


Condition = Callable[[CachedResource, Snapshot], bool]


@dataclass
class Query:
    """A parsed search: conditions ANDed (each one ORs its comma-separated values), the result
    parameters, and what was applied / ignored (the ``self`` link)."""

    resource_type: str
    conditions: list[Condition] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)
    """(key, descending), in priority order."""
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    includes: list[Include] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def link_params(self) -> list[tuple[str, str]]:
        """The applied parameters without the paging ones (the links add those)."""
        return [(k, v) for k, v in self.applied if k not in ("_count", "_offset")]


def parse_int(name: str, text: str, *, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SearchError(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise SearchError(name, f"{value} is outside {low}..{high}")
    return value


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a string (the default string match)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def values(resource: Any, path: str) -> list[Any]:
    """Every value at a dotted path, lists flattened at each step."""
    found = [resource]
    for step in path.split("."):
        nxt: list[Any] = []
        for item in found:
            value = item.get(step) if isinstance(item, dict) else None
            if isinstance(value, list):
                nxt += value
            elif value is not None:
                nxt.append(value)
        found = nxt
    return found


def _all(resource: dict[str, Any], paths: tuple[str, ...]) -> list[Any]:
    return [v for path in paths for v in values(resource, path)]


def _date_of(resource: dict[str, Any], paths: tuple[str, ...]) -> DateRange | None:
    """The type's date: the first of its elements present."""
    for path in paths:
        for value in values(resource, path):
            found = element_range(value)
            if found is not None:
                return found
    return None


def _texts(concept: Any) -> list[str]:
    """The text a token's ``:text`` searches: CodeableConcept.text, Coding.display,
    Identifier.type.text."""
    if not isinstance(concept, dict):
        return []
    found = [concept["text"]] if isinstance(concept.get("text"), str) else []
    if isinstance(concept.get("display"), str):
        found.append(concept["display"])
    found += [c["display"] for c in concept.get("coding") or ()
              if isinstance(c, dict) and isinstance(c.get("display"), str)]
    kind = concept.get("type")
    if isinstance(kind, dict) and isinstance(kind.get("text"), str):
        found.append(kind["text"])
    return found


def code_pairs(concepts: list[Any]) -> frozenset[tuple[str, str | None]]:
    """The ``(system or "", code)`` of every coding of ``concepts`` (CodeableConcepts,
    Codings, plain codes)."""
    pairs: set[tuple[str, str | None]] = set()
    for concept in concepts:
        if isinstance(concept, str):
            pairs.add(("", concept))
            continue
        if not isinstance(concept, dict):
            continue
        if "code" in concept and "coding" not in concept and "system" in concept:
            codings = [concept]
        else:
            codings = [c for c in concept.get("coding") or () if isinstance(c, dict)]
        for coding in codings:
            code = coding.get("code")
            pairs.add((coding.get("system") or "", code if isinstance(code, str) else None))
    return frozenset(pairs)


def _pairs_of(item: CachedResource, paths: tuple[str, ...]) -> frozenset[tuple[str, str | None]]:
    key = ("codes", paths)
    found = item.memo.get(key)
    if found is None:
        found = item.memo[key] = code_pairs(_all(item.resource, paths))
    return found


def _date_of_item(item: CachedResource, paths: tuple[str, ...]) -> DateRange | None:
    key = ("date", paths)
    if key not in item.memo:
        item.memo[key] = _date_of(item.resource, paths)
    return item.memo[key]  # type: ignore[no-any-return]


def _missing(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise SearchError(name, f"{value!r}: :missing takes true or false")
    return value == "true"


def _condition(param: Param, name: str, modifier: str, value: str) -> Condition:  # noqa: C901 (one branch per FHIR search type and modifier)
    alternatives = value.split(",")
    paths = param.elements
    if modifier == "missing":
        want_missing = _missing(name, value)
        if param.type == "date":
            return lambda item, _: (_date_of_item(item, paths) is None) == want_missing
        return lambda item, _: (not _all(item.resource, paths)) == want_missing
    if param.name == "_id":
        wanted = set(alternatives)
        return lambda item, _: item.id in wanted
    if param.name == "_lastUpdated":
        conditions = _dates(name, alternatives)
        return lambda item, _: _last_updated_matches(item, conditions)
    if param.type == "date":
        conditions = _dates(name, alternatives)

        def date_matches(item: CachedResource, _: Snapshot) -> bool:
            found = _date_of_item(item, paths)
            return found is not None and any(c.matches(found) for c in conditions)
        return date_matches
    if param.type == "reference":
        if any(not a.strip() for a in alternatives):
            raise SearchError(name, "an empty reference")
        if param.name in ("patient", "subject"):
            return lambda item, snap: any(snap.patient_of(a) == item.patient
                                          for a in alternatives)
        targets = [_reference_key(a) for a in alternatives]

        def reference_matches(item: CachedResource, _: Snapshot) -> bool:
            refs = [r["reference"] for r in _all(item.resource, paths)
                    if isinstance(r, dict) and isinstance(r.get("reference"), str)]
            return any(_reference_is(ref, t) for ref in refs for t in targets)
        return reference_matches
    if param.type == "string":
        if any(not a for a in alternatives):
            raise SearchError(name, "an empty string")
        if modifier == "exact":
            wanted = set(alternatives)
            return lambda item, _: any(isinstance(v, str) and v in wanted
                                       for v in _all(item.resource, paths))
        folded = [fold(a) for a in alternatives]
        if modifier == "contains":
            return lambda item, _: any(isinstance(v, str) and f in fold(v) for f in folded
                                       for v in _all(item.resource, paths))
        return lambda item, _: any(isinstance(v, str) and fold(v).startswith(f)
                                   for f in folded for v in _all(item.resource, paths))
    # token
    if modifier == "text":
        if any(not a for a in alternatives):
            raise SearchError(name, "an empty text")
        folded = [fold(a) for a in alternatives]
        return lambda item, _: any(fold(t).startswith(f) for f in folded
                                   for c in _all(item.resource, paths) for t in _texts(c))
    tokens = [Token.parse(a, field=name) for a in alternatives]
    if param.name == "identifier":
        def token_matches(item: CachedResource, _: Snapshot) -> bool:
            return any(t.matches_identifier(i) for t in tokens
                       for i in _all(item.resource, paths))
    else:
        def token_matches(item: CachedResource, _: Snapshot) -> bool:
            pairs = _pairs_of(item, paths)
            return any(t.matches_pairs(pairs) for t in tokens)
    if modifier == "not":
        return lambda item, snap: not token_matches(item, snap)
    return token_matches


def _dates(name: str, alternatives: list[str]) -> list[DateCondition]:
    try:
        return [DateCondition.parse(a, field=name) for a in alternatives]
    except InputError as exc:
        raise SearchError(exc.field, exc.reason) from None


def _last_updated_matches(item: CachedResource, conditions: list[DateCondition]) -> bool:
    found = date_range(item.last_updated) if item.last_updated else None
    return found is not None and any(c.matches(found) for c in conditions)


def _reference_key(value: str) -> str:
    """``Type/id`` (from ``Type/id`` or an absolute URL) or a bare ``id``."""
    parts = value.strip().rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else parts[0]


def _reference_is(reference: str, key: str) -> bool:
    if "/" in key:
        return reference == key or reference.endswith("/" + key)
    return reference.rpartition("/")[2] == key


def parse_query(resource_type: str, params: Sequence[tuple[str, str]], *,
                strict: bool = True) -> Query:
    """Parse a search's parameters for ``resource_type`` (raises :class:`SearchError`).
    ``strict=False`` (``Prefer: handling=lenient``) ignores unknown or unsupported parameters
    (they are listed in :attr:`Query.ignored`) instead of refusing them."""
    known = parameters(resource_type)
    query = Query(resource_type)

    def unsupported(name: str, reason: str) -> None:
        if strict:
            raise SearchError(name, reason)
        query.ignored.append(name)

    for name, value in params:
        base, _, modifier = name.partition(":")
        if base in RESULT_PARAMETERS:
            if modifier:
                unsupported(name, f"{base} takes no modifier here")
                continue
            _result_parameter(query, base, value)
        elif base in known:
            param = known[base]
            if modifier and modifier not in param.modifiers:
                allowed = ", ".join(f":{m}" for m in param.modifiers) or "none"
                unsupported(name, f"the modifier :{modifier} is not supported on {base} "
                                  f"(supported: {allowed})")
                continue
            query.conditions.append(_condition(param, name, modifier, value))
        else:
            names = ", ".join(sorted(supported_parameters(resource_type)))
            unsupported(name, f"not a supported search parameter of {resource_type} "
                              f"(supported: {names})")
            continue
        query.applied.append((name, value))
    if query.summary not in (None, "false", "count") and query.elements is not None:
        raise SearchError("_elements", "_summary and _elements cannot be combined")
    return query


def _result_parameter(query: Query, name: str, value: str) -> None:
    resource_type = query.resource_type
    if name == "_count":
        query.count = parse_int(name, value, low=0, high=MAX_COUNT)
    elif name == "_offset":
        query.offset = parse_int(name, value, low=0, high=10**9)
    elif name == "_summary":
        if value not in ("true", "text", "data", "count", "false"):
            raise SearchError(name, f"{value!r}: one of true, text, data, count, false")
        query.summary = value
    elif name == "_elements":
        names = tuple(v.strip() for v in value.split(","))
        if not all(n.isidentifier() for n in names):
            raise SearchError(name, f"{value!r}: comma-separated element names")
        query.elements = names
    elif name == "_sort":
        allowed = sort_keys(resource_type)
        for key in value.split(","):
            descending = key.startswith("-")
            key = key.removeprefix("-")
            if key not in allowed:
                raise SearchError(name, f"cannot sort {resource_type} by {key!r} "
                                        f"(sortable: {', '.join(allowed)})")
            query.sort.append((key, descending))
    elif name == "_include":
        parts = value.split(":")
        references = reference_parameters(resource_type)
        if len(parts) not in (2, 3) or parts[0] != resource_type or parts[1] not in references:
            raise SearchError(name, f"{value!r}: {resource_type}:<param>[:<type>] with "
                                    f"<param> one of {', '.join(references) or 'none'} "
                                    "(no *, no other source type)")
        target = parts[2] if len(parts) == 3 else None
        if target is not None and not (target.isalnum() and target[:1].isupper()):
            raise SearchError(name, f"{target!r} is not a resource type")
        query.includes.append(Include(parts[1], target))
    # _format: the app's (content negotiation happens before the search is parsed)


def _sort_value(item: CachedResource, key: str, descending: bool) -> Any:
    """The value a resource sorts by (R4: a range sorts by its start ascending, by its end
    descending; strings by their lowest / highest folded value), or ``None``."""
    if key == "_id":
        return item.id
    if key == "_lastUpdated":
        found = date_range(item.last_updated) if item.last_updated else None
    else:
        param = parameters(item.resource_type)[key]
        if param.type == "string":
            texts = [fold(v) for v in _all(item.resource, param.elements) if isinstance(v, str)]
            if not texts:
                return None
            return max(texts) if descending else min(texts)
        found = _date_of_item(item, param.elements)
    if found is None:
        return None
    moment: datetime = found.end if descending else found.start
    return moment


def _sorted(items: list[CachedResource], keys: list[tuple[str, bool]]) -> list[CachedResource]:
    """Sorted by each key in priority order; resources without a value last either way."""
    for key, descending in reversed(keys):  # stable sorts, least significant key first
        def by(item: CachedResource, key: str = key, descending: bool = descending) -> Any:
            value = _sort_value(item, key, descending)
            if value is None:  # the lowest key when reversed, the highest otherwise: last
                return (0,) if descending else (1,)
            return (1, value) if descending else (0, value)
        items = sorted(items, key=by, reverse=descending)
    return items


def search(snapshot: Snapshot, query: Query) -> list[CachedResource]:
    """Every resource of the query's type that matches it: sorted by ``_sort``, else in a
    stable order (patient, then the order the records were registered)."""
    found = [item for item in snapshot.of_type(query.resource_type)
             if all(c(item, snapshot) for c in query.conditions)]
    return _sorted(found, query.sort) if query.sort else found


def included(snapshot: Snapshot, query: Query,
             page: Sequence[CachedResource]) -> list[CachedResource]:
    """The resources the page's ``_include`` s reference that this proxy serves (each once,
    none that is already a match of the page)."""
    seen = {(item.resource_type, item.id) for item in page}
    found: list[CachedResource] = []
    for include in query.includes:
        paths = parameters(query.resource_type)[include.param].elements
        for item in page:
            for ref in _all(item.resource, paths):
                target = ref.get("reference") if isinstance(ref, dict) else None
                if not isinstance(target, str) or target.count("/") != 1:
                    continue
                key = (target.partition("/")[0], target.partition("/")[2])
                if include.target is not None and key[0] != include.target:
                    continue
                other = snapshot.by_key.get(key)
                if other is not None and key not in seen:
                    seen.add(key)
                    found.append(other)
    return found


@dataclass(frozen=True)
class _Shape:
    summary: frozenset[str]
    required: frozenset[str]
    choices: dict[str, tuple[str, ...]]


@cache
def _shape(resource_type: str) -> _Shape | None:
    """Which top-level elements of a type are in its summary, which are mandatory, and the
    JSON names of each choice element (``value`` → ``valueQuantity``, ...)."""
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None
    summary: set[str] = set()
    required: set[str] = set()
    choices: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        json_name = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(json_name)
        if extra.get("element_required") or info.is_required():
            required.add(json_name)
        choice = extra.get("one_of_many")
        if isinstance(choice, str):
            choices.setdefault(choice, []).append(json_name)
    return _Shape(frozenset(summary), frozenset(required),
                  {k: tuple(v) for k, v in choices.items()})


def _kept(resource: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items()
           if k in keep or (k.startswith("_") and k[1:] in keep)}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or ()), SUBSETTED]
    out["meta"] = meta
    return out


def shaped(resource: dict[str, Any], *, summary: str | None,
           elements: Sequence[str] | None) -> dict[str, Any]:
    """A resource as ``_summary`` / ``_elements`` ask for it (R4 search.html#summary,
    #elements): ``id``, ``meta`` and the mandatory elements always; ``SUBSETTED`` in
    ``meta.tag`` whenever something was left out."""
    if summary in (None, "false", "count") and elements is None:
        return resource
    shape = _shape(resource["resourceType"])
    base = {"resourceType", "id", "meta", "implicitRules"}
    required = set(shape.required) if shape else set()
    if summary == "data":
        if "text" not in resource:
            return resource
        return _kept(resource, set(resource) - {"text"})
    if summary == "text":
        return _kept(resource, base | required | {"text"})
    if summary == "true":
        return _kept(resource, base | required | (set(shape.summary) if shape else set()))
    wanted = set(elements or ())
    for name in list(wanted):
        if shape and name in shape.choices:
            wanted |= set(shape.choices[name])
    return _kept(resource, base | required | wanted)


def iter_pages(total: int, offset: int, count: int) -> Iterator[tuple[str, int]]:
    """The paging links of a page (relation, offset): ``next`` / ``previous`` when they exist."""
    if count and offset + count < total:
        yield "next", offset + count
    if count and offset > 0:
        yield "previous", max(0, offset - count)


__all__ = ["DEFAULT_COUNT", "MAX_COUNT", "MODIFIERS", "RESULT_PARAMETERS", "SEARCH_ELEMENTS",
           "SUBSETTED", "Include", "Param", "Query", "SearchError", "Token", "fold",
           "included", "iter_pages", "parameters", "parse_int", "parse_query",
           "reference_parameters", "search", "shaped", "sort_keys", "supported_parameters",
           "values"]
