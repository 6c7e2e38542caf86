"""A Bundle's entry resources checked on the import's process pool (all cores) while the
importing process walks the Bundle: the same problems, named by the same paths, as checked
alone — a bad Bundle is refused whole before anything is sealed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from kizuna.client.importer import bundle_source, start_pool
from kizuna.errors import FhirValidationError
from kizuna.storage.fhir.importer import ImportedBundle


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    started = start_pool(2)
    yield started
    started.shutdown(wait=True)


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [_entry(r) for r in resources]}


PATIENT = {"resourceType": "Patient", "id": "0c8f7a52-5a7c-4bb0-9a38-3f1a4e0c0001",
           "birthDate": "1950-02-03"}


def _observation(n: int, **changes: Any) -> dict[str, Any]:
    obs = {"resourceType": "Observation", "id": f"0c8f7a52-5a7c-4bb0-9a38-3f1a4e0c{n:04d}",
           "status": "final", "code": {"text": f"weight {n}"},
           "subject": {"reference": f"urn:uuid:{PATIENT['id']}"},
           "effectiveDateTime": "2020-01-01T10:00:00Z",
           "valueQuantity": {"value": 70 + n, "unit": "kg"}}
    obs.update(changes)
    return obs


def _source(bundle: dict[str, Any], pool: ProcessPoolExecutor | None) -> ImportedBundle:
    raw = json.dumps(bundle).encode()
    source = bundle_source(json.loads(raw), raw, name="b.json", pool=pool)
    assert source.digest == hashlib.sha256(raw).digest()
    assert isinstance(source.records, ImportedBundle)
    return source.records


def test_a_good_bundle_checked_on_the_pool_gives_the_same_records(
        pool: ProcessPoolExecutor) -> None:
    bundle = _bundle(PATIENT, *(_observation(n) for n in range(2, 300)))
    alone, pooled = _source(bundle, None), _source(bundle, pool)
    assert [r.content for r in pooled] == [r.content for r in alone]
    assert len(pooled) == 299


def test_a_bad_bundle_checked_on_the_pool_names_the_same_fields(
        pool: ProcessPoolExecutor) -> None:
    bundle = _bundle(
        PATIENT, *(_observation(n) for n in range(2, 200)),
        _observation(200, status="finished"),  # not a code of the value set
        _observation(201, valueQuantity={"value": "heavy"}),  # not a decimal (pass 1)
        _observation(202, subject={"reference": "urn:uuid:not-in-the-bundle"}),
        {"resourceType": "Nonsense", "id": "x"},
    )
    with pytest.raises(FhirValidationError) as alone:
        _source(bundle, None)
    with pytest.raises(FhirValidationError) as pooled:
        _source(bundle, pool)
    assert pooled.value.issues == alone.value.issues
    paths = [path for path, _ in pooled.value.issues]
    assert any(p.startswith("Bundle.entry[199].resource.status") for p in paths)
    assert any(p.startswith("Bundle.entry[200].resource.valueQuantity.value") for p in paths)
    assert any(p.startswith("Bundle.entry[201].resource.subject") for p in paths)
    assert any(p.startswith("Bundle.entry[202].resource") for p in paths)


def test_only_pass_one_problems_are_found_the_same_on_the_pool(
        pool: ProcessPoolExecutor) -> None:
    """A problem only fhir.resources' models see (pass 1, the part that runs on the pool)."""
    bundle = _bundle(PATIENT, _observation(2, valueQuantity={"value": "heavy"}))
    with pytest.raises(FhirValidationError) as alone:
        _source(bundle, None)
    with pytest.raises(FhirValidationError) as pooled:
        _source(bundle, pool)
    assert pooled.value.issues == alone.value.issues
    assert pooled.value.issues[0][0].startswith("Bundle.entry[1].resource.valueQuantity")
