"""Debian's Chromium driven by Playwright for the browser tests: one Chromium process per worker
(:class:`SharedChromium`), a Playwright connection to it per test file, a fresh context per page
session (desktop 1280x800 or phone 390x844), with what each session watches:
console errors and uncaught exceptions, Content-Security-Policy violations, main-frame
navigations, every request the page makes (URL, headers, body bytes), screenshots under
out/screenshots/, and an axe-core accessibility check.

Never ``playwright install``: the browser is /usr/bin/chromium (scripts/bootstrap.sh installs it
with apt when missing). Wait with Playwright's waits only: ``time.sleep`` would stall the test
wallet, whose answers run on this thread.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "out" / "screenshots"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
DEVICES: dict[str, ViewportSize] = {
    "desktop": ViewportSize(width=1280, height=800),
    "phone": ViewportSize(width=390, height=844),
}

# Reported to Python as they happen (a document's own list would be lost at each navigation).
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__kizunaCspViolation({directive: e.violatedDirective, blocked: e.blockedURI,
                               source: e.sourceFile, line: e.lineNumber});
});
"""


def require_chromium() -> None:
    """Missing Chromium: a skip on a developer's machine, a failure under CI (where
    scripts/bootstrap.sh must have installed it)."""
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} is missing: `. scripts/bootstrap.sh` installs it "
                  "(apt-get install chromium fonts-noto-cjk)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)


def launch(playwright: Playwright) -> Browser:
    """A Chromium of the caller's own, launched by Playwright and spoken to over its pipe, for
    the one file whose traffic the shared browser's DevTools WebSocket carries at a high cost
    (test_web_large_upload's heap snapshots: ~70 MB each, about three times the browser's
    CPU over the WebSocket). Every other file connects to the worker's :class:`SharedChromium`."""
    require_chromium()
    # Playwright's own --disable-features is replaced by ours (the last one counts), so ours
    # carries its list too.
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=_OUR_SWITCHES)


_DISABLE_FEATURES = "--disable-features=" + ",".join([
    # Playwright 1.65's list (its chromiumSwitches).
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "AvoidCorsURLLoaderRestartOnRedirect", "OptimizationHints",
    "NetworkTimeServiceQuerying", "AimEnabled", "PreconnectToSearch",
    # Each page a test opens is a new window in a new context, and with these Chromium 156
    # started three renderer processes for it: the page's, the address bar's drop-down
    # (chrome://omnibox-popup.top-chrome, a WebUI app preloaded for every window, which a
    # headless test never shows) and a spare one kept ready for a next navigation (thrown away
    # with the context). Without them, one: loading the app in ten fresh contexts cost 11.8
    # CPU-s of Chromium, 4.9 without (the page's own work is unchanged).
    "WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "SpareRendererForSitePerProcess",
])

_OUR_SWITCHES = ["--headless", "--no-sandbox", "--disable-gpu", _DISABLE_FEATURES]
"""What every browser of the tests runs with, launched by Playwright or shared."""


# What Playwright 1.65's launch() passes Chromium (its chromiumSwitches, read from the command line
# of a launched browser), less the pipe and profile it manages itself: the browser we start must
# behave as a launched one did (no background networking, component updates or throttled timers
# in pages that are not in front, sRGB screenshots, no scrollbars, a mouse-like pointer).
_SWITCHES = [
    "--disable-field-trial-config", "--disable-background-networking",
    "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
    "--disable-back-forward-cache", "--disable-breakpad",
    "--disable-component-extensions-with-background-pages", "--disable-component-update",
    "--no-default-browser-check", "--disable-default-apps", "--disable-dev-shm-usage",
    "--disable-extensions", "--enable-features=CDPScreenshotNewSurface",
    "--allow-pre-commit-input", "--disable-hang-monitor", "--disable-ipc-flooding-protection",
    "--disable-popup-blocking", "--disable-prompt-on-repost", "--disable-renderer-backgrounding",
    "--force-color-profile=srgb", "--metrics-recording-only", "--no-first-run",
    "--password-store=basic", "--use-mock-keychain", "--no-service-autorun",
    "--disable-search-engine-choice-screen", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,"
    "availablePointerTypes=4",
    "--no-startup-window", *_OUR_SWITCHES,
]


class SharedChromium:
    """One Chromium process for a whole test worker, which each test file connects to with its
    own Playwright (:meth:`connect`) and in which each test opens fresh contexts.

    Why not one ``playwright.chromium.launch()`` per file: each launch and close of the browser
    (its main process, zygotes, GPU process, network and storage services) costs CPU the suite,
    CPU-bound on two cores, does not have. Why not one Playwright for the session: its sync API
    keeps an event loop on the test thread while it is open, which breaks later test files on
    the worker that call ``asyncio.run()`` (tests/api/test_readworkers.py). So the process lives
    for the session and the Playwright connection (``connect_over_cdp``) for a file.

    Isolation is what a launched browser gave: every page is in a new context (no cookies,
    storage or cache shared); the profile directory is a fresh temporary one. A browser that
    has died (a crash, an OOM kill) is started again at the next file's :meth:`connect`, with
    a warning that names its exit code; one that cannot start fails the file, with its output.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: Path | None = None
        self._log: Path | None = None
        self.endpoint = ""

    @property
    def pid(self) -> int | None:
        """The browser's main process (also its process group), None when not started."""
        return self._process.pid if self._process is not None else None

    @property
    def profile(self) -> Path | None:
        """Its temporary profile directory (removed by :meth:`stop`)."""
        return self._profile

    def _start(self) -> None:
        require_chromium()
        self._profile = Path(tempfile.mkdtemp(prefix="kizuna-chromium-"))
        self._log = self._profile.with_name(self._profile.name + ".log")
        # setpriv: Chromium gets SIGTERM if this worker dies without its teardown (a killed
        # xdist worker), so no browser outlives the run. Port 0: Chromium picks a free port
        # and writes it to DevToolsActivePort in the profile.
        command = ["setpriv", "--pdeathsig", "TERM", str(CHROMIUM), *_SWITCHES,
                   f"--user-data-dir={self._profile}", "--remote-debugging-address=127.0.0.1",
                   "--remote-debugging-port=0"]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        active = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            lines = active.read_text().splitlines() if active.is_file() else []
            if len(lines) >= 2:
                self.endpoint = f"http://127.0.0.1:{int(lines[0])}"
                return
            time.sleep(0.05)
        problem = (f"exited with code {self._process.returncode}"
                   if self._process.poll() is not None else "wrote no DevToolsActivePort in 60 s")
        output = self._output()
        self.stop()
        pytest.fail(f"Chromium ({CHROMIUM}) {problem}:\n{output}", pytrace=False)

    def _output(self) -> str:
        if self._log is None or not self._log.is_file():
            return "(no output)"
        return self._log.read_text(errors="replace")[-4000:] or "(no output)"

    def connect(self, playwright: Playwright) -> Browser:
        """A Playwright connection to the worker's Chromium, started (or started again, if it
        has died since the last file) now."""
        if self._process is not None and self._process.poll() is not None:
            warnings.warn(f"the worker's Chromium exited with code {self._process.returncode} "
                          f"after the previous test file; starting a new one. Its output:\n"
                          f"{self._output()}", stacklevel=2)
            self.stop()
        if self._process is None:
            self._start()
        # is_local: the browser runs on this machine, so files set on an <input> are passed to
        # it by path (as to a launched browser), not sent through the connection: Playwright
        # refuses those over 50 MB otherwise (test_web_large_upload's 100 MB file).
        return playwright.chromium.connect_over_cdp(self.endpoint, is_local=True)

    def stop(self) -> None:
        """Stop Chromium and every process it started (its own process group), and remove its
        profile."""
        process, self._process = self._process, None
        if process is not None:
            # The main process first, so Chromium shuts its children down itself; then whatever
            # of its group is left (or the main process, if it did not end).
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            deadline = time.monotonic() + 10
            while live_members(process.pid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                time.sleep(0.05)
            process.wait()
        for path in (self._profile, self._log):
            if path is not None and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path is not None:
                path.unlink(missing_ok=True)
        self._profile = self._log = None
        self.endpoint = ""


def live_members(group: int) -> list[int]:
    """The processes of process group ``group`` that have not exited (zombies waiting for
    init to reap them do not count: they hold no CPU or memory)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@dataclass
class Captured:
    """One request the page made."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    request: Request

    def everything(self) -> bytes:
        """URL, every header (as sent, cookies included) and body, for a needle search."""
        headers = self.request.all_headers()
        lines = [self.method, self.url, *(f"{k}: {v}" for k, v in headers.items())]
        return "\n".join(lines).encode() + b"\n" + self.body


@dataclass
class Watched:
    """What a context's pages did: console errors, CSP violations, navigations, requests."""

    errors: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow_error(self, pattern: str) -> None:
        """A console error a test provokes on purpose (e.g. a request it aborted)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def carrying(self, secret: bytes) -> list[str]:
        """The requests whose URL, headers or body carry ``secret`` as raw bytes, hex (either
        case) or base64 / base64url (padded or not): for "nothing secret leaves the page"."""
        forms = {secret, secret.hex().encode(), secret.hex().upper().encode()}
        for encoded in (base64.b64encode(secret), base64.urlsafe_b64encode(secret)):
            forms |= {encoded, encoded.rstrip(b"=")}
        return [f"{c.method} {c.url}" for c in self.requests
                if any(form in c.everything() for form in forms)]

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.errors.append(f"console: {message.text} ({where})")

    def on_request(self, request: Request) -> None:
        self.requests.append(Captured(url=request.url, method=request.method,
                                      headers=dict(request.headers),
                                      body=request.post_data_buffer or b"", request=request))


@dataclass
class Session:
    """A page in a fresh context, at one device size, with what it is watched for."""

    page: Page
    context: BrowserContext
    device: str
    test: str
    watched: Watched

    def screenshot(self, name: str) -> Path:
        return screenshot(self.page, name)

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than the device's screen (0: it fits).
        Measured against the device width, not innerWidth: a phone's layout viewport widens to
        fit an overflowing page, which would hide the overflow."""
        width: int = self.page.evaluate("() => document.documentElement.scrollWidth")
        return max(0, width - DEVICES[self.device]["width"])

    def main_frame_navigations(self) -> int:
        return len(self.watched.navigations)

    def wait_until(self, condition: Callable[[], bool], what: str,
                   timeout_ms: float = 10_000) -> None:
        """Wait for a condition on the Python side (the wallet's log, the recorded requests),
        with Playwright's waits, which keep answering the page's calls meanwhile."""
        waited = 0.0
        while not condition():
            if waited >= timeout_ms:
                raise AssertionError(f"timed out after {timeout_ms:.0f} ms waiting for {what}")
            self.page.wait_for_timeout(50)
            waited += 50

    def close(self) -> None:
        _WHO.pop(self.page, None)
        self.context.close()

    def check(self) -> None:
        """The end of a test: no unexpected console error, no CSP violation."""
        problems = self.watched.unexpected_errors() + [
            f"CSP violation: {v}" for v in self.watched.violations]
        assert not problems, "the page reported:\n" + "\n".join(problems)


def new_session(browser: Browser, *, device: str, test: str) -> Session:
    """A fresh context (no cookies, no storage) and its page, watched from its first request."""
    context = browser.new_context(viewport=DEVICES[device], locale="en-US",
                                  timezone_id="Asia/Tokyo", color_scheme="light",
                                  is_mobile=device == "phone", has_touch=device == "phone",
                                  device_scale_factor=1)
    watched = Watched()
    context.expose_binding("__kizunaCspViolation",
                           lambda source, violation: watched.violations.append(violation))
    context.add_init_script(script=_CSP_WATCH)
    context.on("request", watched.on_request)
    page = context.new_page()
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    page.on("framenavigated",
            lambda frame: watched.navigations.append(frame.url) if frame is page.main_frame
            else None)
    _WHO[page] = (test, device)
    return Session(page=page, context=context, device=device, test=test, watched=watched)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"


_WHO: dict[Page, tuple[str, str]] = {}
"""The test and device each session's page belongs to (for screenshot names)."""


def screenshot(page: Page, name: str) -> Path:
    """out/screenshots/<test>/<name>-<device>.png, the whole page (CI keeps them as artifacts)."""
    test, device = _WHO[page]
    path = SCREENSHOTS / _safe(test) / f"{_safe(name)}-{device}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")
                   ) -> list[dict[str, Any]]:
    """axe-core's violations of ``impacts`` on the page as it is now.

    axe is evaluated with page.evaluate (the DevTools protocol, which the page's CSP does not
    govern): an inline <script> tag would be blocked by script-src 'self', and a context with
    bypass_csp would test a page without its real policy."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: `. scripts/bootstrap.sh` (npm install in web/)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    results: dict[str, Any] = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ["violations"]});
            return {violations: r.violations.map(v => ({
              id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))}))};
        }""")
    return [v for v in results["violations"] if v["impact"] in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """axe's violations, one line per element, for an assertion message."""
    return "\n".join(f"{v['impact']} {v['id']} ({v['help']}): {n['target']} {n['summary']}"
                     for v in violations for n in v["nodes"])


def check_layout(session: Session, name: str) -> None:
    """A page as a reviewer gets it: a screenshot, nothing wider than the device's screen, and
    no serious or critical axe-core violation."""
    session.screenshot(name)
    overflow = session.overflow()
    assert overflow == 0, f"the page is {overflow}px wider than the {session.device} screen"
    violations = axe_violations(session.page)
    assert not violations, describe(violations)
