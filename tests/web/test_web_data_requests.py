"""Asking a provider for records in the real page (Chromium, a real ``kizuna up --demo``, the
test wallet signing with real keys), answered from the Python side (the client ``kizuna
provider requests / acknowledge / fulfil / decline`` runs, in this process):

* the page publishes the inbox key, and a request is made with types, a period, a deadline
  and a note: the wallet's transaction says what it is for; the Python provider lists it with
  the note decrypted (sealed to its registry key in the page);
* a request missing its types is refused in the page before the wallet is asked; a
  transaction the user declines (4001) keeps everything typed, and the retry goes through;
* the provider acknowledges and fulfils with a FHIR Bundle; the page shows each state, checks
  and decrypts the file and adds its resources (and a Provenance each) to the record, which the
  Timeline then shows; the file is then said to be in the record and no longer offered (its
  records' ids are deterministic: the page finds them);
* the provider declines another request with a reason: the page shows it;
* screenshots at desktop and phone width, no overflow, axe-core clean.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import WebStack

from kizuna.client import data_requests
from kizuna.wire import data_requests as dr
from kizuna.wire.data_requests import DataRequest

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TANAKA = "dr-tanaka"
TIMEOUT = 60_000


def _demo_address(stack: WebStack, name: str) -> str:
    demo = json.loads((stack.home / "demo.json").read_text(encoding="utf-8"))
    return next(str(i["address"]) for i in demo["identities"] if i["name"] == name)


def _requests_to_tanaka(stack: WebStack, patient: str) -> list[tuple[DataRequest, str | None]]:
    """``patient``'s requests to dr-tanaka, each with its note as dr-tanaka decrypts it."""
    with stack.provider(TANAKA) as tanaka:
        api = data_requests.transport(tanaka.service)
        return [(r, data_requests.read_note(api, tanaka, r))
                for r in api.to_provider(tanaka.address) if r.patient.lower() == patient.lower()]


def _answer(stack: WebStack, request: DataRequest, state: str, *,
            files: list[bytes] | None = None, reason: str | None = None) -> None:
    """dr-tanaka answers (``kizuna provider acknowledge / fulfil / decline``'s call); files
    are FHIR JSON."""
    with stack.provider(TANAKA) as tanaka:
        data_requests.answer(data_requests.transport(tanaka.service), tanaka,
                             request.request_id, state, reason=reason,
                             files=[(f, "application/fhir+json") for f in files or []])


def _connect(web: Web, wallet: TestWallet, device: str) -> tuple[Any, Page]:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    return session, page


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _notice(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("notice").filter(has_text=re.compile(pattern))).to_be_visible(
        timeout=TIMEOUT)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_ask_answered_and_received_in_the_page(web: Web, device: str) -> None:
    stack = web.stack
    tanaka = _demo_address(stack, TANAKA)
    wallet = web.wallet()
    session, page = _connect(web, wallet, device)

    # The provider answers under a grant of the patient: share one part first.
    _go(page, "Sharing")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label("Observation:vital-signs").check()
    page.get_by_role("button", name="Share 1 part").click()
    _notice(page, "Shared Vital signs")

    _go(page, "Ask for records")
    expect(page.get_by_text("You have not asked any provider for records yet.")).to_be_visible()
    page.get_by_role("button", name="Let providers send me records").click()
    _notice(page, "Providers can now send you records")
    check_layout(session, "data-requests-empty")

    # Types missing: refused in the page, nothing asked of the wallet.
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    note = "The discharge summary of my stay in March, please. 三月の退院サマリー"
    page.get_by_label("Note to the provider (optional)").fill(note)
    sent_before = len(wallet.calls_of("eth_sendTransaction"))
    page.get_by_role("button", name="Ask for these records").click()
    expect(page.get_by_role("alert").filter(has_text="at least one kind")).to_be_visible()
    assert len(wallet.calls_of("eth_sendTransaction")) == sent_before

    page.get_by_label(re.compile("^Lab results and measurements")).check()
    page.get_by_label(re.compile("^Diagnoses and problems")).check()
    page.get_by_label("From (optional)").fill("2024-01-01")
    page.get_by_label("Answer within (days)").fill("14")

    # The user says no in the wallet: the error is clear and nothing typed is lost.
    wallet.rejects.add("eth_sendTransaction")
    page.get_by_role("button", name="Ask for these records").click()
    expect(page.get_by_test_id("error")).to_contain_text("You declined the request in your wallet")
    expect(page.get_by_label("Note to the provider (optional)")).to_have_value(note)
    expect(page.get_by_label(re.compile("^Lab results and measurements"))).to_be_checked()
    expect(page.get_by_label("Answer within (days)")).to_have_value("14")
    assert _requests_to_tanaka(stack, wallet.address) == []

    wallet.rejects.clear()
    page.get_by_role("button", name="Ask for these records").click()
    _notice(page, rf"Asked {tanaka} for Condition, Observation")
    prompt = wallet.calls_of("eth_sendTransaction")[-1].prompt or ""
    assert "Ask a provider for your records" in prompt and "prove when you asked" in prompt
    item = page.get_by_test_id("data-request").first
    expect(item.get_by_test_id("dr-status")).to_have_text("Open")
    expect(item).to_contain_text("Condition, Observation")

    # The Python provider sees it, with the note it alone can read.
    ((row, row_note),) = _requests_to_tanaka(stack, wallet.address)
    assert row_note == note and list(row.fields.types) == ["Condition", "Observation"]
    assert row.fields.since == "2024-01-01" and row.status == "open"

    _answer(stack, row, dr.ACKNOWLEDGED)
    page.get_by_role("button", name="Check for answers").click()
    expect(item.get_by_test_id("dr-status")).to_have_text("Acknowledged")

    bundle = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "asthma-1",
                      "subject": {"display": "me"},
                      "clinicalStatus": {"coding": [{
                          "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                          "code": "active"}]},
                      "code": {"text": "Asthma"}, "recordedDate": "2024-03-02"}},
        {"resource": {"resourceType": "Observation", "id": "hba1c-1", "status": "final",
                      "code": {"text": "HbA1c"},
                      "valueQuantity": {"value": 5.4, "unit": "%"},
                      "effectiveDateTime": "2024-03-02"}}]}).encode()
    _answer(stack, row, dr.FULFILLED, files=[bundle])
    page.get_by_role("button", name="Check for answers").click()
    expect(item.get_by_test_id("dr-status")).to_have_text("Fulfilled")
    check_layout(session, "data-requests-fulfilled")
    item.get_by_role("button", name="Add the 1 file to my record").click()
    _notice(page, r"Added 4 records from 1 file to your health record")
    # Taken in once: the file is in the record, and no button offers it again — also after
    # the list is read afresh (the page asks the service which of its record ids exist).
    offered = item.get_by_role("button", name=re.compile("to my record"))
    expect(offered).to_have_count(0)
    expect(item.get_by_test_id("dr-in-record")).to_have_text("The file is in your health record.")
    check_layout(session, "data-requests-received")
    page.get_by_role("button", name="Check for answers").click()
    expect(page.get_by_role("button", name="Check for answers")).to_be_enabled()
    expect(item.get_by_test_id("dr-in-record")).to_be_visible()
    expect(offered).to_have_count(0)

    _go(page, "Timeline")
    expect(page.get_by_text("HbA1c").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("Asthma").first).to_be_visible()


def test_a_file_that_is_not_fhir_then_a_decline_with_its_reason(web: Web) -> None:
    stack = web.stack
    tanaka = _demo_address(stack, TANAKA)
    wallet = web.wallet()
    session, page = _connect(web, wallet, "desktop")
    _go(page, "Sharing")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label("Observation:vital-signs").check()
    page.get_by_role("button", name="Share 1 part").click()
    _notice(page, "Shared Vital signs")
    _go(page, "Ask for records")
    page.get_by_role("button", name="Let providers send me records").click()
    _notice(page, "Providers can now send you records")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label(re.compile("^Vaccinations")).check()
    page.get_by_role("button", name="Ask for these records").click()
    _notice(page, rf"Asked {tanaka} for Immunization")
    ((row, row_note),) = _requests_to_tanaka(stack, wallet.address)
    assert row_note is None

    # A file that is not valid FHIR (a Condition without its subject): refused with the
    # reason, nothing added.
    broken = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "code": {"text": "Asthma"}}}]}).encode()
    _answer(stack, row, dr.FULFILLED_IN_PART, files=[broken])
    page.get_by_role("button", name="Check for answers").click()
    item = page.get_by_test_id("data-request").first
    expect(item.get_by_test_id("dr-status")).to_have_text("Fulfilled in part")
    item.get_by_role("button", name="Add the 1 file to my record").click()
    expect(page.get_by_test_id("error")).to_contain_text("subject: required element is missing")
    expect(page.get_by_test_id("error")).to_contain_text("nothing was added")

    _answer(stack, row, dr.DECLINED, reason="We hold no vaccination records for you.")
    page.get_by_role("button", name="Check for answers").click()
    expect(item.get_by_test_id("dr-status")).to_have_text("Declined")
    expect(item).to_contain_text("We hold no vaccination records for you.")
    check_layout(session, "data-requests-declined")
