"""The worker's shared Chromium (browser.SharedChromium): a file's connection opens pages in it,
a browser that died is started again at the next connection (with a warning naming its exit
code), and stop() leaves no process of it behind. No stack: a page from a data: URL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from browser import SharedChromium, live_members
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser


def _title(shared: SharedChromium) -> str:
    with sync_playwright() as driver:
        connected = shared.connect(driver)
        context = connected.new_context()
        page = context.new_page()
        page.goto("data:text/html,<title>shared</title>")
        title = page.title()
        connected.close()
        return title


def test_a_dead_browser_is_started_again_and_stop_leaves_nothing() -> None:
    shared = SharedChromium()
    try:
        assert _title(shared) == "shared"
        first = shared.pid
        assert first is not None
        profile = shared.profile
        assert profile is not None and profile.is_dir()
        assert _title(shared) == "shared"
        assert shared.pid == first, "a second file's connection started a second browser"

        os.killpg(first, signal.SIGKILL)  # a crash, as an OOM kill would make it
        with pytest.warns(UserWarning, match=r"Chromium exited with code -9"):
            assert _title(shared) == "shared"
        assert shared.pid not in (None, first)
        assert not profile.exists(), "the dead browser's profile was left behind"
    finally:
        last = shared.pid
        last_profile = shared.profile
        shared.stop()
    assert last is not None
    assert not live_members(last), "a Chromium process outlived stop()"
    assert isinstance(last_profile, Path) and not last_profile.exists()
