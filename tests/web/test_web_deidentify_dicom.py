"""The DICOM de-identification vectors (tests/vectors/deidentify_dicom.json: Part 10 files
built with pydicom and Python's study copies, kizuna/research/deidentify.py
deidentify_dicom_for_study) re-made by the page's code (web/src/research/dicom.ts) in a real
Chromium. The browser gets the inputs only (the keys' secret key and study id, each file);
each copy must, read back with pydicom, hold exactly the same data elements and values as
Python's copy (file meta included), and be Python's byte for byte (but the cases marked
``same_bytes: false``: values pydicom normalises as it reads them, whose bytes the page
keeps). Python's refusal (burned-in annotation) must come back with its field and reason;
the files the page does not read (big endian, deflated, no Part 10 header) as the page's own
refusal. Node checks the same vectors: web/test/deidentify_dicom.test.ts."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from browser import Session
from pydicom.dataset import Dataset
from test_web_vectors import bench_url, call, page  # noqa: F401  (the bench's fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.node]

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors"


def _elements(ds: Dataset, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every data element as (tag path, VR, value), into sequence items."""
    out: list[tuple[str, str, Any]] = []
    for element in ds:
        path = f"{prefix}{element.tag}"
        if element.VR == "SQ":
            out.append((path, "SQ", len(element.value)))
            for i, item in enumerate(element.value):
                out.extend(_elements(item, f"{path}[{i}]."))
        else:
            out.append((path, element.VR, element.value))
    return out


def _read(content: bytes) -> list[tuple[str, str, Any]]:
    ds = pydicom.dcmread(io.BytesIO(content))
    return _elements(ds.file_meta, "meta.") + _elements(ds)


def test_dicom_deidentification_re_made_in_chromium(page: Session) -> None:  # noqa: F811
    keys = json.loads((VECTORS / "deidentify.json").read_text("utf-8"))["keys"]
    spec: dict[str, Any] = json.loads((VECTORS / "deidentify_dicom.json").read_text("utf-8"))
    refusals = [{"key": 0, "input": r["input"], "name": r["name"]} for r in spec["page_refusals"]]
    cases = spec["cases"] + refusals
    got = call(page.page, "deidentifyDicomVector", {
        "keys": [{"secret_key": k["secret_key"], "study_id": k["study_id"]} for k in keys],
        "cases": [{"key": c["key"], "input": c["input"]} for c in cases]})
    mismatches: list[str] = []
    for case, derived in zip(spec["cases"], got, strict=False):
        if "error" in case:
            expected = {**case["error"], "unsupported": False}
            if derived != expected:
                mismatches.append(f"{case['name']}: browser {derived!r} != Python's {expected!r}")
            continue
        if "output" not in derived:
            mismatches.append(f"{case['name']}: browser refused it: {derived!r}")
            continue
        page_copy, python_copy = (base64.b64decode(derived["output"]),
                                  base64.b64decode(case["output"]))
        if _read(page_copy) != _read(python_copy):
            mismatches.append(f"{case['name']}: pydicom reads other elements or values")
        if page_copy != python_copy and case.get("same_bytes", True):
            mismatches.append(f"{case['name']}: not byte for byte Python's copy")
    for refusal, derived in zip(refusals, got[len(spec["cases"]):], strict=True):
        if not derived.get("unsupported") or derived.get("field") != "file":
            mismatches.append(f"{refusal['name']}: the page should refuse it, got {derived!r}")
    assert len(got) == len(cases) and len(spec["cases"]) >= 10
    assert not mismatches, "\n".join(mismatches)
