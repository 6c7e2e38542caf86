"""FHIR R4 for Kizuna: validation, canonical JSON, scope labels, Bundle import.

Read straight down: :func:`validate` a resource or Bundle (every problem as ``(path, reason)``),
:func:`canonical_json` for the bytes to encrypt, :func:`scope_label` for the scope a record
belongs to, :func:`import_bundle` to turn a patient Bundle into one record per resource
(:func:`import_ndjson` for bulk-data NDJSON files, with flat memory).
docs/fhir.md describes the rules.

The names below are loaded from their modules when first used (PEP 562), not when the
package is imported: importing any ``kizuna.storage.fhir.<module>`` runs this file first, and
most of the modules load the FHIR models (fhir.resources, ~0.1 CPU-s), which a process that
needs only, say, :data:`CONTENT_TYPE` or :mod:`~kizuna.storage.fhir.jsonio` must not pay for.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "CONTENT_TYPE": "canonical",
    "canonical_json": "canonical",
    "is_canonical": "canonical",
    "ImportedBundle": "importer",
    "ImportedRecord": "importer",
    "import_bundle": "importer",
    "import_resource": "importer",
    "record_for": "importer",
    "ImportedNdjson": "ndjson",
    "import_ndjson": "ndjson",
    "operation_outcome": "outcome",
    "parse_scope_label": "scopes",
    "scope_label": "scopes",
    "ValidatedResource": "validate",
    "find_issues": "validate",
    "validate": "validate",
}
"""Each public name and the module of this package that defines it."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


class _Package(types.ModuleType):
    """The package's module: importing the submodule ``validate`` binds it on the package
    under its name, which is also the public function's; the package's ``validate`` stays the
    function, as it was when this file imported every name at once."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "validate" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
