"""Scope labels (FHIR-style) and their per-patient blinding."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.crypto.scopes import (
    FHIR_R4_RESOURCE_TYPES,
    RESOURCE_TYPES,
    ScopeKey,
    blind_scope,
    covering_labels,
    parse_scope_label,
    scope_label,
)
from kizuna.errors import InputError

ALICE = ScopeKey(hashlib.sha256(b"alice").digest())
BOB = ScopeKey(hashlib.sha256(b"bob").digest())


@pytest.mark.parametrize(
    "label",
    [
        "Observation",
        "Observation:laboratory",
        "Observation:vital-signs",
        "Observation:social-history",
        "DocumentReference",
        "ImagingStudy",
        "Condition:problem-list-item",
        "DiagnosticReport:LAB",
        "MedicationRequest",
        "Citation",  # R4B
    ],
)
def test_valid_labels(label: str) -> None:
    assert scope_label(label) == label
    parsed = parse_scope_label(label)
    assert parsed.label == label


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("", "is empty"),
        ("observation", "did you mean 'Observation'"),
        ("Observations", "not a FHIR R4 resource type"),
        ("mental health", "not a FHIR R4 resource type"),
        ("Observation:", "empty category"),
        ("Observation:lab oratory", "is not a code"),
        ("Observation:a:b", "is not a code"),
        ("Observation:-lab", "is not a code"),
        ("Observation:laboratoire\u00e9", "is not a code"),
        ("Observation:" + "x" * 65, "at most 64"),
        (":laboratory", "not a FHIR R4 resource type"),
    ],
)
def test_invalid_labels_name_field_and_reason(label: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        scope_label(label, field="records[3].scope")
    assert caught.value.field == "records[3].scope"
    assert reason in caught.value.reason


def test_not_a_string() -> None:
    with pytest.raises(InputError, match="must be a string"):
        scope_label(42)  # type: ignore[arg-type]


def test_r4_has_every_resource_type() -> None:
    assert len(FHIR_R4_RESOURCE_TYPES) == 146
    assert {
        "Patient",
        "Observation",
        "Bundle",
        "Binary",
        "DocumentReference",
    } <= FHIR_R4_RESOURCE_TYPES
    assert (
        "Resource" not in FHIR_R4_RESOURCE_TYPES and "DomainResource" not in FHIR_R4_RESOURCE_TYPES
    )


def test_blinding_is_stable_and_per_patient() -> None:
    label = scope_label("Observation:laboratory")
    first = blind_scope(ALICE, label)
    assert len(first) == 32
    assert blind_scope(ScopeKey(ALICE.reveal()), label) == first  # stable
    assert blind_scope(BOB, label) != first  # per patient
    assert blind_scope(ALICE, "Observation") != first  # per label
    assert blind_scope(ALICE, "Observation:Laboratory") != first  # case-sensitive
    assert first == hmac.new(ALICE.reveal(), b"Observation:laboratory", hashlib.sha256).digest()
    assert b"Observation" not in first


def test_blinding_validates_and_needs_a_scope_key() -> None:
    with pytest.raises(InputError):
        blind_scope(ALICE, "observation")
    with pytest.raises(TypeError):
        blind_scope(ALICE.reveal(), "Observation")  # type: ignore[arg-type]


def test_covering_labels() -> None:
    assert covering_labels(scope_label("Observation:laboratory")) == (
        "Observation:laboratory",
        "Observation",
    )
    assert covering_labels(scope_label("ImagingStudy")) == ("ImagingStudy",)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_is_either_a_valid_label_or_an_input_error(text: str) -> None:
    try:
        parsed = parse_scope_label(text)
    except InputError as error:
        assert error.field == "scope" and error.reason
    else:
        assert parsed.label == text
        assert parsed.resource_type in RESOURCE_TYPES
        assert text.isascii() and " " not in text
