"""The auditor's pages (issue 14) against a real ``kizuna up --demo``: a fresh test wallet given
the auditor role on chain (as tests/cli/roles_fixtures.py grants it) sees the demo's events in
the log, with
working filters and deep links; verifies the demo's anchored reads in the page (all pass); a
receipt altered in the stack's database (restored after) is flagged with its evidence; a root
another anchorer (as a threshold proxy node is) anchors is not the service's missing batch; the
export downloads a FHIR Bundle. Screenshots at desktop and phone width, axe-core on each page."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from auditor_pages import VERIFY_TIMEOUT, auditor, connect, tampered_receipt, verify, wait_anchored
from browser import Session, axe_violations, describe
from playwright.sync_api import Page, expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]


def _another_anchorer_anchors(web: Web) -> str:
    """A second anchorer, as a threshold proxy node is (``kizuna up --proxies``): a funded
    wallet granted ANCHOR_ROLE by the deployer (AccessLog's admin) anchors a root of its own,
    in its own sequence of batches. The root (0x hex)."""
    from kizuna.chain.connection import connect
    from kizuna.chain.localnode import dev_private_keys
    from kizuna.chain.signers import LocalKeySigner

    node = web.wallet()
    chain = connect(web.stack.rpc_url, web.stack.deployment_file)
    access_log = chain.access_log
    access_log.grant_role(access_log.anchor_role(), node.address,
                          signer=LocalKeySigner(dev_private_keys(1)[0]))
    now = chain.head().timestamp
    root = os.urandom(32)
    access_log.anchor(root, 2, now - 10, now - 5,
                      signer=LocalKeySigner("0x" + bytes(node.accounts[0].key).hex()))
    return "0x" + root.hex()

def _check_layout(session: Session, name: str) -> None:
    session.screenshot(name)
    assert session.overflow() == 0, f"the page is {session.overflow()}px wider than the screen"
    violations = axe_violations(session.page)  # serious and critical
    assert not violations, describe(violations)


def _rows(page: Page) -> int:
    return page.get_by_test_id("audit-log-table").locator("tbody tr").count()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_log_shows_the_demos_events_with_filters_and_deep_links(web: Web, device: str) -> None:
    aiko = web.stack.demo_account("aiko").address
    tanaka = web.stack.demo_account("dr-tanaka").address
    session = connect(web, auditor(web), device)
    page = session.page
    # First in an auditor's navigation: the landing page is the log.
    nav = page.get_by_role("navigation").get_by_role("link")
    expect(nav.first).to_have_text("Audit log")
    table = page.get_by_test_id("audit-log-table")
    expect(table).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("audit-log-source")).to_contain_text(
        "decoded from the blockchain by the Kizuna service")
    for kind in ("access-granted", "read", "record-registered"):
        assert table.locator(f'tbody tr[data-kind="{kind}"]').count() >= 1, kind
    everything = page.get_by_role("heading", name=re.compile(r"^Events \(")).inner_text()

    # A filter by patient and kind: a URL of its own, only matching rows.
    page.get_by_label("Patient").fill(aiko)
    page.get_by_label("Event kind").select_option("read")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(rf"#/audit\?patient={aiko}&kind=read$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Events \("))).not_to_have_text(everything)
    rows = table.locator("tbody tr")
    assert rows.count() >= 3, table.inner_text()
    assert table.locator("tbody tr:not([data-kind='read'])").count() == 0
    expect(rows.first.locator(f'[title="{tanaka}"]')).to_be_visible()
    expect(rows.first.locator(f'[title="{aiko}"]')).to_be_visible()
    _check_layout(session, "audit-log")

    # A bad address is refused by field, and the applied filter stays.
    page.get_by_label("Provider").fill("0x1234")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("Provider: not an Ethereum address")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"#/audit\?patient={aiko}&kind=read$"))

    if device == "phone":
        return
    # The deep link, opened in a fresh page, shows the same view; then one event's link.
    link = page.get_by_test_id("audit-view-link").get_attribute("href")
    assert link
    # The same rows (of a log one role grant longer: the new auditor's).
    heading = page.get_by_role("heading", name=re.compile(r"^Events \("))
    shown = heading.inner_text().split(" of ")[0]
    again = connect(web, auditor(web), path="/" + link)
    expect(again.page.get_by_role("heading", name=re.compile(r"^Events \("))).to_contain_text(
        shown + " of ", timeout=60_000)
    expect(again.page.get_by_label("Event kind")).to_have_value("read")
    page.get_by_label("Provider").fill("")
    page.get_by_label("Event kind").select_option("access-granted")
    page.get_by_role("button", name="Apply filters").click()
    grant = table.locator("tbody tr").first
    expect(grant).to_have_attribute("data-kind", "access-granted")
    grant.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#/audit\?tx=0x[0-9a-f]{64}&log=\d+$"))
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_text("Showing one event")).to_be_visible()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_verification_passes_then_flags_a_receipt_tampered_in_the_database(web: Web,
                                                                           device: str) -> None:
    anchored = wait_anchored(web.stack)
    session = connect(web, auditor(web), device)
    page = session.page
    verify(page)
    result = page.get_by_test_id("verify-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("Every read receipt is under a root anchored on-chain")
    summary = result.locator(".audit-summary").inner_text()
    proofs = int(re.search(r"(\d+)\s*Merkle proofs verified here", summary).group(1))  # type: ignore[union-attr]
    assert proofs >= min(anchored, 3), summary
    expect(page.get_by_test_id("audit-relied")).to_contain_text("Relied on the service for")
    _check_layout(session, "audit-verify-ok")

    # AccessLog keeps each anchorer's batches apart: a node's root is none of the service's.
    node_root = _another_anchorer_anchors(web)
    page.get_by_role("button", name="Run again").click()
    # The last result stays on screen while the run goes on: wait for the run to end.
    expect(page.get_by_test_id("verify-progress")).to_be_visible()
    expect(page.get_by_test_id("verify-progress")).to_have_count(0, timeout=VERIFY_TIMEOUT)
    expect(result).to_have_attribute("data-ok", "true")
    expect(page.get_by_test_id("finding")).to_have_count(0)
    expect(page.get_by_text(node_root)).to_have_count(0)

    with tampered_receipt(web.stack) as (request_id, seq):
        page.get_by_role("button", name="Run again").click()
        expect(result).to_have_attribute("data-ok", "false",
                                         timeout=VERIFY_TIMEOUT)
        findings = page.get_by_test_id("finding")
        checks = sorted(findings.nth(i).get_attribute("data-check") or ""
                        for i in range(findings.count()))
        assert checks == ["receipt.leaf", "receipt.proof"], checks
        for i in range(findings.count()):
            expect(findings.nth(i)).to_contain_text(request_id)
            expect(findings.nth(i)).to_contain_text(f"receipt seq{seq}")
        proof = page.locator('[data-testid="finding"][data-check="receipt.proof"]')
        expect(proof).to_contain_text("anchored root")
        expect(proof).to_contain_text("proof leads to")
        _check_layout(session, "audit-verify-tampered")
    page.get_by_role("button", name="Run again").click()
    expect(result).to_have_attribute("data-ok", "true", timeout=VERIFY_TIMEOUT)


def test_charts_and_export_of_a_patients_bundle(web: Web) -> None:
    aiko = web.stack.demo_account("aiko").address
    session = connect(web, auditor(web))
    page = session.page
    page.get_by_role("navigation").get_by_role("link", name="Audit charts").click()
    expect(page.get_by_test_id("chart-reads-summary")).to_contain_text(
        re.compile(r"\d+ over \d+ day"), timeout=60_000)
    expect(page.get_by_test_id("chart-consent-summary")).to_contain_text("Grants:")
    expect(page.locator(".fhir-plot canvas").first).to_be_visible()
    _check_layout(session, "audit-charts")

    page.get_by_role("navigation").get_by_role("link", name="Export (FHIR)").click()
    page.get_by_label("Patient").fill(aiko)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the Bundle").click()
    saved = download.value.path()
    bundle = json.loads(Path(saved).read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"AuditEvent", "Consent", "Provenance"} <= types, types
    assert download.value.suggested_filename.startswith("kizuna-audit-" + aiko[:10])
    expect(page.get_by_test_id("export-done")).to_contain_text("AuditEvent")
    # A period before anything happened: an empty Bundle, said so.
    page.get_by_label("From (day)").fill("2000-01-01")
    page.get_by_label("To (day)").fill("2000-01-02")
    with page.expect_download() as empty:
        page.get_by_role("button", name="Download the Bundle").click()
    assert json.loads(Path(empty.value.path()).read_text(encoding="utf-8"))["entry"] == []
    expect(page.get_by_test_id("export-done")).to_contain_text("no entries in this period")
    _check_layout(session, "audit-export")
