"""The public surface of kizuna.storage.fhir is one sorted list, pinned here."""

from __future__ import annotations

import kizuna.storage.fhir as fhir


def test_public_surface() -> None:
    assert fhir.__all__ == sorted(fhir.__all__)
    assert fhir.__all__ == [
        "CONTENT_TYPE",
        "ImportedBundle",
        "ImportedNdjson",
        "ImportedRecord",
        "ValidatedResource",
        "canonical_json",
        "find_issues",
        "import_bundle",
        "import_ndjson",
        "import_resource",
        "is_canonical",
        "operation_outcome",
        "parse_scope_label",
        "record_for",
        "scope_label",
        "validate",
    ]
    for name in fhir.__all__:
        assert getattr(fhir, name) is not None
