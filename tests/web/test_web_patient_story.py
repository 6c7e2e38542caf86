"""The whole patient story in the browser, against a real ``kizuna up --demo`` on anvil, with
the test wallet signing with a real key and the Python provider (the ``kizuna`` CLI's
ProviderClient) on the other side:

connect → import a Synthea Bundle and a PDF → type in a blood pressure → see them on the
timeline and the chart → share the vital signs with dr-tanaka → dr-tanaka reads the blood
pressure with ``kizuna provider read``'s client, in process (Python decrypts what the page
encrypted, byte for byte the FHIR the page built) → the patient sees the read → stop sharing →
dr-tanaka's next read is refused.

And the network check: every request the page made during the story is captured, and none
carries a plaintext needle of the imported data (the Synthea patient's name and id, the PDF's
text) or key material (the key-derivation signature, the keys derived from it, the scope
secrets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from injected_wallet import TestWallet
from playwright.sync_api import Page, Route, expect
from synthea_data import closed_bundle, synthea_patient
from web_harness import Web
from web_stack import WebStack

from kizuna.crypto.scopes import blind_scope
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys
from kizuna.errors import AccessDenied
from kizuna.types import Address

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
PDF_NEEDLE = b"KIZUNA-STORY-PDF-NEEDLE-7f3a"


def _pdf() -> bytes:
    """A small, valid one-page PDF whose text is the needle."""
    stream = b"BT /F1 18 Tf 40 100 Td (" + PDF_NEEDLE + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _deployment(stack: WebStack) -> KeyDerivationDomain:
    deployment = json.loads(stack.deployment_file.read_text(encoding="utf-8"))
    ledger = deployment["contracts"]["ConsentLedger"]["address"]
    return KeyDerivationDomain(chain_id=stack.chain_id, verifying_contract=Address(ledger))


def test_the_patient_story(web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    stack = web.stack
    tanaka = str(stack.demo_account("dr-tanaka").address)
    synthea = synthea_patient(synthea_patients)
    bundle = closed_bundle(synthea, {"Patient": 1, "Observation": 2, "Condition": 1})
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    bundle_file = tmp_path / "history.json"
    bundle_file.write_text(json.dumps(bundle), encoding="utf-8")
    pdf_file = tmp_path / "discharge-letter.pdf"
    pdf_file.write_bytes(_pdf())

    wallet: TestWallet = web.wallet()
    session = web.open([wallet])
    page = session.page

    # 1. Connect: sign in, unlock the keys.
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)

    # 2. Import the Synthea Bundle and the PDF (validated in the page, then sealed and sent).
    # Chosen before the checks' rules have loaded (held back here), the files wait, not vanish.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/assets/rules.generated-*.js", hold)
    _go(page, "Add records")
    page.locator("#add-files").set_input_files([str(bundle_file), str(pdf_file)])
    expect(page.get_by_role("status").filter(has_text="2 files will be checked in a moment")
           ).to_be_visible(timeout=TIMEOUT)
    session.wait_until(lambda: bool(held), "the page to ask for the import rules")
    held[0].continue_()
    page.unroute("**/assets/rules.generated-*.js")
    expect(page.get_by_test_id("found-summary")).to_be_visible(timeout=TIMEOUT)
    session.screenshot("add-found")
    page.get_by_test_id("add-button").click()
    expect(page.get_by_test_id("added")).to_be_visible(timeout=4 * TIMEOUT)
    session.screenshot("add-done")
    # The Bundle's records and the PDF's description are ONE batch (one RegisterBatch); the
    # PDF itself is streamed and registered alone.
    signed = [c.params[1] for c in wallet.calls_of("eth_signTypedData_v4")]
    kinds = [(json.loads(t) if isinstance(t, str) else t)["primaryType"] for t in signed]
    assert kinds.count("RegisterBatch") == 1 and kinds.count("RegisterRecord") == 1, kinds

    # 3. A blood pressure typed in (out of the normal range: flagged later).
    page.get_by_label("What do you want to add?").select_option(label="Blood pressure")
    page.get_by_label("Systolic (upper), mmHg").fill("152")
    page.get_by_label("Diastolic (lower), mmHg").fill("97")
    page.get_by_role("button", name="Add blood pressure").click()
    expect(page.get_by_role("status").filter(has_text="Blood pressure added")).to_be_visible(
        timeout=TIMEOUT)

    # 4. On the timeline (rendered for people) and on the chart.
    _go(page, "Timeline")
    timeline = page.locator("main#main")
    expect(timeline).to_contain_text("152/97 mmHg", timeout=TIMEOUT)
    family = patient["name"][0]["family"]
    expect(timeline).to_contain_text(family)
    expect(timeline).to_contain_text("discharge-letter.pdf")
    session.screenshot("timeline")
    # The PDF is decrypted on demand and shown inline from a blob: URL made in the page.
    timeline.get_by_role("button", name="Open PDF: discharge-letter.pdf").click()
    shown = timeline.locator("iframe[title='discharge-letter.pdf']")
    expect(shown).to_have_attribute("src", re.compile(r"^blob:"), timeout=TIMEOUT)
    _go(page, "Charts")
    expect(page.locator("main#main").get_by_role("heading", name="Blood pressure")).to_be_visible(
        timeout=TIMEOUT)
    session.screenshot("charts")

    # 5. Share the vital signs with dr-tanaka (one scope-key signature, one grant signature).
    _go(page, "Sharing")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.get_by_label("Observation:vital-signs").check()
    page.get_by_role("button", name="Share 1 part").click()
    expect(page.get_by_test_id("notice")).to_contain_text(f"with {tanaka}", timeout=TIMEOUT)

    # 6. dr-tanaka reads the blood pressure with the Python provider (the CLI's client, in
    # this process): the FHIR the page built.
    with stack.provider("dr-tanaka") as python_provider:
        readable = python_provider.records(patient=wallet.address)
        assert readable, "dr-tanaka can read nothing of the patient's after the grant"
        bodies = [json.loads(python_provider.read(patient=wallet.address,
                                                  record_id=bytes(row.record_id)))
                  for row in readable]
    pressures = [b for b in bodies if b.get("code", {}).get("coding", [{}])[0].get("code")
                 == "85354-9" and "component" in b]
    typed = [p for p in pressures if [c["valueQuantity"]["value"] for c in p["component"]]
             == [152, 97]]
    assert typed, f"the typed blood pressure is not among what dr-tanaka read: {pressures}"
    assert {b["resourceType"] for b in bodies} == {"Observation"}  # vital signs only

    # 7. The patient sees the reads.
    _go(page, "Who read what")
    reads = page.get_by_test_id("reads-table")
    expect(reads).to_contain_text(tanaka[:6], timeout=TIMEOUT)
    expect(reads.locator("tbody tr")).to_have_count(len(readable), timeout=TIMEOUT)
    session.screenshot("reads")

    # 8. Stop sharing: dr-tanaka's next read is refused.
    _go(page, "Sharing")
    card = page.get_by_role("article", name=f"Shared with {tanaka}")
    card.get_by_role("button", name="Stop sharing Observation:vital-signs").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Stopped sharing", timeout=TIMEOUT)
    with stack.provider("dr-tanaka") as python_provider, \
            pytest.raises(AccessDenied) as refused:
        python_provider.read(patient=wallet.address, record_id=bytes(readable[0].record_id))
    assert re.search(r"grant|denied|refused|not readable|no live", str(refused.value), re.I), \
        refused.value

    # 9. Nothing secret left the page: no plaintext needle, no key material.
    watched = session.watched
    assert watched.requests, "no request was recorded"
    needles = {
        "the Synthea patient's family name": family.encode(),
        "the Synthea patient's id": str(patient["id"]).encode(),
        "the PDF's text": PDF_NEEDLE,
    }
    (derivation,) = [c for c in wallet.calls_of("eth_signTypedData_v4")
                     if "KeyDerivation" in json.dumps(c.params)]
    signature = bytes.fromhex(str(derivation.answer["result"]).removeprefix("0x"))
    keys = derive_wallet_keys(signature=signature, account=wallet.address,
                              domain=_deployment(stack))
    needles["the key-derivation signature"] = signature
    needles["the decrypting key"] = keys.decrypting_key.to_secret_bytes()
    needles["the signing key"] = keys.signing_key.to_secret_bytes()
    needles["the scope blinding key"] = keys.scope_key.reveal()
    for label in ("Observation:vital-signs", "Patient", "DocumentReference"):
        sid = blind_scope(keys.scope_key, label)
        for epoch in (0, 1):
            needles[f"the {label} scope secret (epoch {epoch})"] = \
                keys.scope_delegating_key(sid, epoch).to_secret_bytes()
    # The search sees what was sent: the blinded scope id (public by design) is found.
    assert watched.carrying(bytes(blind_scope(keys.scope_key, "Observation:vital-signs")))
    leaks = {what: watched.carrying(needle) for what, needle in needles.items()}
    assert not {k: v for k, v in leaks.items() if v}, f"secrets left the page: {leaks}"
