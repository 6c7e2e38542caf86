"""The auditor's page over a history of more than 1,000 reads (issue 14), on a ``kizuna up
--demo`` of this file's own (the reads would crowd the shared stack's log for other tests):
1,000 real reads by dr-tanaka of kenji's records (each a signed ReadRequest served by the API,
``WebStack.provider_reads``), anchored; the Verify page fetches every receipt page by page,
checks them all and passes; then a receipt on the last page, altered in the database, is
flagged with its evidence (the later pages are checked too)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import web_stack
from auditor_pages import VERIFY_TIMEOUT, auditor, connect, tampered_receipt, verify
from eth_account import Account
from playwright.sync_api import expect
from web_harness import Web
from web_stack import WebStack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

READS = 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """This file's own stack (overrides the worker's shared one for the tests here)."""
    made = web_stack.start(tmp_path_factory.mktemp("web-stack-history"))
    try:
        yield made
    finally:
        made.up.stop()


def _summary(text: str, label: str) -> int:
    found = re.search(rf"(\d+)\s*{label}", text)
    assert found, f"no {label!r} in {text!r}"
    return int(found.group(1))


def test_the_page_verifies_over_1000_reads_and_flags_one_tampered_on_a_later_page(
        web: Web) -> None:
    stack = web.stack
    seqs = stack.provider_reads("dr-tanaka", "kenji", READS)
    assert len(set(seqs)) == READS
    key = Account.create()
    stack.grant_auditor(key.address)
    stack.anchor("0x" + bytes(key.key).hex())  # all pending receipts, demo's included

    session = connect(web, auditor(web))
    page = session.page
    verify(page)
    result = page.get_by_test_id("verify-result")
    expect(result).to_have_attribute("data-ok", "true")
    summary = result.locator(".audit-summary").inner_text()
    checked = _summary(summary, "Reads checked")
    assert checked >= READS, summary
    assert _summary(summary, "Merkle proofs verified here") == checked, summary
    assert _summary(summary, "Allowed by a grant") == checked, summary
    # Fetched page by page: more than one request, each after the previous page's cursor.
    pages = [r.url for r in session.watched.requests if "/auditor/receipts" in r.url]
    assert len(pages) >= 2, pages
    assert "cursor=" not in pages[0] and all("cursor=" in url for url in pages[1:]), pages
    session.screenshot("audit-verify-1000")

    with tampered_receipt(stack, last=True) as (request_id, seq):
        assert seq > 1000, "the altered receipt should be on a later page"
        page.get_by_role("button", name="Run again").click()
        expect(result).to_have_attribute("data-ok", "false", timeout=VERIFY_TIMEOUT)
        findings = page.get_by_test_id("finding")
        checks = sorted(findings.nth(i).get_attribute("data-check") or ""
                        for i in range(findings.count()))
        assert checks == ["receipt.leaf", "receipt.proof"], checks
        for i in range(findings.count()):
            expect(findings.nth(i)).to_contain_text(request_id)
            expect(findings.nth(i)).to_contain_text(f"receipt seq{seq}")
        session.screenshot("audit-verify-1000-tampered")
