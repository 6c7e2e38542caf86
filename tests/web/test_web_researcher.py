"""The researcher's page in the real page (Chromium, ``kizuna up --demo``, the test wallet signing
as the demo's verified provider dr-sato): a study is registered from the page (an empty purpose
is refused by field, nothing sent; then the wallet is asked, the purpose shown in its prompt,
and the study is on the chain as typed). Three patients consent with the Python client
(``consent_to_study``: the de-identified copy, the grant, the registry's consent, as
tests/research do); the third withdraws (``withdraw_from_study``). The page shows the cohort
from the chain (2 taking part, 1 withdrew), reads the two copies through the provider read path
(one signed ReadRequest per record, its purpose shown), says the withdrawn patient is not read,
and saves the cohort as FHIR Bulk NDJSON files that equal, byte for byte and file for file,
what Python's ``export_study`` writes for the same study. The service refuses the withdrawn
patient's copy (Python's provider read). A patient who withdraws while the page is open is
not read at the next read (the cohort is read from the chain again). Desktop and phone:
screenshots, no overflow, axe clean.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, expect
from test_web_ips import _patient
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 180_000
FHIR = "application/fhir+json"
VITALS = "Observation:vital-signs"


def _vital(n: int, value: str) -> bytes:
    """A heart rate with a decimal written as the patient's device wrote it ("72.0" stays a
    Python float in the copy, so the export writes 72.0 where JavaScript would write 72)."""
    text = json.dumps({
        "resourceType": "Observation", "id": f"hr{n}", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                            "observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                             "display": "Heart rate"}]},
        "subject": {"reference": "Patient/p1", "display": "Aiko Tanaka"},
        "effectiveDateTime": f"2024-03-0{n}T10:00:00Z",
        "valueQuantity": {"value": "VALUE", "unit": "/min"}})
    return text.replace('"VALUE"', value).encode()


def _condition(text: str) -> bytes:
    return json.dumps({"resourceType": "Condition", "id": "c1",
                       "code": {"text": text, "coding": [{"system": "http://snomed.info/sct",
                                                          "code": "38341003"}]},
                       "onsetDateTime": "2019-05-02", "note": [{"text": "lives at 1 Main St"}],
                       "subject": {"reference": "Patient/p1"}}, ensure_ascii=False).encode()


def _open(web: Web, wallet: TestWallet, device: str) -> Any:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    nav = page.get_by_role("navigation").first
    nav.get_by_role("link", name="Studies", exact=True).click(timeout=TIMEOUT)
    expect(page.get_by_role("heading", name="Research studies")).to_be_visible(timeout=TIMEOUT)
    return session


def _saved(page: Page, card: Any, tmp: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for item in card.get_by_test_id("study-file").all():
        name = item.get_attribute("data-name")
        assert name
        with page.expect_download() as info:
            item.get_by_role("button").click()
        files[name] = Path(info.value.path()).read_bytes()
    return files


def test_a_researcher_registers_a_study_reads_its_cohort_and_exports_it(
        web: Web, tmp_path: Path) -> None:
    from kizuna.chain.connection import connect
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.client.api_service import ApiService
    from kizuna.client.http import ApiClient
    from kizuna.client.provider import ProviderClient
    from kizuna.errors import KizunaError
    from kizuna.research.studies import (
        consent_to_study,
        export_study,
        study_label,
        withdraw_from_study,
    )

    chain = connect(web.stack.rpc_url, web.stack.deployment_file)
    sato = web.stack.demo_account("dr-sato")
    researcher = TestWallet(rpc_url=web.stack.rpc_url, chain_id=web.stack.chain_id,
                            accounts=[sato])
    researcher.fund()
    purpose = f"Resting heart rate and hypertension {os.urandom(3).hex()}"

    # 1. Register from the page: a missing purpose is named, nothing is sent.
    session = _open(web, researcher, "desktop")
    page = session.page
    form = page.get_by_test_id("study-form")
    form.locator(f'input[value="{VITALS}"]').check()
    form.locator('input[value="Condition"]').check()
    form.get_by_role("button", name="Register the study").click()
    expect(form.locator("#study-purpose-error")).to_contain_text("say what the data is for")
    assert not researcher.calls_of("eth_sendTransaction")
    form.get_by_label("Purpose").fill(purpose)
    researcher.hold(page, "eth_sendTransaction")
    form.get_by_role("button", name="Register the study").click()
    researcher.wait_held(page, "eth_sendTransaction", timeout=TIMEOUT)
    prompt = page.get_by_test_id("wallet-prompt")
    expect(prompt).to_contain_text("Register a research study")
    expect(prompt).to_contain_text(purpose)
    researcher.release(page, "eth_sendTransaction")
    expect(page.get_by_test_id("notice").filter(has_text="Registered the study")
           ).to_be_visible(timeout=TIMEOUT)
    card = page.get_by_role("article", name=purpose)
    expect(card).to_be_visible(timeout=TIMEOUT)
    study_hex = card.get_attribute("data-study")
    assert study_hex
    study_id = bytes.fromhex(study_hex[2:])
    study = chain.studies.study(study_id)
    assert study is not None and study.purpose == purpose
    assert study.researcher == sato.address
    assert set(study.scopes) == {VITALS, "Condition"}
    expect(card.get_by_test_id("study-cohort")).to_have_text("0 patients taking part · 0 withdrew")
    check_layout(session, "researcher-registered")

    # 2. The cohort: three patients consent (the CLI's path), the third withdraws.
    patients: list[str] = []
    wallets: list[TestWallet] = []
    withdrawn_copy: list[bytes] = []
    for n, (value, condition) in enumerate([("72.0", "Hypertension"), ("64.5", "Asthma"),
                                            ("80", "Migraine")], start=1):
        wallet = web.wallet()
        with _patient(web, wallet) as client:
            client.add_record(_vital(1, value), label=VITALS, content_type=FHIR)
            client.add_record(_vital(2, "1.50"), label=VITALS, content_type=FHIR)
            client.add_record(_condition(condition), label="Condition", content_type=FHIR)
            consent_to_study(client, study_id, [VITALS, "Condition"],
                             journal_root=tmp_path / f"journal{n}")
            if n == 3:
                withdraw_from_study(client, study_id)
                withdrawn_copy = [bytes(r.record_id) for r in
                                  client.records(labels=[study_label(study_id)])]
        patients.append(wallet.address)
        wallets.append(wallet)
    assert withdrawn_copy

    page.get_by_role("button", name="Refresh").click()
    expect(card.get_by_test_id("study-cohort")).to_have_text(
        "2 patients taking part · 1 withdrew", timeout=TIMEOUT)
    members = card.get_by_test_id("study-member")
    expect(members).to_have_count(3)
    gone = members.filter(has=page.locator(f'[title="{patients[2]}"]'))
    expect(gone).to_have_attribute("data-consented", "false")
    expect(gone).to_contain_text("withdrew")

    # 3. Read the cohort: one signed request per record; the withdrawn patient is not read.
    signed_before = len(researcher.calls_of("eth_signTypedData_v4"))
    card.get_by_role("button", name="Read the cohort's data").click()
    expect(card.get_by_test_id("study-export")).to_be_visible(timeout=TIMEOUT)
    for address in patients[:2]:
        row = members.filter(has=page.locator(f'[title="{address}"]'))
        expect(row.get_by_test_id("member-read")).to_have_text("3 of 3 records read")
    expect(gone.get_by_test_id("member-read")).to_have_text(
        "not read: the consent was withdrawn, and the service refuses reads of this copy")
    reads = researcher.calls_of("eth_signTypedData_v4")[signed_before:]
    assert len(reads) == 6
    assert all(c.prompt and "Read a record" in c.prompt for c in reads)
    for c in reads:
        assert patients[2].lower() not in json.dumps(c.params).lower()
    check_layout(session, "researcher-cohort-read")

    # 4. The page's files are Python's export of the same study, byte for byte.
    saved = _saved(page, card, tmp_path)
    api = ApiClient(web.stack.api_url, timeout=120.0)
    signer = LocalKeySigner("0x" + bytes(sato.key).hex())
    api.login(signer)
    service = ApiService(api, chain)
    try:
        python = ProviderClient(signer=signer, service=service, chain=chain)
        counts = export_study(python, study_id, tmp_path / "python-export")
        assert counts == {"Observation": 4, "Condition": 2}
        written = {p.name: p.read_bytes() for p in (tmp_path / "python-export").iterdir()}
        assert sorted(saved) == sorted(written) == ["Condition.ndjson", "Observation.ndjson"]
        for name, content in written.items():
            assert saved[name] == content, f"{name}: page {saved[name][:300]!r} != " \
                                           f"Python {content[:300]!r}"
        assert b'"value":72.0' in saved["Observation.ndjson"]
        assert b"Aiko" not in saved["Observation.ndjson"]
        # The withdrawn patient's copy: the service refuses the read.
        with pytest.raises(KizunaError):
            python.read(patient=patients[2], record_id=withdrawn_copy[0])
    finally:
        service.close()

    # 5. The second patient withdraws while the page is open (not refreshed): the next read
    # takes the cohort from the chain again and does not read them.
    with _patient(web, wallets[1]) as client:
        withdraw_from_study(client, study_id)
    signed_before = len(researcher.calls_of("eth_signTypedData_v4"))
    card.get_by_role("button", name="Read the cohort's data again").click()
    second = members.filter(has=page.locator(f'[title="{patients[1]}"]'))
    expect(second.get_by_test_id("member-read")).to_have_text(
        "not read: the consent was withdrawn, and the service refuses reads of this copy",
        timeout=TIMEOUT)
    expect(card.get_by_test_id("study-file")).to_have_count(2, timeout=TIMEOUT)
    expect(members.filter(has=page.locator(f'[title="{patients[0]}"]')).get_by_test_id(
        "member-read")).to_have_text("3 of 3 records read")
    reads = researcher.calls_of("eth_signTypedData_v4")[signed_before:]
    assert len(reads) == 3
    assert not [c for c in reads if patients[1].lower() in json.dumps(c.params).lower()]
    assert not card.get_by_test_id("study-read-failures").count()

    # 6. At phone width.
    phone = _open(web, researcher, "phone")
    phone_card = phone.page.get_by_role("article", name=purpose)
    expect(phone_card.get_by_test_id("study-cohort")).to_have_text(
        "1 patient taking part · 2 withdrew", timeout=TIMEOUT)
    phone_card.get_by_role("button", name="Read the cohort's data").click()
    expect(phone_card.get_by_test_id("study-export")).to_be_visible(timeout=TIMEOUT)
    phone_card.scroll_into_view_if_needed()
    check_layout(phone, "researcher-cohort-read-phone")
