"""A session that ends while the page is open (expired, or ended on the server): the page says
so, keeps what the user typed, and "Sign in again" (one personal_sign) lets them carry on with
the same choices — no reload, no second key-derivation signature."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 90_000


def test_an_ended_session_keeps_the_form_and_signs_in_again(web: Web) -> None:
    stack = web.stack
    tanaka = str(stack.demo_account("dr-tanaka").address)
    wallet = web.wallet()
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation", name="Your record").get_by_role("link", name="Sharing").click()
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label("Observation:vital-signs").check()

    # The server forgets every session (what an expiry or a sign-out elsewhere amounts to).
    with sqlite3.connect(stack.home / "kizuna.sqlite3") as db:  # KizunaHome.database_file
        ended = db.execute("DELETE FROM sessions").rowcount
    assert ended >= 1
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    session.watched.allow_error(r"401")
    logins = len(wallet.calls_of("personal_sign"))
    derivations = len(wallet.calls_of("eth_signTypedData_v4"))

    page.get_by_role("button", name="Share 1 part").click()
    notice = page.get_by_test_id("notice").filter(has_text="session")
    expect(notice).to_contain_text("Sign in again", timeout=TIMEOUT)
    session.screenshot("session-ended")
    # Nothing the user chose is lost.
    expect(page.get_by_label("Provider", exact=True)).to_have_value(tanaka)
    expect(page.get_by_label("Observation:vital-signs")).to_be_checked()

    notice.get_by_role("button", name="Sign in again").click()
    expect(page.get_by_test_id("notice").filter(has_text="session")).to_have_count(
        0, timeout=TIMEOUT)
    assert len(wallet.calls_of("personal_sign")) == logins + 1
    page.get_by_role("button", name="Share 1 part").click()
    expect(page.get_by_test_id("notice").filter(has_text=f"with {tanaka}")).to_be_visible(
        timeout=TIMEOUT)
    # The keys stayed in the page: no second key-derivation signature was asked for.
    asked = [c for c in wallet.calls_of("eth_signTypedData_v4")[derivations:]
             if "KeyDerivation" in str(c.params)]
    assert not asked
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"


def test_keys_live_in_the_page_only_and_a_reload_asks_the_wallet_again(web: Web) -> None:
    wallet = web.wallet()
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    stored = page.evaluate("""async () => ({
        local: localStorage.length, session: sessionStorage.length,
        databases: (await indexedDB.databases()).length,
        cookies: document.cookie.length })""")
    assert stored == {"local": 0, "session": 0, "databases": 0, "cookies": 0}, stored

    def derivations() -> int:
        return len([c for c in wallet.calls_of("eth_signTypedData_v4")
                    if "KeyDerivation" in str(c.params)])

    assert derivations() == 1
    page.reload()
    # After a reload nothing is remembered: the landing page, and the keys asked for again.
    expect(page.get_by_role("button", name="Connect wallet")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("account")).to_have_count(0)
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    assert derivations() == 2
