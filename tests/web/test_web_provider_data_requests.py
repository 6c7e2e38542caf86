"""The provider's data requests in the real page (Chromium, ``kizuna up --demo``, dr-tanaka's
key in the test wallet), the patient on the Python side (aiko, who holds a grant to dr-tanaka
in the demo, with the client ``kizuna patient ask / data-requests / receive`` runs, in this
process): the page decrypts aiko's note, acknowledges, sends a FHIR file sealed to aiko in the
page (aiko's Python client takes it in: checked against the chain, decrypted), and declines
another request — a decline without a reason is refused before the wallet is asked. Desktop and
phone: screenshots, no overflow, axe clean.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import expect
from web_harness import Web
from web_stack import WebStack

from kizuna.client import data_requests
from kizuna.wire.data_requests import DataRequest

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 60_000


def _aikos(stack: WebStack, note: str) -> DataRequest:
    """aiko's request whose note (as dr-tanaka decrypts it) is ``note``, as aiko lists it."""
    with stack.provider("dr-tanaka") as tanaka:
        api = data_requests.transport(tanaka.service)
        ids = {r.request_id for r in api.to_provider(tanaka.address)
               if data_requests.read_note(api, tanaka, r) == note}
    with stack.patient("aiko") as aiko:
        rows = data_requests.transport(aiko.service).of_patient(aiko.address)
    (row,) = [r for r in rows if r.request_id in ids]
    return row


def _reason(request: DataRequest) -> str | None:
    return next((a.reason for a in reversed(request.answers) if a.reason), None)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_dr_tanaka_answers_aikos_requests_in_the_page(web: Web, device: str,
                                                      tmp_path: Path) -> None:
    stack = web.stack
    tag = uuid.uuid4().hex[:8]
    note = f"All my lab results of 2024, please ({tag})"
    other = f"The discharge summary of 2019 ({tag})"
    tanaka = stack.demo_account("dr-tanaka").address
    with stack.patient("aiko") as aiko:
        for text, kind in ((note, "Observation"), (other, "DocumentReference")):
            data_requests.ask(data_requests.transport(aiko.service), aiko, tanaka,
                              types=[kind], since="2019", note=text)

    wallet = TestWallet(rpc_url=stack.rpc_url, chain_id=stack.chain_id,
                        accounts=[stack.demo_account("dr-tanaka")])
    wallet.fund()
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    nav = page.get_by_role("navigation", name="Your record")
    nav.get_by_role("link", name="Data requests", exact=True).click(timeout=TIMEOUT)
    mine = page.get_by_test_id("provider-data-request")
    first = mine.filter(has=page.get_by_test_id("pdr-note").filter(has_text=note))
    second = mine.filter(has=page.get_by_test_id("pdr-note").filter(has_text=other))
    expect(first).to_be_visible(timeout=TIMEOUT)
    expect(second).to_be_visible()
    check_layout(session, "provider-data-requests")

    first.get_by_role("button", name="Acknowledge").click()
    expect(first.get_by_test_id("dr-status")).to_have_text("Acknowledged", timeout=TIMEOUT)
    assert "Answer a data request" in (wallet.calls_of("eth_sendTransaction")[-1].prompt or "")
    assert _aikos(stack, note).status == "acknowledged"

    report = tmp_path / "lab.json"
    report.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": f"lab-{tag}", "status": "final",
                      "code": {"text": "HbA1c"}, "valueQuantity": {"value": 5.4, "unit": "%"},
                      "effectiveDateTime": "2024-05-01"}}]}), encoding="utf-8")
    first.get_by_role("button", name="Send records…").click()
    first.get_by_label("Files (FHIR JSON, PDF, images)").set_input_files(str(report))
    check_layout(session, "provider-data-requests-send")
    first.get_by_role("button", name="Encrypt and send 1 file").click()
    expect(first.get_by_test_id("dr-status")).to_have_text("Fulfilled", timeout=TIMEOUT)
    row = _aikos(stack, note)
    assert row.status == "fulfilled" and len(row.deliveries) == 1
    with stack.patient("aiko") as aiko:
        received = data_requests.receive(data_requests.transport(aiko.service), aiko,
                                         row.request_id, journal_root=tmp_path / "imports")
    assert received.resources == 2  # the Observation and its Provenance

    second.get_by_role("button", name="Decline…").click()
    sent = len(wallet.calls_of("eth_sendTransaction"))
    second.get_by_role("button", name="Decline the request").click()
    expect(page.get_by_test_id("error")).to_contain_text("a decline says why")
    assert len(wallet.calls_of("eth_sendTransaction")) == sent
    second.get_by_label("Reason (the patient sees it)").fill("We hold no records of 2019.")
    second.get_by_role("button", name="Decline the request").click()
    expect(second.get_by_test_id("dr-status")).to_have_text("Declined", timeout=TIMEOUT)
    declined = _aikos(stack, other)
    assert declined.status == "declined" and _reason(declined) == "We hold no records of 2019."
    check_layout(session, "provider-data-requests-answered")
