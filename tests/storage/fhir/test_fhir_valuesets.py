"""The required-binding table matches the FHIR models it is applied to."""

from __future__ import annotations

import typing

import pytest
from fhir.resources.R4B import get_fhir_model_class

from kizuna.storage.fhir.model_index import Kind, elements
from kizuna.storage.fhir.valuesets import REQUIRED_CODES, REQUIRED_CODINGS


@pytest.mark.parametrize("key", sorted(REQUIRED_CODES), ids=lambda k: ".".join(k))
def test_every_required_code_entry_names_a_code_element(key: tuple[str, str]) -> None:
    owner, element = key
    info = elements(get_fhir_model_class(owner))[element]
    assert info.kind is Kind.CODE
    assert REQUIRED_CODES[key], "an empty value set would reject every code"


@pytest.mark.parametrize("key", sorted(REQUIRED_CODES), ids=lambda k: ".".join(k))
def test_codes_agree_with_the_enum_fhir_resources_knows(key: tuple[str, str]) -> None:
    """fhir.resources lists the allowed codes of most of these elements (all of them, or the
    first few followed by "+"); ours must equal a complete list and include a partial one —
    an independent check against typos and omissions in the table."""
    owner, element = key
    cls = get_fhir_model_class(owner)
    field = next(f for n, f in cls.model_fields.items() if (f.alias or n) == element)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    listed = typing.cast(list[str], extra.get("enum_values") or [])
    if "+" in listed:
        assert {code for code in listed if code != "+"} <= REQUIRED_CODES[key]
    elif listed:
        assert set(listed) == REQUIRED_CODES[key]


@pytest.mark.parametrize("key", sorted(REQUIRED_CODINGS), ids=lambda k: ".".join(k))
def test_every_required_coding_entry_names_a_codeable_concept(key: tuple[str, str]) -> None:
    owner, element = key
    info = elements(get_fhir_model_class(owner))[element]
    assert info.kind is Kind.ELEMENT and info.target is not None
    assert info.target.__name__ == "CodeableConcept"
