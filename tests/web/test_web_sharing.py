"""Sharing, requests and the inbox in the real page (Chromium, a real ``kizuna up --demo``, the
test wallet signing with real keys), each checked from the Python side:

* a grant of Observation scopes to the demo provider dr-tanaka made in the page is on chain for
  the Python provider (``kizuna provider patients``); revoking one scope and then everything (the
  confirm step, the wallet's own transaction) ends it there too; the page shows the state read
  back after each block;
* a signature the user declines (4001), a date already past (the field named) and a chain that
  cannot be read are shown with a clear message, and nothing the user chose is lost: the retry
  succeeds with the same choices;
* the page publishes the patient's inbox key (the Python provider verifies its signature before
  encrypting to it), shows a provider's request with its note decrypted, declines it (the provider
  sees it closed), grants a second request pre-filled from its note (the provider sees it granted),
  and opens a report the provider sent, rendered for people;
* screenshots at desktop and phone width; axe-core finds no serious violation on either page.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from browser import DEVICES, Session, axe_violations, describe
from injected_wallet import MAINNET, TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import WebStack

from kizuna.errors import NotFoundError

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TANAKA = "dr-tanaka"
TIMEOUT = 60_000  # a grant: scope-key signatures, fragments made in the page, a relayed tx


def _demo_address(stack: WebStack, name: str) -> str:
    demo = json.loads((stack.home / "demo.json").read_text(encoding="utf-8"))
    return next(str(i["address"]) for i in demo["identities"] if i["name"] == name)


def _patients_of(stack: WebStack, provider: str) -> set[str]:
    """Who granted ``provider`` a live scope, as the Python provider (``kizuna provider
    patients``' client, in this process) reads it from the chain."""
    with stack.provider(provider) as client:
        return {str(patient).lower() for patient in client.patients()}


def _connect(session: Session, wallet: TestWallet) -> Page:
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    return page


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _notice(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("notice").filter(has_text=re.compile(pattern))).to_be_visible(
        timeout=TIMEOUT)


def _fits(page: Page, device: str) -> None:
    """Nothing wider than the device (with a mobile viewport the browser would widen the layout
    viewport to the content, so the device's width is the measure, not innerWidth)."""
    width = DEVICES[device]["width"]
    overflow = page.evaluate("() => document.documentElement.scrollWidth") - width
    assert overflow <= 0, f"the page is {overflow}px wider than the {device} screen"


def _accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, describe(violations)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_grant_in_the_page_is_on_chain_then_revoked(web: Web, device: str) -> None:
    stack = web.stack
    tanaka = _demo_address(stack, TANAKA)
    wallet = web.wallet()
    session = web.open([wallet], device=device)
    page = _connect(session, wallet)
    _go(page, "Sharing")

    # The registry's providers, verified ones marked.
    registry = page.get_by_role("list", name="Providers in the registry")
    expect(registry.get_by_role("listitem").filter(has_text=tanaka)).to_contain_text("Verified")
    expect(page.get_by_text("You are not sharing anything with anyone.")).to_be_visible()
    _fits(page, device)
    _accessible(page)
    session.screenshot("sharing-empty")

    registry.get_by_role("listitem").filter(has_text=tanaka).get_by_role(
        "button", name="Share with this provider").click()
    expect(page.get_by_label("Provider", exact=True)).to_have_value(tanaka)
    page.get_by_label("Observation:vital-signs").check()
    page.get_by_label("Observation:laboratory").check()
    until = page.get_by_label("Until (the end of this day)", exact=True)
    expect(until).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    session.screenshot("sharing-form")
    page.get_by_role("button", name="Share 2 parts").click()
    _notice(page, rf"Shared Vital signs \(Observation:vital-signs\) and Lab results "
                  rf"\(Observation:laboratory\) with {tanaka}")

    # Each wallet request showed its purpose; the last one is the grant itself.
    signed = wallet.calls_of("eth_signTypedData_v4")
    assert signed[-1].prompt and f"with {tanaka}" in signed[-1].prompt, signed[-1].prompt
    assert "Set up sharing keys" in (signed[-2].prompt or "")
    # On chain, as the Python provider sees it; and the page shows it read back.
    assert wallet.address.lower() in _patients_of(stack, TANAKA)
    card = page.get_by_role("article", name=f"Shared with {tanaka}")
    expect(card).to_contain_text("Observation:vital-signs")
    expect(card).to_contain_text("Observation:laboratory")
    expect(card).to_contain_text("Vital signs")
    _fits(page, device)
    _accessible(page)
    session.screenshot("sharing-granted")

    # Extend one part, paying the fee from the wallet this time ("send it myself").
    page.get_by_label("Pay the network fee myself").check()
    sent_before = len(wallet.calls_of("eth_sendTransaction"))
    lab = card.get_by_role("listitem").filter(has_text="Observation:laboratory")
    lab.get_by_role("button", name="Extend").click()
    later = lab.get_by_label("Share until (the end of this day)")
    ends = date.fromisoformat(until.input_value())
    assert date.fromisoformat(later.input_value()) > ends
    later.fill((ends + timedelta(days=60)).isoformat())
    lab.get_by_role("button", name="Extend sharing").click()
    _notice(page, r"Lab results \(Observation:laboratory\) stays shared")
    sent = wallet.calls_of("eth_sendTransaction")
    assert len(sent) == sent_before + 1 and f"with {tanaka}" in (sent[-1].prompt or "")
    expect(lab).to_contain_text(f"Until {(ends + timedelta(days=60)):%b} "
                                f"{(ends + timedelta(days=60)).day}, ")
    page.get_by_label("Pay the network fee myself").uncheck()

    # Stop sharing one scope: the other stays.
    card.get_by_role("button", name="Stop sharing Observation:vital-signs").click()
    _notice(page, r"Stopped sharing Vital signs \(Observation:vital-signs\)")
    expect(card).not_to_contain_text("Observation:vital-signs")
    expect(card).to_contain_text("Observation:laboratory")
    assert wallet.address.lower() in _patients_of(stack, TANAKA)

    # Stop everything: a confirm step first, then the wallet's own transaction.
    sent_before = len(wallet.calls_of("eth_sendTransaction"))
    card.get_by_role("button", name=re.compile("Stop sharing everything")).click()
    expect(card).to_contain_text("Stop sharing everything with this provider?")
    assert len(wallet.calls_of("eth_sendTransaction")) == sent_before  # nothing yet
    session.screenshot("sharing-confirm-revoke-all")
    card.get_by_role("button", name="Yes, stop sharing everything").click()
    _notice(page, f"Stopped sharing everything with {tanaka}")
    sent = wallet.calls_of("eth_sendTransaction")
    assert len(sent) == sent_before + 1 and "everything" in (sent[-1].prompt or "")
    expect(page.get_by_text("You are not sharing anything with anyone.")).to_be_visible()
    assert wallet.address.lower() not in _patients_of(stack, TANAKA)
    session.screenshot("sharing-revoked")


def test_a_declined_signature_or_a_past_date_loses_nothing_chosen(web: Web) -> None:
    stack = web.stack
    tanaka = _demo_address(stack, TANAKA)
    wallet = web.wallet()
    session = web.open([wallet])
    page = _connect(session, wallet)
    _go(page, "Sharing")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label("Observation:vital-signs").check()
    until = page.get_by_label("Until (the end of this day)", exact=True)

    # A date already past: the field is named, nothing is asked of the wallet.
    chosen = until.input_value()
    until.fill("2020-01-01")
    asked = len(wallet.calls)
    page.get_by_role("button", name="Share 1 part").click()
    alert = page.get_by_test_id("error")
    expect(alert).to_contain_text("already past")
    expect(alert).to_contain_text("expires_at")
    assert not [c for c in wallet.calls[asked:] if c.method in (
        "eth_signTypedData_v4", "eth_sendTransaction")]
    until.fill(chosen)

    # The chain cannot be read (the wallet's node is gone: this test wallet has no node for
    # mainnet, and says so to every read): a clear message, nothing signed.
    wallet.current_chain = MAINNET
    page.get_by_role("button", name="Share 1 part").click()
    expect(page.get_by_test_id("error")).to_contain_text("blockchain node could not be read")
    wallet.current_chain = stack.chain_id
    assert not [c for c in wallet.calls[asked:] if c.method in (
        "eth_signTypedData_v4", "eth_sendTransaction")]

    # The user says no in the wallet (4001).
    wallet.rejects.add("eth_signTypedData_v4")
    page.get_by_role("button", name="Share 1 part").click()
    expect(page.get_by_test_id("error")).to_contain_text("You declined the request in your wallet")
    session.screenshot("sharing-declined")
    expect(page.get_by_label("Provider", exact=True)).to_have_value(tanaka)
    expect(page.get_by_label("Observation:vital-signs")).to_be_checked()
    expect(until).to_have_value(chosen)
    assert wallet.address.lower() not in _patients_of(stack, TANAKA)

    # Said yes this time: the same choices go through.
    wallet.rejects.clear()
    page.get_by_role("button", name="Share 1 part").click()
    _notice(page, rf"Shared Vital signs \(Observation:vital-signs\) with {tanaka}")
    assert wallet.address.lower() in _patients_of(stack, TANAKA)


def _provider_inbox(stack: WebStack, patient: str) -> list[str]:
    """The states of dr-tanaka's requests to ``patient``, newest first (Python's view)."""
    with stack.provider(TANAKA) as client:
        items = client.inbox()
    return [i.kind for i in items if i.patient.lower() == patient.lower()
            and i.kind.startswith("request-")]


def _request(stack: WebStack, patient: str, note: str) -> None:
    """dr-tanaka asks ``patient`` for access (``kizuna provider request``'s client): the note
    encrypted to the inbox key the patient signed, checked here first."""
    with stack.provider(TANAKA) as client:
        client.request_access(patient, note.encode())


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_requests_answered_and_messages_opened_in_the_page(web: Web, device: str) -> None:
    stack = web.stack
    tanaka = _demo_address(stack, TANAKA)
    wallet = web.wallet()
    session = web.open([wallet], device=device)
    # A new patient has no inbox key yet: the page's check asks GET /patient/inbox-key, whose
    # "none yet" is a 200 — no 404 on the console (the session's check fails on any error).
    page = _connect(session, wallet)
    _go(page, "Requests & inbox")

    # Nobody can write to a new patient before the inbox key is published.
    with pytest.raises(NotFoundError, match="inbox key"):
        _request(stack, wallet.address, "hello")
    page.get_by_role("button", name="Let providers write to me").click()
    _notice(page, "Providers can now send you")
    assert "Let providers write to you" in (wallet.calls_of("eth_signTypedData_v4")[-1].prompt
                                            or "")
    expect(page.get_by_role("button", name="Let providers write to me")).to_have_count(0)

    # A request: its note is decrypted in the page; declined, the provider sees it closed.
    note = "Referral to cardiology: please share Observation:vital-signs for 14 days. 田中"
    _request(stack, wallet.address, note)  # Python verified the page's InboxKey signature
    page.get_by_role("button", name="Check for new").click()
    expect(page.get_by_test_id("request-note")).to_have_text(note)
    requests = page.get_by_role("list", name="Access requests")
    expect(requests).to_contain_text(tanaka)
    _accessible(page)
    session.screenshot("requests-open")
    requests.get_by_role("button", name="Decline").click()
    _notice(page, f"Declined {tanaka}'s request")
    assert wallet.calls_of("eth_sendTransaction")[-1].prompt and "Decline" in (
        wallet.calls_of("eth_sendTransaction")[-1].prompt or "")
    expect(page.get_by_text("No provider is waiting for an answer.")).to_be_visible()
    assert _provider_inbox(stack, wallet.address) == ["request-closed"]

    # A second request, granted with the scopes and period its note names (pre-filled).
    note2 = "Follow-up: your vitals and lab results, 2 weeks."
    _request(stack, wallet.address, note2)
    page.get_by_role("button", name="Check for new").click()
    expect(page.get_by_test_id("request-note")).to_have_text(note2)
    page.get_by_role("button", name="Grant…").click()
    form = page.get_by_role("form", name=f"Share with {tanaka}")
    expect(form.get_by_label("Observation:vital-signs")).to_be_checked()
    expect(form.get_by_label("Observation:laboratory")).to_be_checked()
    expect(form.get_by_label("Condition:problem-list-item")).not_to_be_checked()
    # "2 weeks" in the note: the date is 14 days after the chain's today (the page's time zone).
    offered = date.fromisoformat(form.get_by_label("Until (the end of this day)").input_value())
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    assert abs((offered - (today + timedelta(days=14))).days) <= 1, offered
    session.screenshot("requests-grant-form")
    form.get_by_role("button", name="Share 2 parts").click()
    _notice(page, rf"Shared Lab results \(Observation:laboratory\) and Vital signs "
                  rf"\(Observation:vital-signs\) with {tanaka}")
    assert _provider_inbox(stack, wallet.address)[0] == "request-granted"
    assert wallet.address.lower() in _patients_of(stack, TANAKA)

    # A report the provider sent (it holds a grant now), opened and rendered for people.
    report = json.dumps({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                            "observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                             "display": "Heart rate"}], "text": "Heart rate"},
        "effectiveDateTime": "2026-11-02T09:30:00+09:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
        "note": [{"text": "Resting heart rate is fine."}]}).encode()
    with stack.provider(TANAKA) as client:  # `kizuna provider send ... report x.json`'s call
        client.send(wallet.address, "report", report, content_type="application/fhir+json")
    page.get_by_role("button", name="Check for new").click()
    messages = page.get_by_role("list", name="Reports, prescriptions and bookings")
    item = messages.get_by_role("listitem").filter(has_text="Visit report")
    item.get_by_role("button", name=re.compile("^Open")).click()
    body = item.get_by_test_id("message-body")
    expect(body).to_contain_text("Heart rate")
    expect(body).to_contain_text("72")
    expect(body).to_contain_text("Resting heart rate is fine.")
    _fits(page, device)
    _accessible(page)
    session.screenshot("requests-report-opened")
