"""An import in the page interrupted by a reload, then started again with the same file, in a
real Chromium against a real ``kizuna up --demo`` (the test wallet signing with a real key):

- a Synthea Bundle's records are encrypted and staged, and the page is reloaded while the
  wallet is asked for the batch's one signature (the import stops there: nothing registered);
- connected again, the same file is chosen: its records have the same ids (the patient's
  import id key over the file's digest and each resource's index, web/src/core/recordIds.ts,
  Python's rule), so the page reuses every envelope it staged before the reload (no staging
  request is made again) and registers them with one signature; the record then holds exactly
  one record per resource;
- the same file dropped twice in the list is listed once;
- imported once more, the page says the records are already in the record and adds nothing:
  no staging, no wallet request, the same count on the Timeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import Session, check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from synthea_data import small_bundle, synthea_patient
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
SIGNING = ("eth_signTypedData_v4", "eth_sendTransaction")


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _connect(page: Page, wallet: TestWallet) -> None:
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)


def _staging(session: Session) -> int:
    return sum(1 for r in session.watched.requests
               if r.method == "POST" and r.url.endswith("/patient/staged"))


def _choose(page: Page, path: Path, count: int) -> None:
    _go(page, "Add records")
    page.locator("#add-files").set_input_files(str(path))
    expect(page.get_by_test_id("found-summary")).to_contain_text(f"{count} records",
                                                                 timeout=TIMEOUT)


def test_a_reload_mid_import_resumes_and_the_same_file_adds_nothing(
        web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    bundle: dict[str, Any] = small_bundle(synthea_patient(synthea_patients), size=40,
                                          per_type=3)
    path = tmp_path / "synthea-history.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    count = len(bundle["entry"])
    assert count > 20, count
    wallet = web.wallet()
    session = web.open([wallet], device="desktop")
    page = session.page
    _connect(page, wallet)

    # Encrypted and staged; the page is reloaded while the wallet asks for the signature.
    _choose(page, path, count)
    wallet.hold(page, "eth_signTypedData_v4")
    page.get_by_test_id("add-button").click()
    wallet.wait_held(page, "eth_signTypedData_v4", timeout=4 * TIMEOUT)
    expect(page.get_by_test_id("progress")).to_contain_text(
        f"Uploaded (encrypted): {count} of {count} records")
    staged_first = _staging(session)
    assert staged_first >= 1
    page.reload()
    _connect(page, wallet)

    # The same file again (twice: listed once): every staged envelope is reused.
    _choose(page, path, count)
    page.locator("#add-files").set_input_files(str(path))
    expect(page.get_by_test_id("listed-again")).to_contain_text(
        f"{path.name} is already in the list")
    expect(page.get_by_test_id("found-summary")).to_contain_text(f"{count} records")
    asked = len(wallet.calls)
    page.get_by_test_id("add-button").click()
    expect(page.get_by_test_id("added")).to_have_text(f"{count} records added to your record.",
                                                      timeout=4 * TIMEOUT)
    signed = [c for c in wallet.calls[asked:] if c.method in SIGNING]
    assert [c.method for c in signed] == ["eth_signTypedData_v4"], [c.method for c in signed]
    assert f"Register {count} records in one transaction" in (signed[0].prompt or "")
    assert _staging(session) == staged_first, "what was staged before the reload went again"
    check_layout(session, "import-resumed")

    _go(page, "Timeline")
    expect(page.get_by_test_id("timeline-count")).to_have_text(f"{count} records",
                                                               timeout=TIMEOUT)

    # Imported again: already in the record, nothing added, nothing asked.
    asked = len(wallet.calls)
    _choose(page, path, count)
    page.get_by_test_id("add-button").click()
    expect(page.get_by_test_id("added")).to_have_text(
        f"All {count} records are already in your record: nothing was added.", timeout=TIMEOUT)
    assert [c.method for c in wallet.calls[asked:] if c.method in SIGNING] == []
    assert _staging(session) == staged_first
    check_layout(session, "import-already-in-record")
    _go(page, "Timeline")
    expect(page.get_by_test_id("timeline-count")).to_have_text(f"{count} records",
                                                               timeout=TIMEOUT)
    session.check()
