"""What the auditor's browser tests share (test_web_auditor.py, test_web_auditor_history.py): a
fresh auditor wallet (the role granted on chain), connecting it in the page, running the Verify
page, waiting for the stack's anchorer, and a receipt altered in the stack's database (restored
after). A module of its own, not conftest.py (tests import its names)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from browser import Session
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web
from web_stack import WebStack

CONNECT_TIMEOUT = 90_000
VERIFY_TIMEOUT = 120_000


def database(stack: WebStack) -> Path:
    return stack.home / "kizuna.sqlite3"  # KizunaHome.database_file


def auditor(web: Web) -> TestWallet:
    """A fresh funded wallet with the auditor role on chain."""
    wallet = web.wallet()
    web.stack.grant_auditor(wallet.address)
    return wallet


def connect(web: Web, wallet: TestWallet, device: str = "desktop", path: str = "/") -> Session:
    session = web.open([wallet], device=device, path=path)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_role("link", name="Audit log")).to_be_visible(timeout=CONNECT_TIMEOUT)
    return session


def verify(page: Page) -> None:
    """Open the Verify page, run (or run again), and wait for the result."""
    page.get_by_role("navigation").get_by_role("link", name="Verify reads").click()
    page.get_by_role("button", name=re.compile("Run the verification|Run again")).click()
    expect(page.get_by_test_id("verify-result")).to_be_visible(timeout=VERIFY_TIMEOUT)


def wait_anchored(stack: WebStack, timeout: float = 150) -> int:
    """Wait for the stack's anchorer (every 60 s) to anchor every receipt; their number."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(database(stack)) as db:
            anchored, pending = db.execute("SELECT SUM(batch_root IS NOT NULL), "
                                           "SUM(batch_root IS NULL) FROM receipts").fetchone()
        if anchored and not pending:
            return int(anchored)
        assert time.monotonic() < deadline, f"receipts not anchored: {anchored} / {pending}"
        time.sleep(2)


@contextmanager
def tampered_receipt(stack: WebStack, *, last: bool = False) -> Iterator[tuple[str, int]]:
    """One anchored receipt's servedAt moved a minute in the database (as an operator hiding
    when a read happened would), restored afterwards: the stack may be shared. The first
    anchored receipt, or (``last``) the last one. (request id, seq)."""
    order = "DESC" if last else "ASC"
    with sqlite3.connect(database(stack)) as db:
        seq, request_id, served_at = db.execute(
            "SELECT seq, request_id, served_at FROM receipts WHERE batch_root IS NOT NULL "
            f"ORDER BY seq {order} LIMIT 1").fetchone()
        db.execute("UPDATE receipts SET served_at = ? WHERE seq = ?", (served_at + 60, seq))
    try:
        yield "0x" + bytes(request_id).hex(), int(seq)
    finally:
        with sqlite3.connect(database(stack)) as db:
            db.execute("UPDATE receipts SET served_at = ? WHERE seq = ?", (served_at, seq))
