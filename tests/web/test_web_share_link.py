"""Share a link in the real page (Chromium, ``kizuna up --demo``, the test wallet): the records
of the chosen part are decrypted in the page and sealed under the link's key there; the
``shlink:/`` shown is opened by tests/sharing/shl_reader.py (written from the HL7 IG, no Kizuna
code) with its passcode, and holds exactly the chosen records; a wrong passcode and each
opening show in the page's list; ending the link makes it answer 404. Nothing chosen is
refused before anything is sent. The link's QR code, drawn in the page, decodes (zxing-cpp) to
the link and is segno's symbol of it as the CLI prints it (qr_check.py). Desktop and phone:
screenshots, no overflow, axe clean.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from browser import check_layout
from playwright.sync_api import expect
from qr_check import check_qr
from web_harness import Web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sharing"))

from shl_reader import ShlRefused, open_link, payload_of

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 60_000
FHIR = "application/fhir+json"


def _add_records(web: Web, key: bytes, records: list[tuple[str, dict[str, object]]]) -> None:
    """The same patient (the wallet's key) adds records with the Python client."""
    from kizuna.chain.connection import connect
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.client.api_service import ApiService
    from kizuna.client.http import ApiClient
    from kizuna.client.patient import PatientClient

    signer = LocalKeySigner("0x" + key.hex())
    api = ApiClient(web.stack.api_url, timeout=120.0)
    api.login(signer)
    service = ApiService(api, connect(web.stack.rpc_url, web.stack.deployment_file))
    try:
        patient = PatientClient(signer=signer, service=service, chain=service.chain)
        for label, resource in records:
            patient.add_record(json.dumps(resource).encode(), label=label, content_type=FHIR)
    finally:
        service.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_link_made_in_the_page_opens_elsewhere_and_ends(web: Web, device: str) -> None:
    wallet = web.wallet()
    condition = {"resourceType": "Condition", "id": "asthma", "code": {"text": "Asthma"},
                 "subject": {"display": "me"}}
    lab = {"resourceType": "Observation", "id": "hba1c", "status": "final",
           "code": {"text": "HbA1c"}, "valueQuantity": {"value": 5.4, "unit": "%"}}
    _add_records(web, bytes(wallet.accounts[0].key), [("Condition", condition),
                                                      ("Observation:laboratory", lab)])
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation").get_by_role("link", name="Share a link").click()
    expect(page.get_by_text("You have not made any link yet.")).to_be_visible(timeout=TIMEOUT)
    check_layout(session, "share-link-empty")

    page.get_by_role("button", name="Make the link").click()
    expect(page.get_by_role("alert").filter(has_text="at least one part")).to_be_visible()
    assert page.get_by_test_id("shl-uri").count() == 0

    page.get_by_label(re.compile(r"\bCondition \(1\)$")).check()
    page.get_by_label("Name of the link (optional, the reader sees it)").fill("For Dr. Sato")
    page.get_by_label("Passcode (optional, 4 or more characters)").fill("2468")
    page.get_by_role("button", name="Make the link").click()
    expect(page.get_by_test_id("notice").filter(has_text="Made a link to 1 record")).to_be_visible(
        timeout=TIMEOUT)
    uri = page.get_by_test_id("shl-uri").input_value()
    assert uri.startswith("shlink:/")
    payload = payload_of(uri)
    assert payload["flag"] == "P" and payload["label"] == "For Dr. Sato" and payload["exp"]
    check_qr(page.get_by_test_id("shl-qr"), uri)
    check_layout(session, "share-link-made")

    with pytest.raises(ShlRefused) as refused:
        open_link(uri, recipient="a stranger", passcode="0000")
    assert refused.value.status == 401
    opened = open_link(uri, recipient="Dr. Sato", passcode="2468")
    assert [c for _, c in opened.contents] == [{"resourceType": "Bundle", "type": "collection",
                                                "entry": [{"resource": condition}]}]

    page.get_by_role("button", name="Check who opened them").click()
    item = page.get_by_test_id("shl-link").first
    expect(item).to_contain_text("Dr. Sato — downloaded the records")
    expect(item).to_contain_text("a stranger — wrong passcode")
    item.get_by_role("button", name="End this link").click()
    expect(page.get_by_test_id("notice").filter(has_text="no longer opens")).to_be_visible(
        timeout=TIMEOUT)
    expect(item.get_by_test_id("shl-state")).not_to_have_text("active")
    with pytest.raises(ShlRefused) as gone:
        open_link(uri, recipient="later", passcode="2468")
    assert gone.value.status == 404
    check_layout(session, "share-link-ended")
