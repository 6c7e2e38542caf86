"""The public surface of kizuna.storage.fhir is one sorted list, pinned here."""

from __future__ import annotations

import subprocess
import sys

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


LIGHT_IMPORTS = """
import sys
import kizuna.storage.fhir.canonical, kizuna.storage.fhir.jsonio, kizuna.storage.fhir.dates
from kizuna.storage.fhir import CONTENT_TYPE
assert CONTENT_TYPE == "application/fhir+json"
print(sorted(name for name in sys.modules if name.split(".")[0] in ("fhir", "fhir_core")
             or name == "kizuna.storage.fhir.model_index"))
import kizuna.storage.fhir.importer  # also imports the submodule named validate
from kizuna.storage.fhir import validate
import kizuna.storage.fhir as fhir
print(callable(validate), fhir.validate is validate, "fhir.resources" in sys.modules)
"""


def test_light_modules_do_not_load_the_fhir_models() -> None:
    """The package's names load when first used: canonical JSON, its JSON reader and the dates
    load no FHIR model (~0.1 CPU-s), and ``validate`` stays the function, not its module."""
    done = subprocess.run([sys.executable, "-c", LIGHT_IMPORTS], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "True True True"], done.stdout + done.stderr
