"""``Web``, what the browser tests' ``web`` fixture gives a test: the stack's page opened in
fresh, watched Chromium contexts, with test wallets injected. A module of its own so tests can
import the type (never ``from conftest import``)."""

from __future__ import annotations

from typing import Any

import browser
import injected_wallet
from injected_wallet import TestWallet
from playwright.sync_api import Browser
from web_stack import WebStack


class Web:
    """Opens the page of the stack in fresh contexts: ``web.wallet()`` makes a test wallet,
    ``web.open(wallets, device=...)`` a watched page session with those wallets injected."""

    def __init__(self, stack: WebStack, chromium: Browser, test: str) -> None:
        self.stack = stack
        self.chromium = chromium
        self.test = test
        self.sessions: list[browser.Session] = []

    def wallet(self, **options: Any) -> TestWallet:
        """A wallet with a fresh real key (no history on the chain), funded on anvil."""
        made = TestWallet(rpc_url=self.stack.rpc_url, chain_id=self.stack.chain_id, **options)
        made.fund()
        return made

    def open(self, wallets: list[TestWallet] | None = None, *, device: str = "desktop",
             path: str = "/", goto: bool = True) -> browser.Session:
        session = browser.new_session(self.chromium, device=device, test=self.test)
        self.sessions.append(session)
        if wallets:
            injected_wallet.install(session.context, wallets)
            for wallet in wallets:
                wallet.pages.append(session.page)
        if goto:
            answer = session.page.goto(self.stack.web_url.rstrip("/") + path)
            assert answer is not None and answer.ok, (
                f"GET {path}: {answer.status if answer else 'no answer'}")
        return session
