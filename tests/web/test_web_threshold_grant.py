"""A patient grants through threshold proxy nodes in the page (issue 17, docs/proxies.md), against a
real ``kizuna up --demo --proxies 3 --threshold 2``: kenji's page finds the nodes in the
ProxyRegistry (through the wallet), makes 2-of-3 key fragments, binds each to its node with a
NodeKfrag statement the wallet signs (one prompt per node, its purpose shown), sends the grant as
the wallet's own transaction and each node only its own fragment. The service holds no fragment
of the grant; each node holds exactly one, its own (the three differ, each under the patient's
statement naming that node). Revoking another provider's grant of the scope moves its key epoch
and the page's rekey hands the new epoch to the nodes. With one node killed, dr-sato's CLI
(``kizuna provider read``) still reads the record through the other two. Desktop and phone (a
second scope granted there, with the node down: the page names it)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import Session, axe_violations, describe
from eth_utils.crypto import keccak
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import ThresholdStack, kill_node, threshold_stack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000  # scope keys, three node statements, the wallet's own transaction, the nodes
VITALS = "Observation:vital-signs"
LABS = "Observation:laboratory"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThresholdStack]:
    """This module's own stack: the demo with three proxy nodes, 2-of-3."""
    with threshold_stack(tmp_path_factory.mktemp("web-threshold-grant") / "home") as stack:
        yield stack


def _rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, args).fetchall())


def _kfrags(db: Path, patient: str, provider: str) -> list[tuple[Any, ...]]:
    """The fragments ``db`` holds of grants from ``patient`` to ``provider``."""
    return _rows(db, "SELECT scope_id, epoch, kfrag FROM kfrags WHERE lower(patient) = ? AND "
                     "lower(provider) = ?", patient.lower(), provider.lower())


def _connect(web: Web, wallet: TestWallet, device: str) -> tuple[Session, Page]:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation").get_by_role("link", name="Sharing").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    return session, page


def _share(page: Page, provider: str, label: str) -> None:
    registry = page.get_by_role("list", name="Providers in the registry")
    registry.get_by_role("listitem").filter(has_text=provider).get_by_role(
        "button", name="Share with this provider").click()
    page.get_by_label(label).check()
    page.get_by_role("button", name="Share 1 part").click()


def _notice(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("notice").filter(has_text=re.compile(pattern))).to_be_visible(
        timeout=TIMEOUT)


def test_a_grant_in_the_page_goes_to_the_nodes_not_the_service(web: Web, tmp_path: Path) -> None:
    stack = web.stack
    assert isinstance(stack, ThresholdStack)
    kenji = stack.demo_account("kenji").address
    sato = stack.demo_account("dr-sato").address
    urls = stack.proxy_urls
    nodes = [httpx.get(url + "/health", timeout=10).json()["node"] for url in urls]
    node_dbs = [stack.home / "proxies" / str(i) / "node.sqlite3" for i in range(3)]
    assert _kfrags(stack.service_db, kenji, sato) == []
    assert [_kfrags(db, kenji, sato) for db in node_dbs] == [[], [], []]

    wallet = TestWallet(rpc_url=stack.rpc_url, chain_id=stack.chain_id,
                        accounts=[stack.demo_account("kenji")])
    wallet.fund()
    session, page = _connect(web, wallet, "desktop")
    sent = len(wallet.calls_of("eth_sendTransaction"))
    _share(page, sato, VITALS)
    _notice(page, rf"Shared Vital signs \(Observation:vital-signs\) with {sato} until .*"
                  r"Its key pieces went to 3 proxy nodes, 2 of which serve each read\.")
    card = page.get_by_role("article", name=f"Shared with {sato}")
    expect(card).to_contain_text(VITALS)

    # One wallet prompt per node, each saying what it binds; the grant: the wallet's own
    # transaction (the relayer takes a Grant only with the service's fragments).
    statements = [c for c in wallet.calls_of("eth_signTypedData_v4")
                  if "NodeKfrag" in json.dumps(c.params)]
    assert len(statements) == 3
    for i, (call, node) in enumerate(zip(statements, nodes, strict=True)):
        assert call.prompt and f"Key piece {i + 1} of 3" in call.prompt, call.prompt
        assert node in call.prompt and "Any 2 of the 3 proxy nodes" in call.prompt, call.prompt
    grant_tx = wallet.calls_of("eth_sendTransaction")[sent:]
    assert len(grant_tx) == 1 and grant_tx[0].prompt and "2 of 3" in grant_tx[0].prompt

    # The service holds nothing of the grant; each node exactly one fragment, its own: the
    # three differ, and each sits under the patient's statement of its digest.
    assert _kfrags(stack.service_db, kenji, sato) == []
    held = [_kfrags(db, kenji, sato) for db in node_dbs]
    assert [len(h) for h in held] == [1, 1, 1], held
    kfrags = [bytes(h[0][2]) for h in held]
    assert len(set(kfrags)) == 3
    for db, kfrag in zip(node_dbs, kfrags, strict=True):
        (digest, threshold, members), = _rows(
            db, "SELECT kfrag_digest, threshold, nodes FROM node_statements WHERE "
                "lower(patient) = ? AND lower(provider) = ?", kenji.lower(), sato.lower())
        assert bytes(digest) == keccak(kfrag) and threshold == 2
        assert sorted(json.loads(str(members))) == sorted(nodes)
    assert not (violations := axe_violations(page)), describe(violations)
    session.screenshot("threshold-grant")

    # Revoking dr-tanaka's vital signs (the demo's grant, held by the service) moves the scope's
    # key epoch: the page's rekey hands the new epoch's fragments to the nodes for dr-sato (one
    # wallet prompt per node again), the service still none; the revoke told no node anything.
    tanaka = stack.demo_account("dr-tanaka").address
    page.get_by_role("article", name=f"Shared with {tanaka}").get_by_role(
        "button", name=f"Stop sharing {VITALS}").click()
    _notice(page, r"Stopped sharing Vital signs \(Observation:vital-signs\)")
    assert len([c for c in wallet.calls_of("eth_signTypedData_v4")
                if "NodeKfrag" in json.dumps(c.params)]) == 6
    assert [sorted(r[1] for r in _kfrags(db, kenji, sato)) for db in node_dbs] == [[0, 1]] * 3
    assert _kfrags(stack.service_db, kenji, sato) == []

    # dr-sato's CLI reads kenji's vital signs through two of the three nodes (one killed).
    own = stack.kizuna("patient", "records", "--key", "kenji", "--json")
    assert own.code == 0, own.err
    record_id = next(r["record_id"] for r in own.json() if r["label"] == VITALS)
    receipts = [_rows(db, "SELECT COUNT(*) FROM receipts")[0][0] for db in node_dbs]
    service_receipts = _rows(stack.service_db, "SELECT COUNT(*) FROM receipts")[0][0]
    kill_node(stack.home, 2)
    out = tmp_path / "read.json"
    read = stack.kizuna("provider", "read", "kenji", record_id, "-o", str(out), "--key",
                        "dr-sato")
    assert read.code == 0, read.err
    assert json.loads(out.read_text(encoding="utf-8"))["resourceType"] == "Observation"
    assert [_rows(db, "SELECT COUNT(*) FROM receipts")[0][0] for db in node_dbs[:2]] == \
        [n + 1 for n in receipts[:2]]
    assert _rows(stack.service_db, "SELECT COUNT(*) FROM receipts")[0][0] == service_receipts

    # On a phone (node 2 still down): a grant needs every node to take its piece; the page
    # says the grant stands, which node did not take its piece and that reads still work.
    phone, phone_page = _connect(web, wallet, "phone")
    phone.watched.allow_error(r"ERR_CONNECTION_REFUSED|Failed to load resource")
    _share(phone_page, sato, LABS)
    alert = phone_page.get_by_role("alert").filter(has_text="did not take their key piece")
    expect(alert).to_be_visible(timeout=TIMEOUT)
    expect(alert).to_contain_text(f"1 of 3 proxy nodes did not take their key piece: node "
                                  f"{nodes[2][:6]}…{nodes[2][-4:]} ({urls[2]}) did not answer")
    expect(alert).to_contain_text("Reads still work through the other 2 (2 needed)")
    # The two nodes up took theirs: vital signs' epochs 0 and 1, and now lab results.
    assert [len(_kfrags(db, kenji, sato)) for db in node_dbs[:2]] == [3, 3]
    assert _kfrags(stack.service_db, kenji, sato) == []
    phone.screenshot("threshold-grant-node-down")
    assert phone.overflow() == 0
    assert not (violations := axe_violations(phone_page)), describe(violations)
