"""The provider's reading pages in the browser (issue 14), against a real ``kizuna up --demo``:
the test wallet signs as the demo's dr-tanaka. It connects, sees aiko among its patients with
the scopes she granted and until when (from the chain), opens her records, reads one in the
page — a ReadRequest signed in the wallet, decrypted with its wallet-derived key — and the
downloaded FHIR JSON is byte-equal to what ``kizuna provider read``'s client decrypts (in this
process); "Read all" reads every record, one signed request each. Then aiko revokes that
record's scope from Python (her CLI's client, in this process) while the page is open, and the
next read is refused with the explanation (which scope, revoked, when in the reader's local
time, which block), not a bare 403; and again with aiko revoking in her own page, in a second
browser context, while dr-tanaka's page stays open. Nothing secret crosses the wire (no
plaintext, no key material); screenshots at desktop and phone width; axe-core finds no serious
violation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser import Session, axe_violations, describe
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import WebStack

from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys
from kizuna.types import Address

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 90_000
# The demo's aiko → dr-tanaka scope this test revokes (and grants again at the end).
REVOKED = "Condition:problem-list-item"


def _readable(stack: WebStack) -> list[dict[str, str]]:
    """The records of aiko's dr-tanaka may read, as ``kizuna provider records --patient aiko``
    lists them (its client, in this process)."""
    with stack.provider("dr-tanaka") as tanaka:
        return [{"record_id": "0x" + bytes(r.record_id).hex()}
                for r in tanaka.records(patient=stack.demo_account("aiko").address)]


def _aikos_records(stack: WebStack) -> dict[str, dict[str, str]]:
    """aiko's own records by id, with each one's scope label and id (``kizuna patient records
    --key aiko``'s listing, from her client in this process)."""
    with stack.patient("aiko") as aiko:
        return {"0x" + bytes(r.record_id).hex(): {
            "record_id": "0x" + bytes(r.record_id).hex(), "label": str(label),
            "scope_id": "0x" + bytes(r.scope_id).hex()} for r, label in aiko.labelled_records()}


def _grant_again(stack: WebStack) -> None:
    """aiko grants dr-tanaka the revoked scope again for 30 days (``kizuna patient grant
    dr-tanaka SCOPE --days 30``'s call): the stack is shared with the other tests."""
    with stack.patient("aiko") as aiko:
        aiko.grant(stack.demo_account("dr-tanaka").address, [REVOKED],
                   expires_at=aiko.now() + 30 * 86_400)


def _tanaka(web: Web) -> TestWallet:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account("dr-tanaka")])
    wallet.fund()
    return wallet


def _connect(web: Web, wallet: TestWallet, device: str) -> Session:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    nav = page.get_by_role("navigation").first
    expect(nav.get_by_role("link", name="Patients", exact=True)).to_be_visible(timeout=TIMEOUT)
    # A provider's pages come first in the navigation.
    assert nav.get_by_role("link").first.inner_text().strip() == "Patients"
    return session


def _read_requests(wallet: TestWallet) -> int:
    return sum(1 for c in wallet.calls_of("eth_signTypedData_v4")
               if "ReadRequest" in json.dumps(c.params))


def _axe(page: Page, what: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"{what}: {describe(violations)}"


def _assert_local_time(text: str) -> None:
    """The refusal's "on <time>" is the page's local time (the browser context's Asia/Tokyo,
    en-US, as every other page formats times: web/src/ui/format.ts), within minutes of now;
    a time shown in UTC is 9 hours off."""
    found = re.search(r" on ([A-Z][a-z]{2} \d{1,2}, \d{4}, \d\d:\d\d [AP]M) \(block", text)
    assert found, f"no local date and time in the refusal: {text!r}"
    shown = datetime.strptime(found.group(1), "%b %d, %Y, %I:%M %p").replace(
        tzinfo=ZoneInfo("Asia/Tokyo"))
    assert abs((datetime.now(UTC) - shown).total_seconds()) < 15 * 60, (found.group(1), text)


def _open_patient(page: Page, aiko: str) -> None:
    card = page.locator(f'[data-testid="provider-patient"][data-patient="{aiko}"]')
    expect(card).to_be_visible(timeout=TIMEOUT)
    card.get_by_role("link", name=re.compile("Open records of")).click()
    expect(page.get_by_test_id("readable-records").locator("tbody tr").first).to_be_visible(
        timeout=TIMEOUT)


def test_a_provider_reads_in_the_page_and_is_refused_after_a_revocation(web: Web) -> None:
    stack = web.stack
    aiko = str(stack.demo_account("aiko").address)
    wallet = _tanaka(web)
    session = _connect(web, wallet, "desktop")
    page = session.page

    # 1. Patients: aiko, with the scopes she granted, each live and until when.
    card = page.locator(f'[data-testid="provider-patient"][data-patient="{aiko}"]')
    expect(card).to_be_visible(timeout=TIMEOUT)
    live = card.locator('[data-testid="provider-grant"][data-state="live"]')
    expect(live).to_have_count(3)  # the demo: lab results, conditions, medications
    expect(live.first).to_contain_text("until")
    expect(page.get_by_test_id("registry-status")).to_contain_text("Verified")
    session.screenshot("provider-patients")
    _axe(page, "patients page")

    # 2. Her records: what the Python provider lists for dr-tanaka, filterable by scope.
    _open_patient(page, aiko)
    readable = _readable(stack)
    rows = page.get_by_test_id("readable-records").locator("tbody tr")
    expect(rows).to_have_count(len(readable), timeout=TIMEOUT)
    # Her own list names each record's scope (the provider's has only blinded ids).
    own = _aikos_records(stack)
    target = next(own[r["record_id"]] for r in readable if own[r["record_id"]]["label"] == REVOKED)
    same_scope = [r for r in readable if own[r["record_id"]]["scope_id"] == target["scope_id"]]
    page.get_by_label("Scope").select_option(target["scope_id"].lower())
    expect(rows).to_have_count(len(same_scope), timeout=TIMEOUT)
    page.get_by_label("Scope").select_option("")
    expect(rows).to_have_count(len(readable), timeout=TIMEOUT)

    # 3. Read one: rendered for people, its FHIR JSON byte-equal to the Python provider's read.
    before = _read_requests(wallet)
    row = page.locator(f'tr[data-record="{target["record_id"].lower()}"]')
    row.get_by_role("button", name=re.compile("^Read record")).click()
    shown = page.locator(f'.provider-read[data-record="{target["record_id"].lower()}"]')
    expect(shown.get_by_test_id("timeline-item")).to_be_visible(timeout=TIMEOUT)
    expect(shown).to_contain_text("Condition")
    assert _read_requests(wallet) == before + 1
    with page.expect_download() as download:
        shown.get_by_role("button", name=re.compile("^Download FHIR JSON")).click()
    in_page = Path(download.value.path()).read_bytes()
    with stack.provider("dr-tanaka") as python_provider:  # `kizuna provider read`'s client
        python_read = python_provider.read(patient=aiko, record_id=bytes.fromhex(
            target["record_id"].removeprefix("0x")))
    assert in_page == python_read, "the page's plaintext differs from the Python provider's"

    # 4. Read all: every record, each its own signed request (one wallet prompt each).
    before = _read_requests(wallet)
    page.get_by_role("button", name=re.compile(r"^Read all \d+ record")).click()
    expect(page.get_by_role("heading", name=f"Read in this page ({len(readable)})")).to_be_visible(
        timeout=TIMEOUT)
    expect(page.get_by_test_id("read-all-progress")).to_have_count(0, timeout=TIMEOUT)
    assert _read_requests(wallet) == before + len(readable)
    session.screenshot("provider-patient-records")
    _axe(page, "patient records page")

    # 5. aiko revokes the scope while the page is open: the next read is refused, explained.
    try:
        with stack.patient("aiko") as aiko_client:  # `kizuna patient revoke`'s call
            aiko_client.revoke(stack.demo_account("dr-tanaka").address, REVOKED)
        # The refusal is the API's 403 (the browser logs it): expected here, explained below.
        session.watched.allow_error(r"status of 403 .*/provider/reads")
        row.get_by_role("button", name=re.compile("^Read again record")).click()
        refused = page.get_by_test_id("read-refused")
        expect(refused).to_be_visible(timeout=TIMEOUT)
        expect(refused).to_have_attribute("role", "alert")
        scope = target["scope_id"].lower()
        expect(refused).to_contain_text(re.compile(
            rf"revoked scope {scope[:6]}…{scope[-4:]} on .+ \(block \d+\)"))
        _assert_local_time(refused.inner_text())
        expect(page.get_by_test_id("patient-grants")).to_contain_text("Revoked", timeout=TIMEOUT)
        expect(rows).to_have_count(len(readable) - len(same_scope), timeout=TIMEOUT)
        session.screenshot("provider-read-refused")
        _axe(page, "refused read")
    finally:
        _grant_again(stack)

    # 6. Nothing secret left the page: no plaintext, no key material, no key signature.
    watched = session.watched
    assert watched.requests
    body = json.loads(python_read)
    needles: dict[str, bytes] = {"the record's plaintext": python_read.strip()}
    for key in ("id", "code"):
        if isinstance(body.get(key), str) and len(body[key]) >= 8:
            needles[f"the record's {key}"] = body[key].encode()
    derivation = next(c for c in wallet.calls_of("eth_signTypedData_v4")
                      if "KeyDerivation" in json.dumps(c.params))
    signature = bytes.fromhex(str(derivation.answer["result"]).removeprefix("0x"))
    deployment = json.loads(stack.deployment_file.read_text(encoding="utf-8"))
    keys = derive_wallet_keys(signature=signature, account=wallet.address,
                              domain=KeyDerivationDomain(
                                  chain_id=stack.chain_id, verifying_contract=Address(
                                      deployment["contracts"]["ConsentLedger"]["address"])))
    needles["the key-derivation signature"] = signature
    needles["the decrypting key"] = keys.decrypting_key.to_secret_bytes()
    needles["the signing key"] = keys.signing_key.to_secret_bytes()
    leaks = {what: watched.carrying(needle) for what, needle in needles.items()}
    assert not {k: v for k, v in leaks.items() if v}, f"secrets left the page: {leaks}"
    # The search can find what is there: the read requests carry the record id.
    assert watched.carrying(bytes.fromhex(target["record_id"].removeprefix("0x")))
    session.check()


def test_the_patient_revokes_in_her_page_while_the_providers_page_is_open(web: Web) -> None:
    """Two browser contexts: dr-tanaka's records page open with a record read; aiko, in her
    own page, stops sharing that record's scope; dr-tanaka's next read (no reload) is refused
    with the explanation — which scope, revoked, when in local time, which block."""
    stack = web.stack
    aiko = str(stack.demo_account("aiko").address)
    tanaka = str(stack.demo_account("dr-tanaka").address)
    readable = _readable(stack)
    own = _aikos_records(stack)
    target = next(own[r["record_id"]] for r in readable if own[r["record_id"]]["label"] == REVOKED)
    record_id = target["record_id"].lower()

    provider = _connect(web, _tanaka(web), "desktop")
    _open_patient(provider.page, aiko)
    row = provider.page.locator(f'tr[data-record="{record_id}"]')
    row.get_by_role("button", name=re.compile("^Read record")).click()
    shown = provider.page.locator(f'.provider-read[data-record="{record_id}"]')
    expect(shown.get_by_test_id("timeline-item")).to_be_visible(timeout=TIMEOUT)

    aiko_wallet = TestWallet(rpc_url=stack.rpc_url, chain_id=stack.chain_id,
                             accounts=[stack.demo_account("aiko")])
    patient = web.open([aiko_wallet])
    try:
        patient.page.get_by_role("button", name="Connect wallet").click()
        patient.page.get_by_role("navigation").get_by_role("link", name="Sharing").click(
            timeout=TIMEOUT)
        card = patient.page.get_by_role("article", name=f"Shared with {tanaka}")
        card.get_by_role("button", name=f"Stop sharing {REVOKED}").click(timeout=TIMEOUT)
        expect(patient.page.get_by_test_id("notice").filter(
            has_text=re.compile(rf"Stopped sharing .*\({REVOKED}\)"))).to_be_visible(
                timeout=TIMEOUT)
        revoke = [c for c in aiko_wallet.calls if c.method in ("eth_signTypedData_v4",
                                                                "eth_sendTransaction")][-1]
        assert revoke.prompt and tanaka in revoke.prompt, revoke.prompt
        patient.screenshot("patient-revoked-while-provider-open")

        # The provider's page, open all along: the next read is refused, and says why.
        provider.watched.allow_error(r"status of 403 .*/provider/reads")
        row.get_by_role("button", name=re.compile("^Read again record")).click()
        refused = provider.page.get_by_test_id("read-refused")
        expect(refused).to_be_visible(timeout=TIMEOUT)
        expect(refused).to_have_attribute("role", "alert")
        scope = target["scope_id"].lower()
        expect(refused).to_contain_text(re.compile(
            rf"The patient revoked scope {scope[:6]}…{scope[-4:]} on .+ \(block \d+\)"))
        _assert_local_time(refused.inner_text())
        expect(provider.page.get_by_test_id("patient-grants")).to_contain_text(
            "Revoked", timeout=TIMEOUT)
        provider.screenshot("provider-refused-after-patient-revoked-in-page")
        _axe(provider.page, "refused read after a revocation in the patient's page")
    finally:
        _grant_again(stack)


def test_the_provider_pages_at_phone_width(web: Web) -> None:
    aiko = str(web.stack.demo_account("aiko").address)
    wallet = _tanaka(web)
    session = _connect(web, wallet, "phone")
    page = session.page
    expect(page.locator(f'[data-testid="provider-patient"][data-patient="{aiko}"]')).to_be_visible(
        timeout=TIMEOUT)
    session.screenshot("provider-patients")
    assert session.overflow() == 0, "the patients page is wider than the phone"
    _open_patient(page, aiko)
    page.get_by_test_id("readable-records").get_by_role(
        "button", name=re.compile("^Read record")).first.click()
    expect(page.get_by_test_id("provider-read-records").get_by_test_id("timeline-item").first
           ).to_be_visible(timeout=TIMEOUT)
    session.screenshot("provider-patient-records")
    assert session.overflow() == 0, "the records page is wider than the phone"
    _axe(page, "records page at phone width")
    session.check()
