"""A PDF added twice in the page is one document in the record, in a real Chromium against a
real ``kizuna up --demo`` (the test wallet signing with a real key).

A file added on its own is named by its bytes (docs/keys.md "Single files": the patient's
import id key over the file's SHA-256, index 0 the file, index 1 its DocumentReference;
web/src/pages/patient/add/scan.ts), so the same file added again — under another name, in
another visit of the page — names the same two records: the page finds them in the record,
says so, asks the wallet for nothing and adds nothing. With random ids (as before) the second
add made a second document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
SIGNING = ("eth_signTypedData_v4", "eth_sendTransaction")
ONE = re.compile(r"^1 records?$")  # the Timeline's count (its plural is not this test's)
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n")


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _connect(page: Page, wallet: TestWallet) -> None:
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)


def _add(page: Page, path: Path) -> None:
    _go(page, "Add records")
    page.locator("#add-files").set_input_files(str(path))
    expect(page.get_by_test_id("found-summary")).to_contain_text("2 records", timeout=TIMEOUT)
    page.get_by_test_id("add-button").click()


def test_the_same_pdf_added_twice_is_one_document(web: Web, tmp_path: Path) -> None:
    first = tmp_path / "clinic-letter.pdf"
    first.write_bytes(PDF)
    wallet = web.wallet()
    session = web.open([wallet], device="desktop")
    page = session.page
    _connect(page, wallet)

    _add(page, first)
    expect(page.get_by_test_id("added")).to_have_text("2 records added to your record.",
                                                      timeout=4 * TIMEOUT)
    _go(page, "Timeline")
    count = page.get_by_test_id("timeline-count")
    expect(count).to_have_text(ONE, timeout=TIMEOUT)

    # The same bytes under another name, after a reload: found, not added; no wallet request.
    again = tmp_path / "letter (copy).pdf"
    again.write_bytes(PDF)
    page.reload()
    _connect(page, wallet)
    asked = len(wallet.calls)
    _add(page, again)
    expect(page.get_by_test_id("added")).to_have_text(
        "All 2 records are already in your record: nothing was added.", timeout=TIMEOUT)
    assert [c.method for c in wallet.calls[asked:] if c.method in SIGNING] == []
    check_layout(session, "add-twice-already")
    _go(page, "Timeline")
    expect(count).to_have_text(ONE, timeout=TIMEOUT)
    session.check()
