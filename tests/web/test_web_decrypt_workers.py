"""The timeline's records are opened off the page's main thread, in the session's decryption
workers (web/src/workers: module workers from the page's own origin, the CSP's worker-src), and
where workers cannot run — here the worker script is refused by the network — the page opens
them on the main thread with the same code: the same timeline either way. Against a real
``kizuna up --demo`` on anvil, the demo's aiko connecting with the injected test wallet."""

from __future__ import annotations

import re

import pytest
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
WORKER = re.compile(r"/assets/decrypt\.worker-[\w-]+\.js$")


def _timeline(web: Web, *, block_workers: bool) -> tuple[Page, str, list[str]]:
    wallet = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                        accounts=[web.stack.demo_account("aiko")])
    session = web.open([wallet], goto=False)
    page = session.page
    if block_workers:
        page.context.route(WORKER, lambda route: route.abort())
    page.goto(web.stack.web_url)
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("timeline-count")).to_have_text(re.compile(r"^\d+ records?$"),
                                                              timeout=TIMEOUT)
    expect(page.get_by_test_id("library-loading")).to_have_count(0, timeout=TIMEOUT)
    workers = [w.url for w in page.workers if WORKER.search(w.url)]
    return page, page.locator("main#main").inner_text(), workers


def test_the_timeline_is_decrypted_in_workers_and_without_them(web: Web) -> None:
    page, with_workers, workers = _timeline(web, block_workers=False)
    assert workers, f"no decryption worker ran: {[w.url for w in page.workers]}"
    assert page.get_by_test_id("error").count() == 0
    count = page.get_by_test_id("timeline-count").inner_text()
    assert int(count.split()[0]) > 0
    # the workers hold a copy of the decrypting key: they end when the page forgets the keys
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("button", name="Connect wallet")).to_be_visible(timeout=TIMEOUT)
    for _ in range(100):  # a worker's end reaches Playwright a moment after terminate()
        if not [w for w in page.workers if WORKER.search(w.url)]:
            break
        page.wait_for_timeout(50)
    assert not [w.url for w in page.workers if WORKER.search(w.url)], "workers outlived the keys"

    page, without, workers = _timeline(web, block_workers=True)
    assert not workers
    assert page.get_by_test_id("error").count() == 0
    assert page.get_by_test_id("timeline-count").inner_text() == count
    # the same records, rendered the same (values decrypted by the main thread's fallback)
    assert without == with_workers
