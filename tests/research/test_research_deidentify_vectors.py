"""The page's de-identification data is what kizuna/research/deidentify.py says: the committed
rules (web/src/research/rules.generated.json, read by web/src/research/deidentify.ts; for DICOM
web/src/research/dicom_rules.generated.json, read by web/src/research/dicom.ts) and the
cross-language vectors (tests/vectors/deidentify.json and deidentify_dicom.json, checked in Node
and Chromium) equal what
the generator, tests/research/deidentify_vectors.py, derives from the Python module now. A
change of a Python rule fails here until the generator is re-run (and the page's tests then
show whether the port follows)."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pydicom

GENERATOR = Path(__file__).with_name("deidentify_vectors.py")
"""``python tests/research/deidentify_vectors.py`` rewrites both files."""


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kizuna_deidentify_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_rules_are_the_python_modules() -> None:
    module = _generator()
    assert module.RULES.read_text("utf-8") == module.render_rules(), \
        "web/src/research/rules.generated.json is stale: re-run the generator"


def test_committed_vectors_are_what_python_derives() -> None:
    module = _generator()
    assert module.VECTORS.read_text("utf-8") == module.render_vectors(), \
        "tests/vectors/deidentify.json is stale: re-run the generator"


def test_the_vectors_exercise_the_rules() -> None:
    """Each rule the page ports shows in the vectors (so a port that skips one fails there)."""
    spec = json.loads(_generator().VECTORS.read_text("utf-8"))
    outputs = "\n".join(c["output"] or "" for c in spec["cases"])
    inputs = "\n".join(c["input"] for c in spec["cases"])
    assert "90+" in outputs and '"comparator":">="' in outputs and "2.25." in outputs
    assert '"contentType":"text/plain"' in outputs and "O'Brien" in inputs
    assert "O'Brien" not in outputs and "999-12-3456" not in outputs and "Boston" not in outputs
    assert any(c["output"] is None for c in spec["cases"])
    assert {k["offset_days"] > 0 for k in spec["keys"]} == {True, False}


def test_committed_dicom_rules_and_vectors_are_what_python_derives() -> None:
    module = _generator()
    assert module.DICOM_RULES.read_text("utf-8") == module.render_dicom_rules(), \
        "web/src/research/dicom_rules.generated.json is stale: re-run the generator"
    assert module.DICOM_VECTORS.read_text("utf-8") == module.render_dicom_vectors(), \
        "tests/vectors/deidentify_dicom.json is stale: re-run the generator"


def test_the_dicom_vectors_exercise_the_profile() -> None:
    """Python's copies of the DICOM vectors hold none of the inputs' identifiers, and the inputs
    carry each kind the page's walk handles (so a port that skips one fails in its tests)."""
    spec = json.loads(_generator().DICOM_VECTORS.read_text("utf-8"))
    inputs = b"".join(base64.b64decode(c["input"]) for c in spec["cases"])
    outputs = b"".join(base64.b64decode(c["output"]) for c in spec["cases"] if "output" in c)
    for identifier in (b"O'Brien", b"MRN-99912", b"19500203", b"Boston", b"Reviewer^Rita",
                       b"ACME", b"HOSPITAL_PACS", b"1.2.826.0.1.3680043.10.1.1", b"Tech^Tina",
                       b"Leak^Item", b"overlay by Dr. Who", b"Reviewer^Una"):
        assert identifier in inputs and identifier not in outputs, identifier
    assert b"ANONYMOUS" in outputs and b"2.25." in outputs and b"fake-frame" in outputs
    assert [c["error"]["field"] for c in spec["cases"] if "error" in c] == ["file"]
    for case in spec["cases"]:
        if "output" in case:
            copy = pydicom.dcmread(io.BytesIO(base64.b64decode(case["output"])))
            assert copy.PatientIdentityRemoved == "YES" and copy.PatientName == ""
