"""FHIR R4 for Kizuna: validation, canonical JSON, scope labels, Bundle import.

Read straight down, each name from its module: :func:`~kizuna.storage.fhir.validate.validate` a
resource or Bundle (every problem as ``(path, reason)``),
:func:`~kizuna.storage.fhir.canonical.canonical_json` for the bytes to encrypt,
:func:`~kizuna.storage.fhir.scopes.scope_label` for the scope a record belongs to,
:func:`~kizuna.storage.fhir.importer.import_bundle` to turn a patient Bundle into one record per
resource (:func:`~kizuna.storage.fhir.ndjson.import_ndjson` for bulk-data NDJSON files, with flat
memory). docs/fhir.md describes the rules.

The package itself re-exports nothing: importing one of its modules loads only what that module
needs, so a process that uses :mod:`~kizuna.storage.fhir.canonical`,
:mod:`~kizuna.storage.fhir.jsonio` or :mod:`~kizuna.storage.fhir.dates` does not load the FHIR
models (fhir.resources, ~0.1 CPU-s).
"""
