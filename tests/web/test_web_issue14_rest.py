"""What issue 14's first round left open, in the browser against a real ``kizuna up --demo``:

* Break-glass, the review that follows: dr-sato's emergency access to a fresh patient (opened
  with sato's own transaction) awaits review on his Care page; an auditor, in a second browser
  context, marks it reviewed on the Reviews page; sato's page then says by whom and when (GET
  /provider/emergencies, the service's record of the review).
* The FHIR export of a period is cut by the service: the Export page sends ``since`` / ``until``
  (the days' bounds, UTC) to GET /auditor/export; a past period gives an empty Bundle, today's
  holds the patient's AuditEvents; a period ending before it starts is named under its field
  before anything is asked.
* The auditor's charts at both widths.
* A provider's Timeline of what they read: dr-tanaka reads aiko's records (one signed request
  each) and shows them as the patient's Timeline (by day, filterable); switching views signs
  nothing.
* Screenshots at desktop and phone width, no horizontal overflow, axe-core: 0 serious.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from auditor_pages import auditor
from auditor_pages import connect as connect_auditor
from browser import Session, check_layout
from eth_account import Account
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web3 import Web3
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000

LEDGER_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "setEmergencyPolicy", "stateMutability": "nonpayable",
     "inputs": [{"name": "allowed", "type": "bool"}, {"name": "maxDuration", "type": "uint64"}],
     "outputs": []},
    {"type": "function", "name": "openEmergencyAccess", "stateMutability": "nonpayable",
     "inputs": [{"name": "patient", "type": "address"}, {"name": "duration", "type": "uint64"},
                {"name": "reasonCode", "type": "uint16"}], "outputs": []},
]


def _demo_wallet(web: Web, name: str) -> TestWallet:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account(name)])
    wallet.fund()
    return wallet


def _connect(web: Web, wallet: TestWallet, first: str, device: str = "desktop") -> Session:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_role("navigation").first.get_by_role("link", name=first, exact=True)
           ).to_be_visible(timeout=TIMEOUT)
    return session


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation").first.get_by_role("link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _transact(w3: Web3, account: Any, call: Any) -> None:
    tx = call.build_transaction({"from": account.address,
                                 "nonce": w3.eth.get_transaction_count(account.address)})
    sent = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1


def test_the_provider_sees_the_auditors_review_of_their_break_glass(web: Web) -> None:
    stack = web.stack
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    deployment = json.loads(stack.deployment_file.read_text(encoding="utf-8"))
    ledger = w3.eth.contract(address=Web3.to_checksum_address(
        deployment["contracts"]["ConsentLedger"]["address"]), abi=LEDGER_ABI)
    patient = Account.create()
    web.wallet(accounts=[patient])  # funded
    sato_key = stack.demo_account("dr-sato")
    sato = _demo_wallet(web, "dr-sato")
    _transact(w3, patient, ledger.functions.setEmergencyPolicy(True, 6 * 3600))
    _transact(w3, sato_key, ledger.functions.openEmergencyAccess(patient.address, 3600, 2))

    mine = _connect(web, sato, "Care")
    _go(mine.page, "Care")
    access = mine.page.locator(
        f'[data-testid="emergency-access"][data-patient="{patient.address}"]').first
    review = access.get_by_test_id("review")
    expect(review).to_have_attribute("data-review", "awaiting", timeout=TIMEOUT)
    expect(review).to_contain_text("Awaiting an auditor's review")

    # The auditor, in another browser context, reviews it.
    checker = auditor(web)
    audit = connect_auditor(web, checker)
    _go(audit.page, "Reviews")
    item = audit.page.locator(f'[data-testid="review-item"][data-patient="{patient.address}"]')
    expect(item).to_have_count(1, timeout=TIMEOUT)
    expect(item).to_contain_text(sato.address)
    expect(item).to_contain_text("Life-threatening emergency")
    check_layout(audit, "audit-reviews")
    item.get_by_role("button", name=re.compile("^Mark reviewed")).click()
    expect(audit.page.get_by_test_id("review-done")).to_contain_text("Marked reviewed",
                                                                     timeout=TIMEOUT)
    expect(item).to_have_count(0, timeout=TIMEOUT)
    # Marking asks nothing of the wallet: it is the auditor's session.
    assert checker.calls_of("eth_sendTransaction") == []
    audit.check()

    # The provider's page, opened again: reviewed, by that auditor.
    _go(mine.page, "Registry")
    _go(mine.page, "Care")
    expect(review).to_have_attribute("data-review", "reviewed", timeout=TIMEOUT)
    short = f"{checker.address[:6]}…{checker.address[-4:]}"
    expect(review).to_contain_text(f"Reviewed by auditor {short} on")
    check_layout(mine, "provider-break-glass-reviewed")
    mine.check()
    phone = _connect(web, sato, "Care", device="phone")
    _go(phone.page, "Care")
    expect(phone.page.locator(
        f'[data-testid="emergency-access"][data-patient="{patient.address}"]').first
        .get_by_test_id("review")).to_have_attribute("data-review", "reviewed", timeout=TIMEOUT)
    check_layout(phone, "provider-break-glass-reviewed")
    phone_audit = connect_auditor(web, checker, "phone")
    _go(phone_audit.page, "Reviews")
    expect(phone_audit.page.get_by_role("heading", name=re.compile(r"^Awaiting review"))
           ).to_be_visible(timeout=TIMEOUT)
    check_layout(phone_audit, "audit-reviews")


def _day_start(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_export_of_a_period_is_cut_by_the_service(web: Web, device: str) -> None:
    aiko = web.stack.demo_account("aiko").address
    session = connect_auditor(web, auditor(web), device)
    page = session.page
    _go(page, "Export (FHIR)")
    page.get_by_label("Patient").fill(aiko)
    # A period that ends before it starts: named under its field, nothing asked.
    page.get_by_label("From (day)").fill("2000-01-02")
    page.get_by_label("To (day)").fill("2000-01-01")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/auditor/export" in r.url else None)
    page.get_by_role("button", name="Download the Bundle").click()
    expect(page.locator("#export-to-error")).to_contain_text("before the start of the period")
    assert asked == []

    # A past period: the service sends an empty Bundle.
    page.get_by_label("To (day)").fill("2000-01-02")
    with page.expect_download() as past:
        page.get_by_role("button", name="Download the Bundle").click()
    assert json.loads(past.value.path().read_text(encoding="utf-8"))["entry"] == []
    assert asked and f"since={_day_start('2000-01-02')}" in asked[-1], asked
    assert f"until={_day_start('2000-01-02') + 86_399}" in asked[-1], asked
    expect(page.get_by_test_id("export-done")).to_contain_text("no entries in this period")

    # From yesterday to tomorrow (UTC): the demo's reads of aiko's records.
    today = datetime.now(UTC).date()
    days = [today.fromordinal(today.toordinal() + d).isoformat() for d in (-1, 1)]
    page.get_by_label("From (day)").fill(days[0])
    page.get_by_label("To (day)").fill(days[1])
    with page.expect_download() as recent:
        page.get_by_role("button", name="Download the Bundle").click()
    bundle = json.loads(recent.value.path().read_text(encoding="utf-8"))
    assert f"since={_day_start(days[0])}" in asked[-1], asked
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert "AuditEvent" in kinds, kinds
    for entry in bundle["entry"]:
        r = entry["resource"]
        when = r.get("recorded") or r.get("dateTime")
        assert when and days[0] <= when[:10] <= days[1], r
    expect(page.get_by_test_id("export-done")).to_contain_text("AuditEvent")
    check_layout(session, "audit-export-period")
    # The charts page at this width too (the first round screenshot it at desktop only).
    _go(page, "Audit charts")
    expect(page.get_by_test_id("chart-reads-summary")).to_contain_text(
        re.compile(r"\d+ over \d+ day"), timeout=TIMEOUT)
    check_layout(session, "audit-charts")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_provider_sees_what_they_read_as_the_patients_timeline(web: Web, device: str) -> None:
    aiko = web.stack.demo_account("aiko").address
    tanaka = _demo_wallet(web, "dr-tanaka")
    session = _connect(web, tanaka, "Patients", device)
    page = session.page
    card = page.locator(f'[data-testid="provider-patient"][data-patient="{aiko}"]')
    expect(card).to_be_visible(timeout=TIMEOUT)
    card.get_by_role("link", name=re.compile("Open records of")).click()
    rows = page.get_by_test_id("readable-records").locator("tbody tr")
    expect(rows.first).to_be_visible(timeout=TIMEOUT)
    total = rows.count()

    def signed() -> int:
        return sum(1 for c in tanaka.calls_of("eth_signTypedData_v4")
                   if "ReadRequest" in json.dumps(c.params))

    before = signed()
    page.get_by_role("button", name=re.compile(r"^Read all \d+ record")).click()
    expect(page.get_by_role("heading", name=f"Read in this page ({total})")).to_be_visible(
        timeout=TIMEOUT)
    expect(page.get_by_test_id("read-all-progress")).to_have_count(0, timeout=TIMEOUT)
    assert signed() == before + total  # one signed request (and receipt) per read

    page.get_by_role("button", name="Timeline", exact=True).click()
    expect(page.get_by_role("button", name="Timeline", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    timeline = page.get_by_test_id("provider-timeline")
    expect(timeline.get_by_role("heading", name="Timeline of what you read")).to_be_visible()
    count = timeline.get_by_test_id("timeline-count")
    expect(count).to_have_text(re.compile(r"^\d+ records$"))
    shown = int(count.inner_text().split()[0])
    assert 0 < shown <= total, (shown, total)
    expect(timeline.locator(".fhir-day").first).to_be_visible()
    expect(timeline.get_by_test_id("timeline-item").first).to_be_visible()
    # Its filters: the Conditions aiko shares with him, by type; the scopes by their names.
    timeline.get_by_label("Type", exact=True).select_option("Condition")
    expect(count).to_contain_text(re.compile(rf"^\d+ of {shown} records match"))
    expect(timeline.get_by_test_id("timeline-item").first).to_contain_text("Condition")
    assert timeline.get_by_label("Sharing scope", exact=True).locator("option").count() > 1
    check_layout(session, "provider-timeline")
    timeline.get_by_role("button", name="Clear filters").click()
    page.get_by_role("button", name="List", exact=True).click()
    expect(page.get_by_test_id("provider-read-records")).to_be_visible()
    assert signed() == before + total  # switching views signs nothing
    session.check()
