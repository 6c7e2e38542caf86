"""The health summary as a PDF, made in the real page (Chromium, ``kizuna up --demo``, the test
wallet; web/src/sharing/pdf.ts + pdfIps.ts, loaded when the button is pressed): a Synthea
patient whose name holds characters the PDF's standard fonts cannot show (``山田``) and one
they can only with WinAnsi's typographic marks (``’``). The PDF the page downloads is parsed by
pypdf (a real PDF library): its text holds the patient's facts and every section of the
summary the page downloads as JSON, read by PYTHON's reader (kizuna.sharing.ips.sections_of),
entry by entry; its pages each carry their footer; its metadata title keeps the exact name;
where characters were printed as "?" the PDF's first page and the page's notice say so. The
PDF chunk is not loaded before the button is pressed. Desktop and phone: screenshots, no
overflow, axe clean.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import check_layout
from playwright.sync_api import Page, expect
from synthea_data import small_bundle, synthea_patient
from test_web_ips import _download, _import, _open_summary, _patient
from web_harness import Web

from kizuna.sharing.ips import sections_of

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 180_000
NAME = {"use": "official", "family": "O’Brien 山田", "given": ["Zoë"]}


def _shown(text: str) -> str:
    """What the standard fonts show of ``text``: written from Python's rule (ips.py
    ``_pdf_text``: NFKC, a character kept if the font has it, else its NFKD base letter, else
    ``?``) with WinAnsi (cp1252) as the font's set, whitespace collapsed."""
    def has(ch: str) -> bool:
        try:
            ch.encode("cp1252")
        except UnicodeEncodeError:
            return False
        return ch >= " "
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        base = unicodedata.normalize("NFKD", ch)[:1]
        out.append(ch if has(ch) else base if base and has(base) else "?")
    return " ".join("".join(out).split())


def _pdf(page: Page) -> tuple[bytes, str]:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download (PDF)").click()
    assert info.value.suggested_filename.endswith(".pdf")
    data = Path(info.value.path()).read_bytes()
    return data, info.value.suggested_filename


def _check(data: bytes, ips: dict[str, Any]) -> None:
    from io import BytesIO

    import pypdf

    reader = pypdf.PdfReader(BytesIO(data), strict=True)
    pages = [p.extract_text() or "" for p in reader.pages]
    text = " ".join(" ".join(pages).split())
    patient = next(e["resource"] for e in ips["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    name = "Zoë O’Brien 山田"
    assert reader.metadata is not None and reader.metadata.title == \
        f"International Patient Summary - {name}"
    assert "International Patient Summary" in text
    for fact in (f"Patient {_shown(name)}", f"Born {patient['birthDate']}",
                 f"Sex {patient['gender']}", f"Made {ips['timestamp']}"):
        assert fact in text, fact
    assert "Zoë O’Brien ??" in text
    assert "Some characters in the patient's name cannot be shown" in text
    sections = sections_of(ips)
    assert sum(len(lines) for _, lines in sections) > 20
    for section, lines in sections:
        assert f"{section.title} ({len(lines)})" in text, section.title
        if not lines:
            assert f"No {section.title.lower()} in the patient's records." in text
        for line in lines:
            assert _shown(line) in text, (section.title, line)
    assert len(pages) > 1
    for number, content in enumerate(pages, start=1):
        assert re.search(rf"page {number} of {len(pages)}\s*$", content), content[-200:]


def test_the_summary_downloads_as_a_readable_pdf(web: Web, tmp_path: Path,
                                                 synthea_patients: Callable[..., Path]) -> None:
    synthea = synthea_patient(synthea_patients)
    for entry in synthea["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [NAME]
    wallet = web.wallet()
    with _patient(web, wallet) as client:
        _import(client, synthea, tmp_path / "journal")
    session = _open_summary(web, wallet, "desktop")
    page = session.page
    expect(page.get_by_test_id("ips-facts")).to_be_visible(timeout=TIMEOUT)
    # The writer is its own chunk, fetched only when the PDF is asked for.
    assert not [c for c in session.watched.requests if "pdfIps" in c.url]
    ips = _download(page)
    data, filename = _pdf(page)
    assert filename == f"patient-summary-{ips['timestamp'][:10]}.pdf"
    assert [c for c in session.watched.requests if "pdfIps" in c.url]
    assert data.startswith(b"%PDF-1.4")
    _check(data, ips)
    notice = page.get_by_test_id("ips-pdf-outcome").get_by_test_id("notice")
    expect(notice).to_contain_text("saved as a PDF")
    expect(notice).to_contain_text("the patient's name cannot be shown by the PDF's standard font")
    check_layout(session, "ips-pdf-saved")
    (tmp_path / "summary.json").write_text(json.dumps(ips), "utf-8")


def test_the_pdf_at_phone_width(web: Web, tmp_path: Path,
                                synthea_patients: Callable[..., Path]) -> None:
    synthea = synthea_patient(synthea_patients)
    small = small_bundle(synthea, size=12, per_type=2)
    wallet = web.wallet()
    with _patient(web, wallet) as client:
        _import(client, small, tmp_path / "journal")
    session = _open_summary(web, wallet, "phone")
    page = session.page
    expect(page.get_by_test_id("ips-facts")).to_be_visible(timeout=TIMEOUT)
    ips = _download(page)
    data, _ = _pdf(page)
    from io import BytesIO

    import pypdf

    text = " ".join(" ".join(p.extract_text() or "" for p in
                             pypdf.PdfReader(BytesIO(data), strict=True).pages).split())
    for section, lines in sections_of(ips):
        assert section.title in text
        for line in lines:
            assert _shown(line) in text, line
    notice = page.get_by_test_id("ips-pdf-outcome").get_by_test_id("notice")
    # Nothing lost in this name: the notice says only that it was saved.
    expect(notice.locator("p")).to_have_text("Your health summary was saved as a PDF.")
    check_layout(session, "ips-pdf-saved-phone")
