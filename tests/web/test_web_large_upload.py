"""A 100 MB file added in the browser goes as a chunked upload (POST /patient/uploads, parts of
at most 8 MiB, then complete; web/src/patient/records.ts) against a real ``kizuna up --demo``
on anvil: Chromium cannot stream a request body over HTTP/1.1, and the page used to build the
whole envelope as a Blob. Measured while it uploads:

- no request carries more than one part (8 MiB): the envelope is sent in order, part by part,
  and registered once (the complete answers 201);
- the page's live JS heap (CDP ``Runtime.getHeapUsage`` after a forced garbage collection: the
  V8 heap plus ArrayBuffer backing stores) stays under the file's size — by design it holds one part
  and a segment or two. (Without the collection the figure is mostly garbage not yet
  collected: V8 frees spent segments' buffers when it likes; the test prints that peak too.)
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Response, expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.slow]

TIMEOUT = 120_000
MIB = 1 << 20
FILE_MB = 100
PART = 8 * MIB
HEAP_GROWTH_MAX = FILE_MB * MIB
"""How much the live page heap may grow while a 100 MB file is encrypted and uploaded: less than
the file, which the page held whole (as an encrypted Blob) before uploads went in parts. Measured
on a quiet machine: about 39 MiB (one 8 MiB part held, the copy fetch sends, what DevTools keeps
of request bodies for Playwright, the segments in flight); in a clean-clone CI run under load,
84 MiB. Why the live heap grows that much under load is not understood yet, so the bound is the
one the old code broke, not the figure a quiet machine shows."""


def _pdf(path: Path) -> None:
    """A 100 MB PDF: a header the page's checks recognise, then incompressible bytes."""
    with path.open("wb") as out:
        out.write(b"%PDF-1.4\n")
        for _ in range(FILE_MB):
            out.write(os.urandom(MIB))


def _heap(cdp: Any, *, collect: bool = True) -> int:
    if collect:
        cdp.send("HeapProfiler.collectGarbage")
    usage = cdp.send("Runtime.getHeapUsage")
    return int(usage["usedSize"]) + int(usage.get("backingStorageSize", 0))


def test_a_100_mb_file_uploads_in_parts_in_flat_memory(web: Web, tmp_path: Path) -> None:
    big = tmp_path / "ct-scan-report.pdf"
    _pdf(big)
    wallet = web.wallet()
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name="Add records", exact=True).click()

    bodies: list[tuple[str, int]] = []
    completed: list[int] = []

    def answered(response: Response) -> None:
        request = response.request
        if "/patient/" in response.url and request.method in ("PUT", "POST"):
            # The size from the headers sent: asking Playwright for the body itself would have
            # DevTools keep every body in the page, which is what is measured here.
            bodies.append((response.url, int(request.all_headers().get("content-length", 0))))
        if re.search(r"/patient/uploads/[0-9a-f]{32}/complete$", response.url):
            completed.append(response.status)

    page.on("response", answered)
    cdp = page.context.new_cdp_session(page)
    baseline = _heap(cdp)

    page.locator("#add-files").set_input_files(str(big))
    expect(page.get_by_test_id("found-summary")).to_be_visible(timeout=TIMEOUT)
    page.get_by_test_id("add-button").click()
    peak = raw_peak = baseline
    added = page.get_by_test_id("added")
    progress_seen = False
    while not added.is_visible():
        raw_peak = max(raw_peak, _heap(cdp, collect=False))
        peak = max(peak, _heap(cdp))
        progress_seen = progress_seen or page.locator("#file-progress").count() > 0
        assert page.get_by_role("alert").count() == 0, page.get_by_role("alert").inner_text()
        page.wait_for_timeout(400)
        assert len(bodies) < 100, "the upload did not end"
    expect(added).to_be_visible()
    assert progress_seen, "no progress bar while the file was uploaded"

    parts = [(url, size) for url, size in bodies if "/parts/" in url]
    envelope = sum(size for _, size in parts)
    assert envelope > FILE_MB * MIB, envelope
    assert len(parts) == math.ceil(envelope / PART), [s for _, s in parts]
    assert [int(url.rsplit("/", 1)[1]) for url, _ in parts] == list(range(len(parts)))
    assert max(size for _, size in bodies) <= PART, "a request carried more than one part"
    assert completed == [201], completed
    assert peak - baseline < HEAP_GROWTH_MAX, (baseline, peak)
    print(f"100 MB upload: {len(parts)} parts; live page heap {baseline / MIB:.1f} MiB -> "
          f"peak {peak / MIB:.1f} MiB (uncollected peak {raw_peak / MIB:.1f} MiB)")
