"""Where kizuna.storage.fhir's names live: each in its own module (the package re-exports
nothing, so importing a light module does not load the FHIR models)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

HOMES = {
    "canonical": ["CONTENT_TYPE", "canonical_json", "is_canonical"],
    "importer": ["ImportedBundle", "ImportedRecord", "import_bundle", "import_resource",
                 "record_for"],
    "ndjson": ["ImportedNdjson", "import_ndjson"],
    "outcome": ["operation_outcome"],
    "scopes": ["parse_scope_label", "scope_label"],
    "validate": ["ValidatedResource", "find_issues", "validate"],
}


@pytest.mark.parametrize("module", sorted(HOMES))
def test_each_name_lives_in_its_module(module: str) -> None:
    loaded = importlib.import_module(f"kizuna.storage.fhir.{module}")
    for name in HOMES[module]:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_the_package_re_exports_nothing() -> None:
    import kizuna.storage.fhir as fhir

    assert not hasattr(fhir, "__all__")
    assert not hasattr(fhir, "__getattr__")


LIGHT_IMPORTS = """
import sys
import kizuna.storage.fhir.canonical, kizuna.storage.fhir.jsonio, kizuna.storage.fhir.dates
from kizuna.storage.fhir.canonical import CONTENT_TYPE
assert CONTENT_TYPE == "application/fhir+json"
print(sorted(name for name in sys.modules if name.split(".")[0] in ("fhir", "fhir_core")
             or name == "kizuna.storage.fhir.model_index"))
import kizuna.storage.fhir.importer
print("fhir.resources" in sys.modules)
"""


def test_light_modules_do_not_load_the_fhir_models() -> None:
    """Canonical JSON, its JSON reader and the dates load no FHIR model (~0.1 CPU-s); the
    importer does (the check that the probe sees the models at all)."""
    done = subprocess.run([sys.executable, "-c", LIGHT_IMPORTS], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "True"], done.stdout + done.stderr
