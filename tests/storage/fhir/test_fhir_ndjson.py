"""NDJSON (FHIR Bulk Data) import: the Synthea patient, one file per resource type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kizuna.errors import FhirValidationError, InputError
from kizuna.storage.fhir.importer import import_bundle
from kizuna.storage.fhir.ndjson import import_ndjson


def write_bulk_export(bundle: dict[str, Any], directory: Path) -> list[Path]:
    """The Bundle's resources as a bulk export: <Type>.ndjson, one resource per line."""
    by_type: dict[str, list[str]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    paths = []
    for resource_type, lines in sorted(by_type.items()):
        path = directory / f"{resource_type}.ndjson"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        paths.append(path)
    return paths


def test_bulk_export_imports_like_the_bundle(
    synthea_large_bundle: dict[str, Any], tmp_path: Path
) -> None:
    files = write_bulk_export(synthea_large_bundle, tmp_path)
    imported = import_ndjson(*files)
    records = list(imported)
    assert len(records) == len(imported) == len(synthea_large_bundle["entry"])
    from_bundle = {r.fhir_id: r for r in import_bundle(synthea_large_bundle)}
    for record in records:
        same = from_bundle[record.fhir_id]
        assert (record.content, record.scope_label, record.date) == (
            same.content, same.scope_label, same.date)


def test_every_problem_with_file_and_line(
    synthea_large_bundle: dict[str, Any], tmp_path: Path
) -> None:
    files = write_bulk_export(synthea_large_bundle, tmp_path)
    observations = tmp_path / "Observation.ndjson"
    lines = observations.read_text("utf-8").splitlines()
    second = json.loads(lines[1])
    second["status"] = "bogus"
    third = json.loads(lines[2])
    third["subject"]["reference"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    lines[1], lines[2] = json.dumps(second), json.dumps(third)
    lines.append("{not json")
    observations.write_text("\n".join(lines) + "\n", "utf-8")
    last = len(lines)
    with pytest.raises(FhirValidationError) as caught:
        import_ndjson(*files)
    assert [(p, r.split(" (")[0]) for p, r in caught.value.issues] == [
        ("Observation.ndjson:2:Observation.status",
         "'bogus' is not in the required value set"),
        (f"Observation.ndjson:{last}:", caught.value.issues[1][1].split(" (")[0]),
        ("Observation.ndjson:3:Observation.subject.reference",
         "'urn:uuid:00000000-0000-4000-8000-000000000000' names no resource in these files"),
    ]
    assert "not valid JSON" in caught.value.issues[1][1]


def test_a_file_changed_between_passes_stops_the_import(
    synthea_large_bundle: dict[str, Any], tmp_path: Path
) -> None:
    files = write_bulk_export(synthea_large_bundle, tmp_path)
    imported = import_ndjson(*files)
    first = files[0]
    lines = first.read_text("utf-8").splitlines()
    lines[0] = lines[0].replace('"id": "', '"id": "x', 1)
    first.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(InputError, match="changed since it was validated"):
        list(imported)


def test_missing_files_are_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        import_ndjson(tmp_path / "nope.ndjson")
    with pytest.raises(InputError, match="no NDJSON files"):
        import_ndjson()
