"""Fixtures of the browser tests: a real ``kizuna up --demo`` stack per worker, Debian's
Chromium per worker (a Playwright connection to it per test file), and ``web``, which opens the
page in a fresh context with test wallets injected (real keys, answers from anvil) and, at the
end of the test, fails on any unexpected console error or Content-Security-Policy violation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser
import web_stack
from playwright.sync_api import Browser, Playwright, expect, sync_playwright
from web_harness import Web
from web_stack import WebStack

# Two cores shared with the rest of the suite (and the stack itself): an assertion on the page
# waits up to 20 s rather than Playwright's 5 s before it fails.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    made = web_stack.start(tmp_path_factory.mktemp("web-stack"))
    try:
        yield made
    finally:
        made.up.stop()


@pytest.fixture(scope="module", autouse=True)
def node_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Node processes a browser test file starts (the page's code run by web/test/*_cli.ts, vite,
    the Playwright driver) keep the V8 code they compile in the worker's folder and load it from
    there the next time: each run of web/test/patient_cli.ts, of which the parity files make
    about twenty, compiles viem, umbral-pre and the page's modules again otherwise (0.85 ->
    0.68 CPU-s a start). Set for the file's duration only (no other package's Node changes)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODE_COMPILE_CACHE",
                     str(tmp_path_factory.getbasetemp() / "node-compile-cache"))
        yield


@pytest.fixture(scope="session")
def chromium_process() -> Iterator[browser.SharedChromium]:
    """The worker's one Chromium process (browser.SharedChromium says why), stopped at the end of
    the session with every process it started."""
    shared = browser.SharedChromium()
    try:
        yield shared
    finally:
        shared.stop()


# Playwright's sync API runs an event loop on the test thread while it is open: kept for a
# whole worker session, it broke every later test file on that worker that calls asyncio.run()
# (tests/api/test_readworkers.py under xdist). One driver per test file, connected to the
# worker's Chromium; every test opens its pages in fresh contexts.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright_driver: Playwright,
             chromium_process: browser.SharedChromium) -> Iterator[Browser]:
    connected = chromium_process.connect(playwright_driver)
    try:
        yield connected
    finally:
        connected.close()  # closes the contexts this file opened, and disconnects


@pytest.fixture
def web(stack: WebStack, chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Web]:
    opened = Web(stack, chromium, request.node.originalname)
    try:
        yield opened
        for session in opened.sessions:
            session.check()
    finally:
        for session in opened.sessions:
            session.close()
