"""A guardian acting for a ward is offered no "Add" for data-request answers, and is told who
can add them (real Chromium, a real ``kizuna up --demo``, test wallets signing with real keys).

The files a provider sends are sealed to the ward's own inbox key and named by the ward's
import id key (web/src/patient/dataRequests.ts receive: ``ownOnly``): a guardian's keys open
neither, so the page offers no button that would then be refused. (Before, the page listed the
guardian's own requests under the ward's record, each with its "Add" button.) The ward, signed
in with their own wallet, is offered the button as before.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from browser import Session, check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web

from kizuna.client import data_requests
from kizuna.wire import data_requests as dr

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TANAKA = "dr-tanaka"
TIMEOUT = 60_000
CHAIN_TIMEOUT = 120_000


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _connect(web: Web, wallet: TestWallet) -> Session:
    session = web.open([wallet], device="desktop")
    session.page.get_by_role("button", name="Connect wallet").click()
    expect(session.page.get_by_test_id("account")).to_contain_text(wallet.address[:6],
                                                                   timeout=TIMEOUT)
    return session


def _notice(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("notice").filter(has_text=re.compile(pattern))).to_be_visible(
        timeout=CHAIN_TIMEOUT)


def test_a_guardian_is_told_who_can_add_the_wards_answers(web: Web) -> None:
    stack = web.stack
    demo = json.loads((stack.home / "demo.json").read_text(encoding="utf-8"))
    tanaka = next(str(i["address"]) for i in demo["identities"] if i["name"] == TANAKA)
    ward, carer = web.wallet(), web.wallet()

    # The ward asks dr-tanaka for records, and appoints the carer as guardian.
    session = _connect(web, ward)
    page = session.page
    _go(page, "Ask for records")
    page.get_by_role("button", name="Let providers send me records").click()
    _notice(page, "Providers can now send you records")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label(re.compile("^Diagnoses and problems")).check()
    page.get_by_role("button", name="Ask for these records").click()
    _notice(page, rf"Asked {tanaka} for Condition")
    _go(page, "Guardians & emergency")
    page.get_by_label("Guardian's account address").fill(carer.address)
    page.get_by_label("Until (end date)").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Appoint guardian").click()
    expect(page.get_by_text(re.compile(f"{carer.address} is your guardian until"))).to_be_visible(
        timeout=CHAIN_TIMEOUT)

    bundle = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "asthma-1", "subject": {"display": "me"},
                      "code": {"text": "Asthma"}, "recordedDate": "2024-03-02"}}]}).encode()
    # dr-tanaka fulfils it (``kizuna provider requests`` / ``fulfil --final``'s calls, in this
    # process).
    with stack.provider(TANAKA) as provider:
        api = data_requests.transport(provider.service)
        (row,) = [r for r in api.to_provider(provider.address)
                  if r.patient.lower() == ward.address.lower()]
        data_requests.answer(api, provider, row.request_id, dr.FULFILLED,
                             files=[(bundle, "application/fhir+json")])

    # The ward is offered the file.
    _go(page, "Ask for records")
    item = page.get_by_test_id("data-request").first
    expect(item.get_by_test_id("dr-status")).to_have_text("Fulfilled", timeout=TIMEOUT)
    expect(item.get_by_role("button", name="Add the 1 file to my record")).to_be_visible()

    # The guardian, acting for the ward: no button that would be refused (nor the guardian's
    # own requests under the ward's record), and who can add the files.
    guardian = _connect(web, carer)
    gpage = guardian.page
    _go(gpage, "Guardians & emergency")
    chooser = gpage.get_by_label("Whose record to show")
    values: list[str] = chooser.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    chooser.select_option(next(v for v in values if v.lower() == ward.address.lower()))
    expect(gpage.get_by_text("You are acting for your ward")).to_be_visible(timeout=TIMEOUT)
    _go(gpage, "Ask for records")
    expect(gpage.get_by_test_id("dr-ward-only")).to_contain_text(
        "Only they can ask providers for their records and add the files providers send, "
        "signed in with their own wallet")
    expect(gpage.get_by_role("button", name=re.compile("to my record"))).to_have_count(0)
    expect(gpage.get_by_role("button", name="Ask for these records")).to_have_count(0)
    expect(gpage.get_by_test_id("data-request")).to_have_count(0)
    check_layout(guardian, "data-requests-guardian")
    guardian.check()
    session.check()
