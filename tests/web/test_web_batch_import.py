"""Add records in the browser: a Synthea Bundle is imported with ONE wallet signature (issue
12's batch registration from the page, web/src/patient/batches.ts), against a real ``kizuna up
--demo`` on anvil, the test wallet signing with a real key and counting every request:

- after connecting, the whole import asks the wallet exactly once — a RegisterBatch whose
  purpose, shown in the page while the wallet asks, is "Register N records in one
  transaction" — while the page shows the records encrypted and uploaded;
- the chain holds one batch of N records for the patient; every record is on the Timeline;
- shared with dr-tanaka in the page, a batch record is read by the Python provider (``kizuna
  provider read``'s client; Python decrypts what the page encrypted: the resource as imported);
- a registration whose answer is lost (the connection reset after the service registered the
  batch) is said so in the page, and "Try again" finishes it without asking the wallet again
  or registering anything twice;
- the page fits and has no serious accessibility violation at desktop and phone width,
  before, during (the wallet asking) and after the import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import check_layout
from injected_wallet import TestWallet
from playwright.sync_api import Page, Route, expect
from synthea_data import small_bundle, synthea_patient
from test_patient_batches import batches_of
from web_harness import Web
from web_stack import WebStack

from kizuna.storage.fhir.scopes import scope_label

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 120_000
SIGNING = ("personal_sign", "eth_signTypedData_v4", "eth_sendTransaction")


def _go(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name=title, exact=True).click()
    expect(page.locator("main#main").get_by_role("heading", level=1)).to_be_visible()


def _bundle(tmp_path: Path, synthea_patients: Callable[..., Path], *, size: int,
            per_type: int) -> tuple[Path, dict[str, Any]]:
    bundle = small_bundle(synthea_patient(synthea_patients), size=size, per_type=per_type)
    path = tmp_path / "synthea-history.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path, bundle


def _connect(web: Web, device: str) -> tuple[TestWallet, Any]:
    wallet = web.wallet()
    session = web.open([wallet], device=device)
    session.page.get_by_role("button", name="Connect wallet").click()
    expect(session.page.get_by_test_id("account")).to_contain_text(wallet.address[:6],
                                                                    timeout=TIMEOUT)
    return wallet, session


def _import(wallet: TestWallet, session: Any, bundle: Path, count: int, *,
            lose_answer: bool = False) -> list[Any]:
    """Choose the Bundle, add its records while the wallet's one request is held (and looked
    at), and answer the wallet's signing requests the import made. ``lose_answer``: the
    batch's registration reaches the service, but its answer is lost (the connection is
    reset): the page says so, and "Try again" finishes the import."""
    page = session.page
    lost: list[str] = []

    def lose(route: Route) -> None:
        if lost:
            route.continue_()
            return
        answer = route.fetch()  # the real service registers the batch...
        lost.append(f"{answer.status}")
        route.abort("connectionreset")  # ...and the page never hears of it

    if lose_answer:
        session.watched.allow_error("Failed to load resource|ERR_CONNECTION_RESET")
        page.route("**/patient/batches", lose)
    _go(page, "Add records")
    page.locator("#add-files").set_input_files(str(bundle))
    expect(page.get_by_test_id("found-summary")).to_contain_text(f"{count} records",
                                                                 timeout=TIMEOUT)
    expect(page.get_by_test_id("sign-once")).to_contain_text("sign once for all of them")
    check_layout(session, "batch-found")
    before = len(wallet.calls)
    wallet.hold(page, "eth_signTypedData_v4")
    page.get_by_test_id("add-button").click()
    wallet.wait_held(page, "eth_signTypedData_v4", timeout=4 * TIMEOUT)
    progress = page.get_by_test_id("progress")
    expect(progress).to_contain_text(f"Encrypted in this page: {count} of {count} records")
    expect(progress).to_contain_text(f"Uploaded (encrypted): {count} of {count} records")
    expect(page.get_by_test_id("batch-step")).to_contain_text(
        f"one signature registers all {count} records")
    expect(page.get_by_test_id("wallet-prompt")).to_contain_text(
        f"Register {count} records in one transaction")
    check_layout(session, "batch-signing")
    wallet.release(page, "eth_signTypedData_v4")
    if lose_answer:
        expect(page.get_by_role("alert")).to_contain_text("cannot be reached", timeout=TIMEOUT)
        assert lost == ["201"], lost
        expect(page.get_by_test_id("resumable")).to_contain_text("continues where it stopped")
        check_layout(session, "batch-lost-answer")
        page.get_by_role("button", name="Try again").click()
    expect(page.get_by_test_id("added")).to_contain_text(f"{count} records added",
                                                         timeout=4 * TIMEOUT)
    check_layout(session, "batch-added")
    return [c for c in wallet.calls[before:] if c.method in SIGNING]


def _batches_on_chain(stack: WebStack, patient: str) -> list[Any]:
    deployment = json.loads(stack.deployment_file.read_text(encoding="utf-8"))
    return batches_of(stack.rpc_url, deployment["contracts"]["ConsentLedger"]["address"],
                      patient)


def test_a_synthea_bundle_is_imported_with_one_signature(
        web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    stack = web.stack
    tanaka = str(stack.demo_account("dr-tanaka").address)
    path, bundle = _bundle(tmp_path, synthea_patients, size=40, per_type=3)
    resources = [e["resource"] for e in bundle["entry"]]
    count = len(resources)
    assert count > 20, count
    wallet, session = _connect(web, "desktop")
    page = session.page

    asked = _import(wallet, session, path, count)
    # One wallet request for the whole import: the batch's registration, said so in the page.
    assert [c.method for c in asked] == ["eth_signTypedData_v4"], [c.method for c in asked]
    typed = json.loads(asked[0].params[1]) if isinstance(asked[0].params[1], str) \
        else asked[0].params[1]
    assert typed["primaryType"] == "RegisterBatch"
    assert int(typed["message"]["count"]) == count
    assert f"Register {count} records in one transaction" in (asked[0].prompt or "")
    (batch,) = _batches_on_chain(stack, wallet.address)
    assert batch["topics"][2] == typed["message"]["root"].lower()

    # Every record on the Timeline (decrypted in the page against the batch's manifest).
    _go(page, "Timeline")
    expect(page.get_by_test_id("timeline-count")).to_have_text(f"{count} records",
                                                               timeout=TIMEOUT)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    expect(page.locator("main#main")).to_contain_text(patient["name"][0]["family"])
    session.screenshot("batch-timeline")

    # Shared with dr-tanaka in the page (the scope of the Bundle's Conditions); the Python
    # provider lists exactly those records and reads one of them.
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    shared = str(scope_label(conditions[0]))
    conditions = [r for r in conditions if scope_label(r) == shared]
    _go(page, "Sharing")
    page.get_by_label("Provider", exact=True).select_option(tanaka)
    page.locator(f"input[type=checkbox][value='{shared}']").check()
    page.get_by_role("button", name="Share 1 part").click()
    expect(page.get_by_test_id("notice")).to_contain_text(f"with {tanaka}", timeout=TIMEOUT)
    with stack.provider("dr-tanaka") as python_provider:  # the CLI's client, in process
        readable = python_provider.records(patient=wallet.address)
        assert len(readable) == len(conditions) > 0
        got = json.loads(python_provider.read(patient=wallet.address,
                                              record_id=bytes(readable[0].record_id)))
    assert got in conditions, got


def test_a_lost_answer_resumes_at_phone_width(web: Web, tmp_path: Path,
                                              synthea_patients: Callable[..., Path]) -> None:
    """At phone width, and the registration's answer lost on the way: "Try again" finishes
    the import without asking the wallet again or registering anything twice."""
    stack = web.stack
    path, bundle = _bundle(tmp_path, synthea_patients, size=4, per_type=1)
    count = len(bundle["entry"])
    wallet, session = _connect(web, "phone")
    asked = _import(wallet, session, path, count, lose_answer=True)
    assert [c.method for c in asked] == ["eth_signTypedData_v4"]
    assert len(_batches_on_chain(stack, wallet.address)) == 1
    _go(session.page, "Timeline")
    expect(session.page.get_by_test_id("timeline-count")).to_have_text(f"{count} records",
                                                                       timeout=TIMEOUT)
    session.screenshot("batch-timeline")
