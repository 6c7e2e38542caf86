"""A provider reads through threshold proxy nodes in the page (issue 17, docs/proxies.md), against
a real ``kizuna up --demo --proxies 3 --threshold 2``: kenji grants dr-sato a scope with the CLI
(2-of-3 fragments, one per node, none to the service), and dr-sato's page finds the nodes in the
ProxyRegistry (through the wallet), sends its one signed ReadRequest to each node directly (the
page's CSP lists the registered nodes; each node answers CORS for this page only), verifies each
capsule fragment and decrypts with two of them. With all three up: every node keeps a receipt,
the service none, and the plaintext is byte-equal to the CLI's read. With one node killed: the
read still succeeds and the page names the node that did not answer. With two killed: the read
fails, names both nodes and why, and decrypts nothing. Screenshots at desktop and phone width.
Before that, a grant of records kenji imported in a batch tells every node of them with their
Merkle proof (the API's record listing carries it), and the page reads one through the nodes."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import Session, axe_violations, describe
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import ThresholdStack, kill_node, threshold_stack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 90_000
SCOPE = "Observation:vital-signs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThresholdStack]:
    """This module's own stack: the demo with three proxy nodes, 2-of-3 (overrides the
    browser tests' shared stack, which runs none)."""
    with threshold_stack(tmp_path_factory.mktemp("web-threshold") / "home") as stack:
        yield stack


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _short(address: str) -> str:
    """web/src/ui/format.ts shortAddress."""
    return f"{address[:6]}…{address[-4:]}"


def _connect(web: Web, device: str) -> tuple[Session, TestWallet]:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account("dr-sato")])
    wallet.fund()
    session = web.open([wallet], device=device)
    # A dead node is a refused connection, which Chromium logs as a console error.
    session.watched.allow_error(r"ERR_CONNECTION_REFUSED|Failed to load resource")
    session.page.get_by_role("button", name="Connect wallet").click()
    expect(session.page.get_by_role("navigation").first.get_by_role(
        "link", name="Patients", exact=True)).to_be_visible(timeout=TIMEOUT)
    return session, wallet


def _open_patient(page: Page, patient: str) -> None:
    card = page.locator(f'[data-testid="provider-patient"][data-patient="{patient}"]')
    expect(card).to_be_visible(timeout=TIMEOUT)
    card.get_by_role("link", name=re.compile("Open records of")).click()
    expect(page.get_by_test_id("readable-records").locator("tbody tr").first).to_be_visible(
        timeout=TIMEOUT)


def _read(page: Page, record_id: str) -> None:
    row = page.locator(f'tr[data-record="{record_id.lower()}"]')
    row.get_by_role("button", name=re.compile("^Read")).click()


def _lab_bundle(path: Path) -> Path:
    """Two laboratory Observations in one Bundle: `kizuna patient import` registers them in
    one batch (one Merkle root on-chain)."""
    def observation(n: int, value: float) -> dict[str, object]:
        return {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{n}", "resource": {
            "resourceType": "Observation", "id": f"00000000-0000-4000-8000-00000000000{n}",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                 "display": "Hemoglobin"}], "text": "Hemoglobin"},
            "effectiveDateTime": f"2026-0{n}-01T09:00:00Z",
            "valueQuantity": {"value": value, "unit": "g/dL",
                              "system": "http://unitsofmeasure.org", "code": "g/dL"}}}

    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [observation(1, 13.1), observation(2, 13.4)]}))
    return path


def test_a_grant_over_the_api_announces_batch_records_and_the_page_reads_one(
        web: Web, tmp_path: Path) -> None:
    """The CLI's grant (over the API) tells every node of the scope's batch records, with
    their root and proof (the records listing carries them): each node checks them against
    the chain and serves them; the page reads one through the nodes."""
    stack = web.stack
    assert isinstance(stack, ThresholdStack)

    def own() -> dict[str, dict[str, object]]:
        listed = stack.kizuna("patient", "records", "--key", "kenji", "--json")
        assert listed.code == 0, listed.err
        return {str(r["record_id"]): r for r in listed.json()}

    before = own()
    imported = stack.kizuna("patient", "import", str(_lab_bundle(tmp_path / "labs.json")),
                            "--key", "kenji", "--json")
    assert imported.code == 0, imported.err
    labs = [r for i, r in own().items() if i not in before]
    assert [r["label"] for r in labs] == ["Observation:laboratory"] * 2
    granted = stack.kizuna("patient", "grant", "dr-sato", "Observation:laboratory", "--days",
                           "1", "--key", "kenji", "--json")
    assert granted.code == 0, granted.err
    node_dbs = [stack.home / "proxies" / str(i) / "node.sqlite3" for i in range(3)]
    ids = ", ".join(f"x'{str(r['record_id']).removeprefix('0x')}'" for r in labs)
    assert [_count(db, f"SELECT COUNT(*) FROM records WHERE batch_root IS NOT NULL AND "
                       f"record_id IN ({ids})") for db in node_dbs] == [2, 2, 2]

    session, _ = _connect(web, "desktop")
    kenji = str(stack.demo_account("kenji").address)
    _open_patient(session.page, kenji)
    target = str(labs[0]["record_id"])
    _read(session.page, target)
    shown = session.page.locator(f'.provider-read[data-record="{target.lower()}"]')
    expect(shown.get_by_test_id("timeline-item")).to_be_visible(timeout=TIMEOUT)
    expect(shown).to_contain_text("Hemoglobin")
    expect(shown.get_by_test_id("read-nodes")).to_contain_text("of 3 proxy nodes (2 needed)")


def test_a_provider_reads_through_two_of_three_nodes_in_the_page(
        web: Web, tmp_path: Path) -> None:
    stack = web.stack
    assert isinstance(stack, ThresholdStack)
    home = stack.home
    urls = stack.proxy_urls
    nodes = [httpx.get(url + "/health", timeout=10).json()["node"] for url in urls]
    node_dbs = [home / "proxies" / str(i) / "node.sqlite3" for i in range(3)]
    service_db = stack.service_db

    granted = stack.kizuna("patient", "grant", "dr-sato", SCOPE, "--days", "1", "--key",
                           "kenji", "--json")
    assert granted.code == 0, granted.err
    assert granted.json()["proxy_nodes"] == "2-of-3"
    kenji = str(stack.demo_account("kenji").address)
    own = stack.kizuna("patient", "records", "--key", "kenji", "--json")
    assert own.code == 0, own.err
    record_id = next(r["record_id"] for r in own.json() if r["label"] == SCOPE)
    out = tmp_path / "cli.json"
    cli = stack.kizuna("provider", "read", "kenji", record_id, "-o", str(out), "--key",
                       "dr-sato")
    assert cli.code == 0, cli.err  # the CLI reads through the nodes too

    # The page's policy lets it reach the registered nodes (and no other origin).
    csp = httpx.get(stack.web_url, timeout=10).headers["content-security-policy"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' " + " ".join(urls), connect
    # Each node answers CORS for this page's origin only.
    origin = stack.api_url
    for url in urls:
        allowed = httpx.options(url + "/node/reads", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert allowed.headers.get("access-control-allow-origin") == origin
        stranger = httpx.options(url + "/node/reads", timeout=10, headers={
            "Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in stranger.headers

    session, wallet = _connect(web, "desktop")
    page = session.page
    _open_patient(page, kenji)
    shown = page.locator(f'.provider-read[data-record="{record_id.lower()}"]')

    # 1. All three nodes up: served by the nodes (each keeps a receipt), not by the service.
    receipts = [_count(db, "SELECT COUNT(*) FROM receipts") for db in node_dbs]
    service_receipts = _count(service_db, "SELECT COUNT(*) FROM receipts")
    _read(page, record_id)
    expect(shown.get_by_test_id("timeline-item")).to_be_visible(timeout=TIMEOUT)
    served = shown.get_by_test_id("read-nodes")
    expect(served).to_contain_text("Served by")
    expect(served).to_contain_text("of 3 proxy nodes (2 needed)")
    expect(served.locator("li")).to_have_count(0)
    assert [_count(db, "SELECT COUNT(*) FROM receipts") for db in node_dbs] == \
        [n + 1 for n in receipts]
    assert _count(service_db, "SELECT COUNT(*) FROM receipts") == service_receipts
    # One wallet prompt for the read, its purpose naming the proxy nodes.
    signed = [c for c in wallet.calls_of("eth_signTypedData_v4")
              if "ReadRequest" in json.dumps(c.params)]
    assert len(signed) == 1
    with page.expect_download() as download:
        shown.get_by_role("button", name=re.compile("^Download FHIR JSON")).click()
    assert Path(download.value.path()).read_bytes() == out.read_bytes(), \
        "the page's plaintext differs from the CLI's"
    session.screenshot("threshold-read-all-up")
    violations = axe_violations(page)
    assert not violations, describe(violations)

    # 2. One node down: any two still serve; the page names the node that did not answer.
    kill_node(home, 2)
    _read(page, record_id)
    skipped = shown.get_by_test_id("read-nodes").locator("li")
    expect(skipped).to_have_count(1, timeout=TIMEOUT)
    expect(skipped).to_contain_text(f"Node {_short(nodes[2])} ({urls[2]}) did not answer")
    expect(shown.get_by_test_id("read-nodes")).to_contain_text("Served by 2 of 3 proxy nodes")
    expect(shown.get_by_test_id("timeline-item")).to_be_visible()
    session.screenshot("threshold-read-one-down")

    phone, _ = _connect(web, "phone")
    _open_patient(phone.page, kenji)
    _read(phone.page, record_id)
    phone_read = phone.page.locator(f'.provider-read[data-record="{record_id.lower()}"]')
    expect(phone_read.get_by_test_id("read-nodes").locator("li")).to_have_count(
        1, timeout=TIMEOUT)
    phone.screenshot("threshold-read-one-down")
    assert phone.overflow() == 0

    # 3. Two nodes down: one node alone cannot serve; the read fails naming both, and why.
    kill_node(home, 1)
    before = _count(node_dbs[0], "SELECT COUNT(*) FROM receipts")
    for where in (session, phone):
        _read(where.page, record_id)
        refused = where.page.get_by_test_id("threshold-refused")
        expect(refused).to_be_visible(timeout=TIMEOUT)
        expect(refused).to_contain_text("needs 2 proxy nodes to serve it, and only 1 did")
        items = refused.locator("li")
        expect(items).to_have_count(2)
        expect(items.nth(0)).to_contain_text(f"Node {_short(nodes[1])} ({urls[1]}) did not answer")
        expect(items.nth(1)).to_contain_text(f"Node {_short(nodes[2])} ({urls[2]}) did not answer")
        where.screenshot("threshold-read-two-down")
        violations = axe_violations(where.page)
        assert not violations, describe(violations)
    assert phone.overflow() == 0
    # The node left served each of those reads alone (its receipts say so: the threshold
    # audit flags them), and the page decrypted nothing more: still one item read.
    assert _count(node_dbs[0], "SELECT COUNT(*) FROM receipts") == before + 2
    expect(page.locator(".provider-read")).to_have_count(1)
