"""Every page of the patient's app, as the demo's aiko sees it (her records, grants and reads
from ``kizuna up --demo``), at desktop and phone width: it renders its content (no endless
spinner), fits the screen, has no serious accessibility violation (axe-core), logs no error,
and leaves a screenshot in out/screenshots/test_every_page_* for a reviewer to look at."""

from __future__ import annotations

import pytest
from browser import axe_violations, describe
from injected_wallet import TestWallet
from playwright.sync_api import expect
from web_harness import Web

pytestmark = pytest.mark.browser

CONNECT_TIMEOUT = 90_000
PAGES = ["Timeline", "Charts", "Add records", "Sharing", "Requests & inbox", "Ask for records",
         "Health summary", "Share a link", "Research", "Who read what", "Guardians & emergency",
         "Account"]


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page(web: Web, device: str) -> None:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account("aiko")])
    session = web.open([wallet], device=device)
    page = session.page
    session.screenshot("landing")
    assert not axe_violations(page), describe(axe_violations(page))
    page.get_by_role("button", name="Connect wallet").click()
    nav = page.get_by_role("navigation", name="Your record")
    expect(nav).to_be_visible(timeout=CONNECT_TIMEOUT)
    titles = nav.get_by_role("link").all_inner_texts()
    assert [t.strip() for t in titles] == PAGES
    for title in PAGES:
        nav.get_by_role("link", name=title, exact=True).click()
        expect(nav.get_by_role("link", name=title, exact=True)).to_have_attribute(
            "aria-current", "page")
        main = page.locator("main#main")
        expect(main.get_by_role("heading", level=1)).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("library-loading")).to_have_count(0, timeout=120_000)
        expect(main.locator("[aria-busy='true']")).to_have_count(0, timeout=60_000)
        session.screenshot(title)
        assert session.overflow() == 0, \
            f"{title}: {session.overflow()}px wider than the {device} screen"
        violations = axe_violations(page)
        assert not violations, f"{title}: {describe(violations)}"
    assert page.get_by_test_id("error").count() == 0, page.get_by_test_id("error").inner_text()
