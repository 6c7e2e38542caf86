"""The FHIR rules of this package as JSON, for the web page's validator (web/src/importer).

The page validates what a patient drops before anything is encrypted (the server never sees
plaintext), and it must accept and refuse exactly what :func:`kizuna.storage.fhir.import_bundle`
does. So the page does not carry a hand copy of the rules: this module writes them from their
one home here — the element index of the ``fhir.resources`` R4B classes (:mod:`.model_index`:
kinds, lists, targets, allowed reference types, required elements, choice groups, primitive
types and their patterns and bounds), the required value sets (:mod:`.valuesets`), the scope
vocabulary (:mod:`.scopes`), the timeline dates (:mod:`.importer`) and the depth limits
(:mod:`kizuna.jsondepth`, :data:`.validate.MAX_DEPTH`).

``python -m kizuna.storage.fhir.webrules web/src/importer/rules.generated.json`` writes the
file; tests/web/test_import_parity.py fails when the committed file differs from :func:`rules`.
"""

from __future__ import annotations

import json
import sys
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from kizuna.jsondepth import MAX_JSON_DEPTH
from kizuna.storage.fhir.canonical import CONTENT_TYPE
from kizuna.storage.fhir.importer import TIMELINE_DATE
from kizuna.storage.fhir.model_index import Kind, ModelClass, elements, resource_class
from kizuna.storage.fhir.scopes import CATEGORY_SYSTEMS
from kizuna.storage.fhir.validate import MAX_DEPTH

FORMAT = 1
"""Bumped when the shape of the JSON changes (the page refuses a file of another format)."""

_ID_LENGTH = 64  # validate._check: an id has at most 64 characters (Kizuna's own rule)


def _all_resource_types() -> list[str]:
    """Every R4 resource type ``fhir.resources`` R4B knows (what :func:`resource_class` takes)."""
    from fhir.resources.R4B import fhirtypes

    names = (n[: -len("Type")] for n in dir(fhirtypes) if n.endswith("Type") and n[:1].isupper())
    return sorted(n for n in names if resource_class(n) is not None)


def _primitive(annotation: Any) -> tuple[str | None, dict[str, Any]]:
    """The FHIR primitive an annotation holds (its ``__visit_name__``) and its pydantic
    constraints (pattern, min/max length, ge/le), or ``(None, {})`` for a complex type."""
    current = annotation
    while True:
        origin = typing.get_origin(current)
        if origin is typing.Union or origin is __import__("types").UnionType:
            options = [a for a in typing.get_args(current) if a is not type(None)]
            if len(options) != 1:
                return None, {}
            current = options[0]
        elif origin is list:
            current = typing.get_args(current)[0]
        elif origin is typing.Annotated:
            base, *metadata = typing.get_args(current)
            for meta in metadata:
                name = getattr(meta, "__visit_name__", None)
                if name is None:
                    continue
                constraints: dict[str, Any] = {}
                parts: Iterable[Any] = meta if isinstance(meta, Iterable) else ()
                for part in parts:
                    for attr, key in (("pattern", "pattern"), ("min_length", "minLength"),
                                      ("max_length", "maxLength"), ("ge", "ge"), ("le", "le")):
                        value = getattr(part, attr, None)
                        if value is not None:
                            constraints[key] = value
                constraints["json"] = _json_type(base)
                return str(name), constraints
            return None, {}
        else:
            if current is bool:
                return "boolean", {"json": "boolean"}
            return None, {}


def _json_type(base: Any) -> str:
    if base is bool:
        return "boolean"
    if base is int:
        return "integer"
    if base is str:
        return "string"
    return "other"  # decimals and dates: checked by Kizuna's walk, not by type here


class _Builder:
    def __init__(self) -> None:
        self.classes: dict[str, dict[str, Any]] = {}
        self.primitives: dict[str, dict[str, Any]] = {}
        self.code_sets: list[list[str]] = []
        self._code_index: dict[frozenset[str], int] = {}

    def codes(self, codes: frozenset[str]) -> int:
        if codes not in self._code_index:
            self._code_index[codes] = len(self.code_sets)
            self.code_sets.append(sorted(codes))
        return self._code_index[codes]

    def add(self, cls: ModelClass) -> None:
        name = cls.__name__
        if name in self.classes:
            return
        entry: dict[str, Any] = {}
        self.classes[name] = entry  # before recursing: element types are recursive
        instance = cls.model_construct()
        by_python = {field: (info.alias or field) for field, info in cls.model_fields.items()}
        required_primitives = {by_python[f]: by_python.get(ext or "")
                               for f, ext in instance.get_required_fields()}
        members: dict[str, list[Any]] = {}
        for field_name, field in cls.model_fields.items():
            alias = field.alias or field_name
            if field_name == "fhir_comments":
                continue
            info = elements(cls)[alias]
            primitive, constraints = _primitive(field.annotation)
            if primitive is not None:
                self.primitives.setdefault(primitive, constraints)
            if info.target is not None:
                self.add(info.target)
            required = 0
            if alias in required_primitives:
                required = 2
            elif field.is_required():
                required = 1
            members[alias] = [
                info.kind.value,
                1 if info.is_list else 0,
                info.target.__name__ if info.target is not None else None,
                list(info.reference_types) or None,
                required,
                primitive,
                self.codes(info.required_codes) if info.required_codes else None,
                ([info.required_coding.name, info.required_coding.system,
                  self.codes(info.required_coding.codes)] if info.required_coding else None),
            ]
        entry["e"] = members
        entry["req"] = {k: v for k, v in required_primitives.items()}
        groups = instance.get_one_of_many_fields()
        if groups:
            entry["oneOf"] = [
                [prefix, bool((cls.model_fields[fields[0]].json_schema_extra or {})
                              .get("one_of_many_required")),  # type: ignore[union-attr]
                 [by_python[f] for f in fields]]
                for prefix, fields in groups.items()
            ]


def rules() -> dict[str, Any]:
    """Everything the page's validator needs, as one JSON-able dict (deterministic)."""
    builder = _Builder()
    resources = _all_resource_types()
    for name in resources:
        cls = resource_class(name)
        assert cls is not None
        builder.add(cls)
    # A resource without a resourceType is checked by fhir.resources as the base Resource.
    builder.add(get_fhir_model_class("Resource"))
    categories = {
        resource_type: {
            "element": vocab.element,
            "coded": vocab.coded,
            "systems": {system: sorted(codes) for system, codes in vocab.systems.items()},
        }
        for resource_type, vocab in CATEGORY_SYSTEMS.items()
    }
    return {
        "format": FORMAT,
        "source": "kizuna.storage.fhir.webrules (generated: do not edit)",
        "contentType": CONTENT_TYPE,
        "limits": {"jsonDepth": MAX_JSON_DEPTH, "elementDepth": MAX_DEPTH,
                   "idLength": _ID_LENGTH},
        "kinds": [k.value for k in Kind],
        "resources": resources,
        "primitives": dict(sorted(builder.primitives.items())),
        "codeSets": builder.code_sets,
        "classes": dict(sorted(builder.classes.items())),
        "categories": categories,
        "timelineDate": {k: list(v) for k, v in sorted(TIMELINE_DATE.items())},
    }


def render() -> str:
    """The file's text: compact JSON, one trailing newline."""
    return json.dumps(rules(), separators=(",", ":"), sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kizuna.storage.fhir.webrules OUTPUT.json", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
