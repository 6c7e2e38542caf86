"""FHIR R4 for Kizuna: validation, canonical JSON, scope labels, Bundle import.

Read straight down: :func:`validate` a resource or Bundle (every problem as ``(path, reason)``),
:func:`canonical_json` for the bytes to encrypt, :func:`scope_label` for the scope a record
belongs to, :func:`import_bundle` to turn a patient Bundle into one record per resource
(:func:`import_ndjson` for bulk-data NDJSON files, with flat memory).
docs/fhir.md describes the rules.
"""

from kizuna.storage.fhir.canonical import CONTENT_TYPE, canonical_json, is_canonical
from kizuna.storage.fhir.importer import (
    ImportedBundle,
    ImportedRecord,
    import_bundle,
    import_resource,
    record_for,
)
from kizuna.storage.fhir.ndjson import ImportedNdjson, import_ndjson
from kizuna.storage.fhir.outcome import operation_outcome
from kizuna.storage.fhir.scopes import parse_scope_label, scope_label
from kizuna.storage.fhir.validate import ValidatedResource, find_issues, validate

__all__ = [
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
