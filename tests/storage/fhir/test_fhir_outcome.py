"""Validation problems reported as a FHIR OperationOutcome (what the FHIR facade answers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kizuna.errors import FhirValidationError
from kizuna.storage.fhir.outcome import issue_code, operation_outcome
from kizuna.storage.fhir.validate import validate

Example = Callable[[str], dict[str, Any]]


def test_outcome_of_a_broken_example_is_itself_valid_fhir(example: Example) -> None:
    data = example("encounter/example1")
    data["status"] = "done"
    del data["class"]
    data["period"] = {"start": "2023-02-30"}
    with pytest.raises(FhirValidationError) as caught:
        validate(data)
    outcome = operation_outcome(caught.value.issues)
    validate(outcome)  # an OperationOutcome Kizuna makes passes Kizuna's own checks
    by_path = {i["expression"][0]: i for i in outcome["issue"]}
    assert by_path["Encounter.status"]["code"] == "code-invalid"
    assert by_path["Encounter.class"]["code"] == "required"
    assert by_path["Encounter.period.start"]["code"] == "value"
    assert all(i["severity"] == "error" for i in outcome["issue"])


def test_paths_that_are_not_fhirpath_stay_in_the_diagnostics() -> None:
    outcome = operation_outcome([("", "not valid JSON: Expecting value"),
                                 ("Observation.ndjson:3:Observation.status", "'x' is not in "
                                  "the required value set (final)")])
    first, second = outcome["issue"]
    assert "expression" not in first and first["code"] == "structure"
    assert second["diagnostics"].startswith("Observation.ndjson:3:Observation.status: ")
    validate(outcome)


def test_codes() -> None:
    assert issue_code("'urn:uuid:1' does not resolve to any entry's fullUrl") == "not-found"
    assert issue_code("an id has at most 64 characters, this one has 65") == "too-long"
    assert issue_code("String should match pattern") == "invalid"
    assert operation_outcome([])["issue"][0]["severity"] == "information"
