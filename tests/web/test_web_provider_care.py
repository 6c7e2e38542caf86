"""The provider's care and registry pages in the browser (issue 14), against a real
``kizuna up --demo``: the test wallet signs as the demo's dr-sato (a verified provider) and the
demo registrar.

* dr-sato asks kenji for access in the page; kenji's own Python client (``kizuna patient
  inbox/open --key kenji``) finds the request and decrypts the note the page sealed to his
  inbox key; the page shows the request open. Then dr-sato sends kenji a visit report (his open
  request is the care authority the ledger checks) that kenji opens with the CLI: the FHIR
  DiagnosticReport the form made.
* Break-glass: a fresh patient allows emergency access (their own ``setEmergencyPolicy``
  transaction); dr-sato opens it in the page for 2 hours: the time box counts down, the chain
  holds it until then, the access is flagged for review.
* Registry: a fresh provider (no role yet) opens ``#/registry`` and sees "not registered" and
  the key its wallet derives; the registrar verifies it in the page with that key, suspends it
  and reinstates it — the chain follows each step; the provider's page then shows it verified
  with the key it derives. (Demo providers are never suspended: other tests share the stack.)
* Screenshots at desktop and phone width, no horizontal overflow, axe-core: 0 serious.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browser import Session, check_layout
from eth_account import Account
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web3 import Web3
from web_harness import Web
from web_stack import WebStack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

CONNECT_TIMEOUT = 120_000
CHAIN_TIMEOUT = 120_000

REGISTRY_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "isActiveProvider", "stateMutability": "view",
     "inputs": [{"name": "provider", "type": "address"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "providerOf", "stateMutability": "view",
     "inputs": [{"name": "provider", "type": "address"}],
     "outputs": [{"name": "umbralPublicKey", "type": "bytes"},
                 {"name": "credentialCommitment", "type": "bytes32"},
                 {"name": "active", "type": "bool"}, {"name": "registeredAt", "type": "uint64"}]},
]
LEDGER_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "setEmergencyPolicy", "stateMutability": "nonpayable",
     "inputs": [{"name": "allowed", "type": "bool"}, {"name": "maxDuration", "type": "uint64"}],
     "outputs": []},
    {"type": "function", "name": "emergencyAccessUntil", "stateMutability": "view",
     "inputs": [{"name": "patient", "type": "address"}, {"name": "provider", "type": "address"}],
     "outputs": [{"name": "", "type": "uint64"}]},
]


def _contract(stack: WebStack, name: str, abi: list[dict[str, Any]]) -> tuple[Web3, Any]:
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    deployment = json.loads(stack.deployment_file.read_text(encoding="utf-8"))
    address = Web3.to_checksum_address(deployment["contracts"][name]["address"])
    return w3, w3.eth.contract(address=address, abi=abi)


def _demo_wallet(web: Web, name: str) -> TestWallet:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account(name)])
    wallet.fund()
    return wallet


def _connect(web: Web, wallet: TestWallet, device: str = "desktop", path: str = "/",
             first: str = "Account") -> Session:
    session = web.open([wallet], device=device, path=path)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    nav = page.get_by_role("navigation", name="Your record")
    expect(nav.get_by_role("link", name=first, exact=True)).to_be_visible(timeout=CONNECT_TIMEOUT)
    return session


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _kenjis(stack: WebStack, kind: str, sender: str) -> list[bytes]:
    """The messages of ``kind`` from ``sender`` in kenji's inbox, each decrypted by his own
    client (``kizuna patient inbox`` / ``open``'s, in this process)."""
    with stack.patient("kenji") as kenji:
        return [kenji.open_message(bytes(i.ref)) for i in kenji.inbox()
                if i.kind == kind and i.actor.lower() == sender.lower() and i.cid is not None]


def test_dr_sato_asks_kenji_for_access_then_sends_a_report_kenji_opens(web: Web) -> None:
    stack = web.stack
    kenji = stack.demo_account("kenji").address
    sato = _demo_wallet(web, "dr-sato")
    session = _connect(web, sato, first="Care")
    page = session.page
    _go(page, "Care")
    form = page.get_by_test_id("request-form")
    # A bad address is named under its field, and nothing is asked of the wallet.
    form.locator("#request-patient").fill("kenji")
    form.locator("#ask-vitals").check()
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("#request-patient-error")).to_contain_text("not an Ethereum address")
    assert sato.calls_of("eth_sendTransaction") == []
    note = "For your follow-up next week: blood pressure trend."
    form.locator("#request-patient").fill(kenji)
    form.locator("#ask-labs").check()
    form.get_by_label("Note to the patient (why you ask)").fill(note)
    form.locator("#request-days").fill("14")
    form.get_by_role("button", name="Send request").click()
    expect(page.get_by_test_id("request-done")).to_contain_text("Request sent",
                                                                timeout=CHAIN_TIMEOUT)
    sent = sato.calls_of("eth_sendTransaction")
    assert len(sent) == 1 and "Ask for access" in (sent[0].prompt or ""), sent
    row = page.locator(f'[data-testid="sent-request"][data-patient="{kenji}"]').first
    expect(row).to_have_attribute("data-state", "open", timeout=60_000)
    # Only kenji can read the note: his own client finds the request and decrypts it.
    asked = [m.decode() for m in _kenjis(stack, "access-request", sato.address)]
    opened = next((m for m in asked if note in m), None)
    assert opened is not None, asked
    assert "Vital signs (Observation:vital-signs)" in opened
    assert "Lab results (Observation:laboratory)" in opened and "for 14 days" in opened
    assert not session.watched.carrying(note.encode()), "the note left the page in clear"

    # A visit report, made by the form as FHIR, sealed to kenji's key.
    send = page.get_by_test_id("send-form")
    send.locator("#send-patient").fill(kenji)
    send.get_by_label("What you send").select_option("report")
    send.get_by_label("Report", exact=True).fill(
        "Blood pressure 128/84, stable. Continue as before.")
    send.get_by_label("Title").fill("Follow-up visit")
    send.get_by_role("button", name="Encrypt and send").click()
    expect(page.get_by_test_id("send-done")).to_contain_text("Visit report sent",
                                                             timeout=CHAIN_TIMEOUT)
    reports = [json.loads(m) for m in _kenjis(stack, "report", sato.address)]
    report = next((r for r in reports if r.get("code", {}).get("text") == "Follow-up visit"), None)
    assert report is not None, reports
    assert report["resourceType"] == "DiagnosticReport", report
    assert report["conclusion"] == "Blood pressure 128/84, stable. Continue as before."
    assert report["code"]["text"] == "Follow-up visit"
    assert not session.watched.carrying(b"Continue as before"), "the report left the page in clear"
    check_layout(session, "provider-care-requests")
    session.check()


def test_break_glass_where_the_patients_policy_allows_it(web: Web) -> None:
    w3, ledger = _contract(web.stack, "ConsentLedger", LEDGER_ABI)
    patient = Account.create()
    web.wallet(accounts=[patient])  # funded
    sato = _demo_wallet(web, "dr-sato")
    session = _connect(web, sato, first="Care")
    page = session.page
    _go(page, "Care")
    glass = page.get_by_test_id("glass-form")
    glass.locator("#glass-patient").fill(patient.address)
    expect(page.get_by_test_id("glass-policy")).to_contain_text("not allowed", timeout=60_000)
    expect(glass.get_by_role("button", name="Open emergency access")).to_be_disabled()
    # The patient allows up to 6 hours (their own transaction).
    tx = ledger.functions.setEmergencyPolicy(True, 6 * 3600).build_transaction({
        "from": patient.address, "nonce": w3.eth.get_transaction_count(patient.address),
        "chainId": web.stack.chain_id})
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(patient.sign_transaction(tx).raw_transaction))
    glass.locator("#glass-patient").fill("")
    glass.locator("#glass-patient").fill(patient.address)
    expect(page.get_by_test_id("glass-policy")).to_contain_text("allowed for at most",
                                                                timeout=60_000)
    # More than the policy allows is refused in the page, under its field.
    glass.get_by_label("For how many hours").fill("7")
    glass.get_by_role("button", name="Open emergency access").click()
    expect(glass.locator("#glass-hours-error")).to_contain_text("at most")
    glass.get_by_label("For how many hours").fill("2")
    glass.get_by_label("Reason (recorded on the chain)").select_option("1")
    glass.get_by_role("button", name="Open emergency access").click()
    expect(page.get_by_test_id("glass-done")).to_contain_text("flagged for an auditor's review",
                                                              timeout=CHAIN_TIMEOUT)
    until = ledger.functions.emergencyAccessUntil(patient.address, sato.address).call()
    assert until > w3.eth.get_block("latest")["timestamp"] + 3600, until
    access = page.locator(
        f'[data-testid="emergency-access"][data-patient="{patient.address}"]').first
    expect(access).to_have_attribute("data-open", "true", timeout=60_000)
    countdown = access.get_by_test_id("countdown")
    expect(countdown).to_have_text(re.compile(r"^1 h 5\d min$"))
    expect(access.get_by_test_id("review")).to_contain_text("flagged for review")
    check_layout(session, "provider-care-break-glass")
    session.check()


def test_the_registrar_verifies_suspends_and_reinstates_a_new_provider(web: Web) -> None:
    _, registry = _contract(web.stack, "ProviderRegistry", REGISTRY_ABI)
    newcomer = web.wallet()
    # No role yet: the provider opens #/registry and sees the key to hand to a registrar.
    mine = _connect(web, newcomer, path="/#/registry", first="Registry")
    _go(mine.page, "Registry")
    own = mine.page.get_by_test_id("own-status")
    expect(own.get_by_test_id("own-badge")).to_have_text("not registered", timeout=60_000)
    key = own.get_by_test_id("own-key").inner_text().strip()
    assert re.fullmatch(r"0x0[23][0-9a-f]{64}", key), key
    check_layout(mine, "provider-registry-unregistered")

    registrar = _demo_wallet(web, "registrar")
    session = _connect(web, registrar, first="Registry")
    page = session.page
    _go(page, "Registry")
    add = page.get_by_test_id("add-provider")
    add.locator("#add-provider-address").fill(newcomer.address)
    add.locator("#add-provider-key").fill("0x04" + "ab" * 32)
    add.locator("#add-provider-credential").fill("licence 4711, Tokyo medical board")
    add.get_by_role("button", name="Verify and add").click()
    expect(add.locator("#add-provider-key-error")).to_contain_text("compressed public key")
    add.locator("#add-provider-key").fill(key)
    add.get_by_role("button", name="Verify and add").click()
    expect(page.get_by_test_id("registrar-done")).to_contain_text("is verified",
                                                                  timeout=CHAIN_TIMEOUT)
    entry = registry.functions.providerOf(newcomer.address).call()
    assert "0x" + bytes(entry[0]).hex() == key and entry[2] is True
    row = page.locator(f'[data-testid="registry-row"][data-provider="{newcomer.address}"]')
    expect(row).to_have_attribute("data-active", "true", timeout=60_000)
    row.get_by_role("button", name=f"Suspend {newcomer.address}").click()
    expect(row).to_have_attribute("data-active", "false", timeout=CHAIN_TIMEOUT)
    assert registry.functions.isActiveProvider(newcomer.address).call() is False
    row.get_by_role("button", name=f"Reinstate {newcomer.address}").click()
    expect(row).to_have_attribute("data-active", "true", timeout=CHAIN_TIMEOUT)
    assert registry.functions.isActiveProvider(newcomer.address).call() is True
    assert len(registrar.calls_of("eth_sendTransaction")) == 3
    check_layout(session, "registrar-registry")

    # The provider's page, read again from the chain: verified, with the key it derives.
    own.get_by_role("button", name="Refresh").click()
    expect(own.get_by_test_id("own-badge")).to_have_text("verified", timeout=60_000)
    mine.check()
    session.check()


def test_care_and_registry_pages_at_phone_width(web: Web) -> None:
    sato = _demo_wallet(web, "dr-sato")
    session = _connect(web, sato, device="phone", first="Care")
    page = session.page
    _go(page, "Care")
    listed = page.get_by_test_id("sent-requests").or_(page.get_by_text("No requests yet."))
    expect(listed).to_be_visible(timeout=60_000)
    check_layout(session, "provider-care")
    _go(page, "Registry")
    expect(page.get_by_test_id("own-badge")).to_have_text("verified", timeout=60_000)
    check_layout(session, "provider-registry")
    session.check()
    registrar = _demo_wallet(web, "registrar")
    other = _connect(web, registrar, device="phone", first="Registry")
    _go(other.page, "Registry")
    expect(other.page.get_by_test_id("registry-table")).to_be_visible(timeout=60_000)
    check_layout(other, "registrar-registry")
    other.check()
