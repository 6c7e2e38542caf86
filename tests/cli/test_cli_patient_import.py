"""``kizuna patient import`` given a file that is not FHIR JSON (here a DICOM file's bytes): one
error line naming the file and pointing to ``kizuna patient add``, before any key or service
is needed."""

from __future__ import annotations

from pathlib import Path

from cli_harness import run

from kizuna.cli.output import ExitCode


def test_import_of_a_dicom_file_names_it_and_points_to_add(tmp_path: Path) -> None:
    dicom = tmp_path / "scan.dcm"
    # A DICOM Part 10 file: 128-byte preamble, "DICM", then binary elements (not UTF-8).
    dicom.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xc4\x00\x00\x00")
    result = run(tmp_path / "home", "patient", "import", str(dicom))
    assert result.code == ExitCode.INVALID_INPUT, result.err
    line = result.error_line
    assert str(dicom) in line
    assert "not a FHIR JSON Bundle" in line and "not UTF-8" in line
    assert "kizuna patient add" in line
