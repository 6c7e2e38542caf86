"""Validation of FHIR R4 resources and Bundles: ``fhir.resources`` (R4B) plus what it skips.

Two passes over one decoded JSON object, and every problem of both is reported together:

1. **Structure** — ``fhir.resources.R4B`` (pydantic): element names, cardinalities, required
   elements, primitive types and their regular expressions. Its errors carry a pydantic
   location tuple; :func:`_pydantic_path` turns it into a FHIRPath-like path
   (``Bundle.entry[3].resource.status``).
2. **Kizuna's checks**, walking the raw JSON beside the model classes
   (:mod:`~kizuna.storage.fhir.model_index`):

   * codes of *required* bindings (status fields, gender, intent, ...;
     :mod:`~kizuna.storage.fhir.valuesets`), including ``CodeableConcept`` ones such as
     ``Condition.clinicalStatus``;
   * dates, dateTimes, instants and times are real calendar values, with a timezone where FHIR
     requires one (:mod:`~kizuna.storage.fhir.dates`);
   * unknown ``resourceType`` values (e.g. an STU3 ``ProcedureRequest`` in ``contained``);
   * ``#id`` references resolve to a contained resource;
   * inside a Bundle: ``urn:uuid:``/``urn:oid:`` references resolve to an entry's ``fullUrl``;
     relative ``Type/id`` references resolve following the Bundle rules of FHIR (against the
     citing entry's RESTful base); a resolved target has a type the element allows; a fullUrl
     appears once (bdl-7). With ``self_contained=True`` (used by the importer), a relative
     reference or an absolute one to a server base the Bundle uses must resolve inside it too.

The result is :class:`ValidatedResource`, or a :class:`~kizuna.errors.FhirValidationError`
listing every ``(path, reason)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from kizuna.errors import FhirValidationError
from kizuna.storage.fhir import dates
from kizuna.storage.fhir.jsonio import FhirJson, load_json
from kizuna.storage.fhir.model_index import ElementInfo, Kind, ModelClass, elements
from kizuna.storage.fhir.model_index import resource_class as _resource_class

Issue = tuple[str, str]

_RELATIVE_REF = re.compile(
    r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?"
)
_RESTFUL_URL = re.compile(
    r"(?P<base>https?://.+/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?"
)


@dataclass(frozen=True)
class ValidatedResource:
    """A FHIR resource (possibly a Bundle) that passed every check."""

    resource_type: str
    data: dict[str, Any]
    """The decoded JSON, as given (decimals as :class:`~decimal.Decimal`)."""
    _model: FHIRAbstractModel | None = field(default=None, repr=False, compare=False)

    def model(self) -> FHIRAbstractModel:
        """The ``fhir.resources.R4B`` model of it (built on first use for a Bundle, whose
        entries were validated one by one)."""
        if self._model is None:
            cls = _resource_class(self.resource_type)
            assert cls is not None
            object.__setattr__(self, "_model", cls.model_validate(self.data))
        assert self._model is not None
        return self._model


@dataclass(slots=True)
class _BundleRef:
    entry: int
    path: str
    reference: str
    allowed: tuple[str, ...]


MAX_DEPTH = 64
"""Deepest element nesting validated. FHIR resources nest a dozen levels or so (a Questionnaire's
items a few more); far deeper input is refused before pydantic, whose recursion through
fhir.resources' validators could exhaust the C stack."""


class _TooDeep(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(slots=True)
class _Walk:
    issues: list[Issue] = field(default_factory=list)
    unknown_types: bool = False
    local_refs: list[tuple[str, str]] | None = None  # (path, "#id") of the current resource
    bundle_refs: list[_BundleRef] | None = None
    entry: int = -1
    self_contained: bool = False
    depth: int = 0

    def add(self, path: str, reason: str) -> None:
        self.issues.append((path, reason))


# --- the walk ----------------------------------------------------------------------------------


def _walk_resource(cls: ModelClass, obj: dict[str, Any], path: str, walk: _Walk, *,
                   contained: bool = False) -> None:
    """Walk one resource. A contained resource shares its container's ``#id`` scope."""
    if contained:
        _walk_element(cls, obj, path, walk)
        return
    outer = walk.local_refs
    walk.local_refs = []
    _walk_element(cls, obj, path, walk)
    resources = obj.get("contained")
    contained_ids = {
        c.get("id") for c in (resources if isinstance(resources, list) else ())
        if isinstance(c, dict)
    }
    for ref_path, ref in walk.local_refs:
        if ref != "#" and ref[1:] not in contained_ids:
            walk.add(ref_path, f"{ref!r} names no contained resource of this resource")
    walk.local_refs = outer
    if cls.__name__ == "Bundle":
        _walk_bundle(obj, path, walk)


def _walk_element(cls: ModelClass, obj: dict[str, Any], path: str, walk: _Walk) -> None:
    walk.depth += 1
    if walk.depth > MAX_DEPTH:
        raise _TooDeep(path)
    try:
        _walk_members(cls, obj, path, walk)
    finally:
        walk.depth -= 1


def _walk_members(cls: ModelClass, obj: dict[str, Any], path: str, walk: _Walk) -> None:
    index = elements(cls)
    owner = cls.__name__
    for key, value in obj.items():
        info = index.get(key)
        if info is None:
            continue  # unknown names: reported by pass 1
        if value is None:
            walk.add(f"{path}.{key}", "null is not allowed in FHIR JSON (leave the element out)")
        elif value == [] or value == {}:
            walk.add(f"{path}.{key}", "empty arrays and objects are not allowed in FHIR JSON "
                                      "(leave the element out)")
        elif owner == "Bundle" and key == "entry":
            continue  # walked by _walk_bundle
        elif info.is_list and isinstance(value, list):
            for i, item in enumerate(value):
                if item is None:
                    # allowed only to line a primitive array up with its "_key" extensions
                    # (and, in "_key", to line those up with the values)
                    partner = key[1:] if key.startswith("_") else f"_{key}"
                    if partner not in obj:
                        walk.add(f"{path}.{key}[{i}]", "null is not allowed in FHIR JSON")
                    continue
                _check(owner, key, info, item, f"{path}.{key}[{i}]", walk)
        else:
            _check(owner, key, info, value, f"{path}.{key}", walk)


def _check(owner: str, key: str, info: ElementInfo, value: Any, path: str, walk: _Walk) -> None:  # noqa: C901 (one branch per element kind)
    kind = info.kind
    if kind is Kind.ELEMENT:
        if not isinstance(value, dict) or info.target is None:
            return
        coded = info.required_coding
        if coded is not None:
            problem = _coding_problem(value, coded.system, coded.codes)
            if problem:
                walk.add(path, f"{problem} (required value set {coded.name})")
        if info.is_reference:
            _note_reference(value, path, info, walk)
        _walk_element(info.target, value, path, walk)
    elif kind is Kind.CODE:
        allowed = info.required_codes
        if allowed and isinstance(value, str) and value not in allowed:
            walk.add(path, f"{value!r} is not in the required value set ({_list(allowed)})")
    elif info.temporal:
        if not isinstance(value, str):
            # fhir.resources would take a number as a Unix time; FHIR JSON dates are strings
            walk.add(path, f"a FHIR {kind.value} is a JSON string, got {type(value).__name__}")
        elif problem := _date_problem(kind, value):
            walk.add(path, problem)
    elif kind is Kind.RESOURCE:
        if isinstance(value, dict):
            _walk_any_resource(value, path, walk, contained=(key == "contained"))
    elif kind is Kind.ID:
        if isinstance(value, str) and len(value) > 64:
            walk.add(path, f"an id has at most 64 characters, this one has {len(value)}")
    elif kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            walk.add(path, f"a FHIR boolean is JSON true or false, got {_json_shown(value)}")
    elif kind is Kind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            walk.add(path, f"a FHIR integer is a JSON number without a fraction, "
                           f"got {_json_shown(value)}")
    elif kind is Kind.DECIMAL and (
        isinstance(value, bool) or not isinstance(value, int | Decimal | float)
    ):
        walk.add(path, f"a FHIR decimal is a JSON number, got {_json_shown(value)}")


def _json_shown(value: Any) -> str:
    """How a JSON value looked, for a message: ``the string '5'``, ``the number 5.0``."""
    if isinstance(value, str):
        shown = repr(value)
        return f"the string {shown[:40]}{'...' if len(shown) > 40 else ''}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | Decimal | float):
        return f"the number {value}"
    return "an array" if isinstance(value, list) else "an object"


def _date_problem(kind: Kind, value: str) -> str | None:
    if kind is Kind.DATE:
        return dates.date_problem(value)
    if kind is Kind.DATETIME:
        return dates.datetime_problem(value)
    if kind is Kind.INSTANT:
        return dates.datetime_problem(value, instant=True)
    if kind is Kind.TIME:
        return dates.time_problem(value)
    return None


def _walk_any_resource(obj: dict[str, Any], path: str, walk: _Walk, *, contained: bool) -> None:
    resource_type = obj.get("resourceType")
    cls = _resource_class(resource_type) if isinstance(resource_type, str) else None
    if cls is None:
        walk.unknown_types = True
        shown = "missing" if resource_type is None else f"{resource_type!r} is not a FHIR R4"
        walk.add(f"{path}.resourceType", f"{shown} resource type")
        return
    _walk_resource(cls, obj, path, walk, contained=contained)


def _coding_problem(concept: dict[str, Any], system: str, codes: frozenset[str]) -> str | None:
    listed = concept.get("coding")  # any JSON value: its type is pass 1's to report
    codings = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
    ours = [c for c in codings if c.get("system") == system]
    if not ours:
        return f"needs a coding from {system}"
    bad = [c.get("code") for c in ours
           if not (isinstance(c.get("code"), str) and c.get("code") in codes)]
    if bad:
        return f"{bad[0]!r} is not one of {_list(codes)}"
    return None


def _note_reference(value: dict[str, Any], path: str, info: ElementInfo, walk: _Walk) -> None:
    ref = value.get("reference")
    if not isinstance(ref, str) or not ref:
        return
    if ref.startswith("#"):
        if walk.local_refs is not None:
            walk.local_refs.append((f"{path}.reference", ref))
        return
    if walk.bundle_refs is not None:
        walk.bundle_refs.append(
            _BundleRef(walk.entry, f"{path}.reference", ref, info.reference_types)
        )


# --- Bundles -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    full_url: str | None
    resource_type: str | None
    id: str | None
    version: str | None


def _walk_bundle(bundle: dict[str, Any], path: str, walk: _Walk) -> None:
    entries_json = bundle.get("entry")
    if not isinstance(entries_json, list):
        return
    outer_refs, outer_entry = walk.bundle_refs, walk.entry
    walk.bundle_refs = []
    entries: list[_Entry] = []
    entry_cls = elements(_bundle_class())["entry"].target
    assert entry_cls is not None
    for i, entry in enumerate(entries_json):
        if not isinstance(entry, dict):
            continue
        walk.entry = i
        _walk_element(entry_cls, entry, f"{path}.entry[{i}]", walk)
        resource = entry.get("resource")
        resource = resource if isinstance(resource, dict) else {}
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        full_url = entry.get("fullUrl")
        entries.append(
            _Entry(
                index=i,
                full_url=full_url if isinstance(full_url, str) else None,
                resource_type=_str_or_none(resource.get("resourceType")),
                id=_str_or_none(resource.get("id")),
                version=_str_or_none(meta.get("versionId")) if meta else None,
            )
        )
    refs = walk.bundle_refs
    walk.bundle_refs, walk.entry = outer_refs, outer_entry
    _check_full_urls(entries, bundle.get("type"), path, walk)
    resolver = _Resolver(entries, self_contained=walk.self_contained)
    for ref in refs:
        problem = resolver.problem(ref)
        if problem:
            walk.add(ref.path, problem)


def _bundle_class() -> ModelClass:
    cls = _resource_class("Bundle")
    assert cls is not None
    return cls


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_full_urls(entries: list[_Entry], bundle_type: Any, path: str, walk: _Walk) -> None:
    if bundle_type == "history":
        return  # bdl-7 exempts history bundles
    seen: dict[tuple[str, str | None], int] = {}
    for entry in entries:
        if entry.full_url is None:
            continue
        key = (entry.full_url, entry.version)
        if key in seen:
            walk.add(
                f"{path}.entry[{entry.index}].fullUrl",
                f"{entry.full_url!r} also names entry[{seen[key]}] with the same version "
                "(bdl-7: fullUrl must be unique unless meta.versionId differs)",
            )
        else:
            seen[key] = entry.index


class _Resolver:
    """Resolves references between the entries of one Bundle (FHIR R4 bundle.html#references)."""

    def __init__(self, entries: list[_Entry], *, self_contained: bool) -> None:
        self._self_contained = self_contained
        self._by_index = {entry.index: entry for entry in entries}
        self._by_url: dict[str, list[_Entry]] = {}
        self._by_type_id: dict[str, list[_Entry]] = {}
        self._bases: set[str] = set()
        for entry in entries:
            if entry.full_url is not None:
                self._by_url.setdefault(entry.full_url, []).append(entry)
                restful = _RESTFUL_URL.fullmatch(entry.full_url)
                if restful:
                    self._bases.add(restful["base"])
            if entry.resource_type and entry.id:
                self._by_type_id.setdefault(f"{entry.resource_type}/{entry.id}", []).append(entry)

    def problem(self, ref: _BundleRef) -> str | None:
        """Why ``ref`` is unresolved or points at the wrong thing; ``None`` if it is fine."""
        text = ref.reference
        version: str | None = None
        if text.startswith(("urn:uuid:", "urn:oid:")):
            targets = self._by_url.get(text)
            if targets is None:
                return f"{text!r} does not resolve to any entry's fullUrl in this Bundle"
        elif absolute := _RESTFUL_URL.fullmatch(text):
            version = absolute["version"]
            targets = self._by_url.get(f"{absolute['base']}{absolute['type']}/{absolute['id']}")
            if targets is None:
                if self._self_contained and absolute["base"] in self._bases:
                    return f"{text!r} does not resolve to an entry in this Bundle"
                return None  # a resource on another server: not the Bundle's to hold
        elif relative := _RELATIVE_REF.fullmatch(text):
            version = relative[3]
            type_id = f"{relative[1]}/{relative[2]}"
            citing = self._by_index.get(ref.entry)
            base = _RESTFUL_URL.fullmatch(citing.full_url or "") if citing else None
            if base is not None:
                targets = self._by_url.get(f"{base['base']}{type_id}")
            else:
                targets = self._by_type_id.get(type_id)
            if targets is None:
                if self._self_contained:
                    return f"{text!r} does not resolve to an entry in this Bundle"
                return None  # a resource on the server the Bundle came from
        else:
            return None  # conditional or other forms: not resolved by Kizuna
        if version is not None:
            versions = {t.version for t in targets}
            if version not in versions and versions != {None}:
                return f"{text!r}: no entry has version {version!r}"
        allowed = ref.allowed
        kind = targets[0].resource_type
        if allowed and "Resource" not in allowed and kind not in allowed:
            return f"{text!r} is a {kind}, but this element may refer to {_list(allowed)}"
        return None


# --- pass 1: fhir.resources ---------------------------------------------------------------------


def _pydantic_path(root: str, loc: tuple[int | str, ...]) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "root" and not part.startswith(("function-", "json-")):
            path += f".{part}"
    return path


def _pydantic_reason(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind in ("missing", "model_field_validation.missing"):
        return "required element is missing"
    if kind == "extra_forbidden":
        return "not an element of this type in FHIR R4"
    message = str(error.get("msg", "invalid"))
    value = error.get("input")
    if isinstance(value, str | int | float | bool | Decimal) and not isinstance(value, dict):
        shown = repr(value)
        return f"{message} (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return message


def _structure_issues(
    cls: ModelClass, data: dict[str, Any], root: str
) -> tuple[FHIRAbstractModel | None, list[Issue]]:
    try:
        return cls.model_validate(data), []
    except ValidationError as exc:
        return None, [(_pydantic_path(root, e["loc"]), _pydantic_reason(e)) for e in exc.errors()]


EntryMapper = Callable[[Callable[[str, dict[str, Any]], list[Issue]], list[str],
                        list[dict[str, Any]]], Iterable[list[Issue]]]
"""How a Bundle's entry resources are checked: ``map(check, kinds, resources)`` — the builtin
by default; the importer passes its process pool's ``map`` (all cores). It must start the
work when called (``ProcessPoolExecutor.map`` does): the walk runs meanwhile."""


def entry_structure_issues(kind: str, resource: dict[str, Any]) -> list[Issue]:
    """Pass 1 of one entry resource of a known ``kind``, its paths relative to the resource
    (``.status``); a module-level function so that a process pool can run it."""
    entry_cls = _resource_class(kind)
    assert entry_cls is not None
    _, found = _structure_pass(entry_cls, resource)
    return [(p[len(entry_cls.__name__):], r) for p, r in found]


def _bundle_entries(obj: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]] | None:
    """The entries of a Bundle whose resource has a known type: (index, type, resource)."""
    entries = obj.get("entry")
    if not isinstance(entries, list):
        return None
    found = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(kind, str) and _resource_class(kind) is not None:
            assert isinstance(resource, dict)
            found.append((i, kind, resource))
    return found


def _structure_pass(
    cls: ModelClass, obj: dict[str, Any],
    checked: Iterable[list[Issue]] | None = None,
) -> tuple[FHIRAbstractModel | None, list[Issue]]:
    """Pass 1. A Bundle's entry resources are validated one by one with their own classes
    (less CPU than through fhir.resources' nested validators), the Bundle itself without
    them; the paths are the same either way. ``checked``: the entries' results already on
    their way (an :data:`EntryMapper` started before the walk), in entry order."""
    root = cls.__name__
    known = _bundle_entries(obj) if root == "Bundle" else None
    if known is None:
        return _structure_issues(cls, obj, root)
    entries: list[Any] = obj["entry"]
    if checked is None:
        checked = map(entry_structure_issues, [k for _, k, _ in known], [r for _, _, r in known])
    issues: list[Issue] = []
    for (i, _, _), found in zip(known, checked, strict=True):
        issues.extend((f"{root}.entry[{i}].resource{p}", r) for p, r in found)
    skeleton = list(entries)
    for i, _, _ in known:
        skeleton[i] = {k: v for k, v in entries[i].items() if k != "resource"}
    _, found = _structure_issues(cls, {**obj, "entry": skeleton}, root)
    return None, found + issues


_PLACEHOLDER: dict[str, Any] = {"resourceType": "Basic", "code": {"text": "placeholder"}}


def _with_placeholders(value: Any) -> Any:
    """A copy of ``value`` with every object of an unknown ``resourceType`` replaced (a
    non-string one too: fhir.resources would fail on it with a TypeError)."""
    if isinstance(value, dict):
        kind = value.get("resourceType")
        if "resourceType" in value and not (isinstance(kind, str) and _resource_class(kind)):
            return dict(_PLACEHOLDER)
        return {k: _with_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_placeholders(v) for v in value]
    return value


# --- public ------------------------------------------------------------------------------------


def _sort_key(issue: Issue) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for token in re.findall(r"\[(\d+)\]|([^.\[\]]+)", issue[0]):
        index, name = token
        parts.append((0, int(index)) if index else (1, name))
    return tuple(parts)


def find_issues(
    data: FhirJson, *, self_contained: bool = False, entry_mapper: EntryMapper | None = None
) -> tuple[ValidatedResource | None, list[Issue]]:
    """Every problem of ``data`` as ``(path, reason)``, and the validated resource if none.

    JSON that cannot be decoded raises :class:`FhirValidationError` at once.
    ``entry_mapper``: how a Bundle's entry resources are checked (:data:`EntryMapper`; the
    same problems either way).
    """
    obj = load_json(data)
    resource_type = obj.get("resourceType")
    cls = _resource_class(resource_type) if isinstance(resource_type, str) else None
    if cls is None:
        shown = "missing" if resource_type is None else f"{resource_type!r} is not a FHIR R4"
        return None, [("resourceType", f"{shown} resource type")]
    walk = _Walk(self_contained=self_contained)
    root = cls.__name__
    model: FHIRAbstractModel | None = None
    structural: list[Issue] = []
    try:
        checked: Iterable[list[Issue]] | None = None
        known = _bundle_entries(obj) if entry_mapper is not None and root == "Bundle" else None
        if entry_mapper is not None and known:
            # started now: the entries are checked elsewhere while the walk runs here
            checked = entry_mapper(entry_structure_issues, [k for _, k, _ in known],
                                   [r for _, _, r in known])
        _walk_resource(cls, obj, root, walk)
        if walk.unknown_types:
            # fhir.resources cannot parse an unknown nested resourceType (it raises KeyError).
            # The walk has reported those; check the rest with each replaced by a valid
            # placeholder, so that paths (list indices) stay the same.
            _, structural = _structure_pass(cls, _with_placeholders(obj))
        else:
            model, structural = _structure_pass(cls, obj, checked)
    except _TooDeep as deep:
        return None, [(deep.path, f"nested deeper than {MAX_DEPTH} elements")]
    except RecursionError:
        return None, [(root, "nested too deeply to validate")]
    ours = {path for path, _ in walk.issues}
    issues = walk.issues + [(p, r) for p, r in structural if p not in ours]
    issues.sort(key=_sort_key)
    if issues:
        return None, issues
    return ValidatedResource(resource_type=root, data=obj, _model=model), []


def validate(data: FhirJson, *, self_contained: bool = False,
             entry_mapper: EntryMapper | None = None) -> ValidatedResource:
    """Validate one FHIR R4 resource or Bundle (JSON bytes, text, or a decoded object).

    ``self_contained``: every reference inside a Bundle must resolve inside it, except
    absolute URLs to servers the Bundle does not use as a base. Raises
    :class:`~kizuna.errors.FhirValidationError` with every ``(path, reason)`` found.
    """
    resource, issues = find_issues(data, self_contained=self_contained,
                                   entry_mapper=entry_mapper)
    if issues or resource is None:
        raise FhirValidationError(issues or [("", "invalid")])
    return resource


def iter_issues(data: FhirJson, *, self_contained: bool = False) -> Iterator[Issue]:
    """The ``(path, reason)`` problems of ``data``, in document order (none if valid)."""
    yield from find_issues(data, self_contained=self_contained)[1]


def _list(values: frozenset[str] | tuple[str, ...]) -> str:
    ordered = sorted(values) if isinstance(values, frozenset) else list(values)
    return ", ".join(ordered)


__all__ = ["EntryMapper", "Issue", "ValidatedResource", "entry_structure_issues", "find_issues",
           "iter_issues", "validate"]
