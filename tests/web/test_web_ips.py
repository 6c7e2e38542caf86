"""Health summary in the real page (Chromium, ``kizuna up --demo``, the test wallet): the
International Patient Summary is built IN THE PAGE from the records decrypted there
(web/src/sharing/ips.ts), and is the Python builder's (kizuna/sharing/ips.py) for the same
records: a whole Synthea patient is imported by the Python client, the page's summary is
downloaded as JSON, and Python decrypts the same records itself and builds the IPS with the
page's time and document id — equal section by section (title, code, narrative, entries or
empty reason) and entry by entry. The page shows each section's lines as the Python reader
(``sections_of``) writes them. Shared as a SMART Health Link, the summary opens in
tests/sharing/shl_reader.py (written from the IG, no Kizuna code) as exactly the downloaded
document, and the link's QR code decodes to the link at the CLI's size (qr_check.py).
Desktop and phone: screenshots, no overflow, axe clean. A patient with no Patient resource
is told why there is no summary (not as an error).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from qr_check import check_qr
from synthea_data import small_bundle, synthea_patient
from web_harness import Web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sharing"))

from shl_reader import open_link

from kizuna.sharing.ips import SECTIONS, build_ips, sections_of

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 180_000


@contextmanager
def _patient(web: Web, wallet: TestWallet) -> Iterator[Any]:
    """The wallet's patient, as the Python client (its own key)."""
    from kizuna.chain.connection import connect
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.client.api_service import ApiService
    from kizuna.client.http import ApiClient
    from kizuna.client.patient import PatientClient

    signer = LocalKeySigner("0x" + bytes(wallet.accounts[0].key).hex())
    api = ApiClient(web.stack.api_url, timeout=120.0)
    api.login(signer)
    service = ApiService(api, connect(web.stack.rpc_url, web.stack.deployment_file))
    try:
        yield PatientClient(signer=signer, service=service, chain=service.chain)
    finally:
        service.close()


def _import(client: Any, bundle: dict[str, Any], journal: Path) -> None:
    """The Python import pipeline (one batch, one transaction)."""
    from kizuna.client.importer import Importer, bundle_source

    raw = json.dumps(bundle).encode()
    Importer(client, journal_root=journal, workers=1).run(
        [bundle_source(bundle, raw, name="synthea.json")])


def _open_summary(web: Web, wallet: TestWallet, device: str) -> Any:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name="Health summary", exact=True).click()
    return session


def _download(page: Page) -> dict[str, Any]:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download (FHIR JSON)").click()
    path = info.value.path()
    document: dict[str, Any] = json.loads(Path(path).read_text("utf-8"))
    return document


def _compare(page_ips: dict[str, Any], python_ips: dict[str, Any]) -> None:
    """Section by section, then entry by entry, then whole: a difference names where."""
    mine = page_ips["entry"][0]["resource"]["section"]
    theirs = python_ips["entry"][0]["resource"]["section"]
    assert [s["title"] for s in mine] == [s["title"] for s in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert a == b, f"section {b['title']!r}: page {json.dumps(a)[:600]} != Python " \
                       f"{json.dumps(b)[:600]}"
    urls = [e["fullUrl"] for e in page_ips["entry"]]
    assert urls == [e["fullUrl"] for e in python_ips["entry"]]
    for a, b in zip(page_ips["entry"], python_ips["entry"], strict=True):
        assert a == b, f"entry {b['fullUrl']} ({b['resource']['resourceType']}) differs"
    assert page_ips == python_ips


def _share(session: Any, passcode: str) -> str:
    page = session.page
    page.get_by_label("Passcode (optional, 4 or more characters)").fill(passcode)
    page.get_by_role("button", name="Make a link to this summary").click()
    expect(page.get_by_test_id("notice").filter(has_text="Made a link to your health summary")
           ).to_be_visible(timeout=TIMEOUT)
    uri: str = page.get_by_test_id("shl-uri").input_value()
    assert uri.startswith("shlink:/")
    check_qr(page.get_by_test_id("shl-qr"), uri)
    return uri


def test_the_pages_summary_of_a_synthea_patient_is_the_python_builders(
        web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    wallet = web.wallet()
    synthea = synthea_patient(synthea_patients)
    with _patient(web, wallet) as client:
        _import(client, synthea, tmp_path / "journal")
        session = _open_summary(web, wallet, "desktop")
        page = session.page
        expect(page.get_by_test_id("ips-facts")).to_be_visible(timeout=TIMEOUT)
        page_ips = _download(page)
        # Python decrypts the same records itself (its own bulk read) and builds the IPS with
        # the page's time and document id: the rest must come out the same.
        from kizuna.sharing.share import own_resources

        resources = own_resources(client, workers=1)
        stamp = datetime.fromisoformat(page_ips["timestamp"].replace("Z", "+00:00"))
    python_ips = build_ips(resources, now=stamp.astimezone(UTC), document_id=page_ips["id"])
    assert len(resources) == len(synthea["entry"])
    _compare(page_ips, python_ips)
    # Not a summary of nothing: the Synthea life fills the sections the IG requires.
    counts = {s.key: len(lines) for s, lines in sections_of(python_ips)}
    assert counts["problems"] > 0 and counts["results"] > 0 and counts["vital_signs"] > 0, counts

    # What the patient reads: each section's lines as Python's reader writes them.
    for section, lines in sections_of(python_ips):
        shown = page.get_by_test_id(f"ips-{section.key}")
        expect(shown.get_by_role("heading")).to_contain_text(section.title)
        if lines:
            assert shown.locator("li").all_inner_texts() == lines
        else:
            expect(shown).to_contain_text(f"No {section.title.lower()} in your records.")
    check_layout(session, "ips-summary")

    uri = _share(session, "8642")
    check_layout(session, "ips-shared")
    opened = open_link(uri, recipient="Dr. Sato", passcode="8642")
    assert [c for _, c in opened.contents] == [page_ips]


def test_the_summary_at_phone_width_and_without_a_patient(
        web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    synthea = synthea_patient(synthea_patients)
    small = small_bundle(synthea, size=12, per_type=2)
    wallet = web.wallet()
    with _patient(web, wallet) as client:
        _import(client, small, tmp_path / "journal")
    session = _open_summary(web, wallet, "phone")
    page = session.page
    expect(page.get_by_test_id("ips-facts")).to_be_visible(timeout=TIMEOUT)
    for section in SECTIONS:
        expect(page.get_by_test_id(f"ips-{section.key}")).to_be_visible()
    check_layout(session, "ips-summary-phone")
    _share(session, "1357")
    check_layout(session, "ips-shared-phone")

    # A record with no Patient resource: the page says why there is no summary.
    nobody = web.wallet()
    with _patient(web, nobody) as client:
        client.add_record(json.dumps({"resourceType": "Condition", "id": "asthma",
                                      "code": {"text": "Asthma"},
                                      "subject": {"display": "me"}}).encode(),
                          label="Condition", content_type="application/fhir+json")
    session = _open_summary(web, nobody, "phone")
    expect(session.page.get_by_test_id("ips-no-patient")).to_contain_text(
        "your records hold no Patient record", timeout=TIMEOUT)
    check_layout(session, "ips-no-patient-phone")

