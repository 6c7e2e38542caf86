"""Research in the real page (Chromium, ``kizuna up --demo``, the test wallet): a verified
researcher (the demo's dr-sato) registers two studies on the chain; the patient consents to
one with the Python client (``consent_to_study``: the de-identified copy, the grant, the
registry's consent). The page lists both studies from the chain — purpose, the parts of a
record asked for, the end, the researcher verified — with the patient's part in each; the
patient, whose wallet holds no ether, withdraws in the page: the wallet is asked to sign (its
purpose shown, the study named) the revoke and then the registry's StudyWithdrawal, both relayed
by the service, and afterwards the chain has no current consent and no live grant of the study
copy's scope. The other study offers to take part. Desktop and
phone: screenshots, no overflow, axe clean.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import check_layout
from eth_utils.address import to_checksum_address
from playwright.sync_api import expect
from test_web_ips import _patient
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
FHIR = "application/fhir+json"


def test_a_patient_sees_the_studies_and_withdraws_in_the_page(web: Web, tmp_path: Path) -> None:
    from kizuna.chain.connection import connect
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.research.studies import consent_to_study

    chain = connect(web.stack.rpc_url, web.stack.deployment_file)
    sato = web.stack.demo_account("dr-sato")
    researcher = LocalKeySigner("0x" + bytes(sato.key).hex())
    ends_at = chain.head().timestamp + 90 * 86_400
    salt, other_salt = os.urandom(32), os.urandom(32)
    chain.studies.register_study(salt, "Blood pressure in adults over 50",
                                 ["Observation:vital-signs", "Patient"], ends_at,
                                 signer=researcher)
    chain.studies.register_study(other_salt, "Sleep and heart rate",
                                 ["Observation:vital-signs"], ends_at, signer=researcher)
    study_id = chain.studies.study_id(researcher.address, salt)

    wallet = web.wallet()
    patient_address = to_checksum_address(wallet.address)
    bp = {"resourceType": "Observation", "id": "bp1", "status": "final",
          "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                              "observation-category", "code": "vital-signs"}]}],
          "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                               "display": "Heart rate"}]},
          "effectiveDateTime": "2024-03-01T10:00:00Z",
          "valueQuantity": {"value": 72, "unit": "/min"}}
    with _patient(web, wallet) as client:
        client.add_record(json.dumps(bp).encode(), label="Observation:vital-signs",
                          content_type=FHIR)
        share = consent_to_study(client, study_id, ["Observation:vital-signs"],
                                 journal_root=tmp_path / "journal")
    assert chain.studies.consent_of(study_id, patient_address).consented

    session = web.open([wallet], device="desktop")
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name="Research", exact=True).click()
    studies = page.get_by_test_id("study")
    expect(studies.first).to_be_visible(timeout=TIMEOUT)
    mine = studies.filter(has_text="Blood pressure in adults over 50")
    other = studies.filter(has_text="Sleep and heart rate")
    expect(mine.get_by_test_id("study-state")).to_have_text("you take part")
    expect(mine.get_by_test_id("study-verified")).to_have_text("verified by a registrar")
    expect(mine).to_contain_text("Observation:vital-signs")
    expect(mine).to_contain_text("Patient")
    expect(other.get_by_test_id("study-state")).to_have_text("not taking part")
    # taking part is offered (tests/web/test_web_research_consent.py takes part)
    expect(other.get_by_role("button", name="Take part…")).to_be_visible()
    check_layout(session, "research-list")

    # The wallet holds no ether now: withdrawing must be as easy as consenting (both relayed).
    wallet.fund(0)
    signs = "eth_signTypedData_v4"
    wallet.hold(page, signs)
    mine.get_by_role("button", name="Withdraw from this study").click()
    wallet.wait_held(page, signs, timeout=TIMEOUT)  # the revoke's signature
    wallet.release(page, signs)
    wallet.hold(page, signs)
    prompt = page.get_by_test_id("wallet-prompt")
    expect(prompt).to_contain_text("Withdraw from the study", timeout=TIMEOUT)
    expect(prompt).to_contain_text("Blood pressure in adults over 50")  # it names the study
    wallet.wait_held(page, signs, timeout=TIMEOUT)
    # The revoke came first: the study can no longer read before the withdrawal is recorded.
    grant = chain.ledger.grant_of(patient_address, researcher.address, share.scope_id)
    assert grant is None or not grant.live
    check_layout(session, "research-withdrawing")
    wallet.release(page, signs)
    expect(page.get_by_test_id("notice").filter(has_text="You no longer take part")
           ).to_be_visible(timeout=TIMEOUT)
    expect(mine.get_by_test_id("study-state")).to_have_text("you withdrew")
    assert not mine.get_by_role("button", name="Withdraw from this study").is_visible()
    assert not chain.studies.consent_of(study_id, patient_address).consented
    signed = [c.params[1] for c in wallet.calls_of(signs)]
    typed = [json.loads(p) if isinstance(p, str) else p for p in signed]
    assert [t["primaryType"] for t in typed[-2:]] == ["Revoke", "StudyWithdrawal"]
    assert typed[-1]["message"]["studyId"].lower() == "0x" + study_id.hex()
    assert "eth_sendTransaction" not in wallet.methods()  # relayed: the wallet paid nothing
    assert chain.w3.eth.get_balance(patient_address) == 0
    check_layout(session, "research-withdrawn")

    phone = web.open([wallet], device="phone")
    phone.page.get_by_role("button", name="Connect wallet").click()
    expect(phone.page.get_by_test_id("account")).to_contain_text(wallet.address[:6],
                                                                  timeout=TIMEOUT)
    phone.page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name="Research", exact=True).click()
    expect(phone.page.get_by_test_id("study").filter(has_text="Sleep and heart rate")
           ).to_be_visible(timeout=TIMEOUT)
    check_layout(phone, "research-list-phone")
