"""GET /auditor/receipts page by page, against the real API (anvil, SQLite, uvicorn): a stable
``seq`` order, an opaque ``next_cursor`` until the last page, every receipt exactly once with
its proof (anchored ones fold up to their root, pending ones have none), a cursor that is not
one of this list refused by name (422, ``cursor``), and ``limit`` bounded (422, ``limit``)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from participants import People

from kizuna.merkle import process_proof
from kizuna.services.audit.receipts import RECEIPT_PAGE_MAX

pytestmark = pytest.mark.anvil

READS_ANCHORED = 3
READS_PENDING = 2


def _reads(people: People) -> None:
    """Five reads of one granted record: three anchored in one batch, then two pending."""
    patient, provider, auditor = people.patient, people.provider, people.auditor
    sealed = patient.add(b'{"resourceType":"Observation","id":"o1"}',
                         label="Observation:laboratory", content_type="application/fhir+json")
    granted = patient.grant(provider.address, provider.keys.public_key,
                            ["Observation:laboratory"])
    assert granted.status_code == 200, granted.text
    for n in range(READS_ANCHORED + READS_PENDING):
        if n == READS_ANCHORED:
            anchored = auditor.post("/auditor/anchor", {})
            assert anchored.status_code == 200 and anchored.json()["anchored"] == READS_ANCHORED
        answer = provider.request_read(patient.address, sealed.record_id)
        assert answer.status_code == 200, answer.text


def _page(people: People, **params: Any) -> dict[str, Any]:
    answer = people.auditor.get("/auditor/receipts", params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def _refused(people: People, **params: Any) -> dict[str, Any]:
    answer = people.auditor.get("/auditor/receipts", params=params)
    assert answer.status_code == 422, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_receipts_come_page_by_page_in_a_stable_order(people: People) -> None:
    _reads(people)
    total = READS_ANCHORED + READS_PENDING
    everything = _page(people, limit=RECEIPT_PAGE_MAX)
    assert everything["next_cursor"] is None  # one page holds them all: the last page
    seqs = [r["seq"] for r in everything["receipts"]]
    assert len(seqs) == total and seqs == sorted(seqs)

    # Two at a time: 2, 2, 1; each page continues where the last stopped, the last says so.
    first = _page(people, limit=2)
    assert [r["seq"] for r in first["receipts"]] == seqs[:2] and first["next_cursor"]
    second = _page(people, limit=2, cursor=first["next_cursor"])
    assert [r["seq"] for r in second["receipts"]] == seqs[2:4] and second["next_cursor"]
    last = _page(people, limit=2, cursor=second["next_cursor"])
    assert [r["seq"] for r in last["receipts"]] == seqs[4:] and last["next_cursor"] is None
    # A page that ends exactly at the end is the last one (no empty page after it).
    exact = _page(people, limit=total)
    assert len(exact["receipts"]) == total and exact["next_cursor"] is None
    # The same cursor again gives the same page (a retry is safe).
    assert _page(people, limit=2, cursor=first["next_cursor"]) == second
    # Paged or not, the same receipts with the same proofs.
    paged = first["receipts"] + second["receipts"] + last["receipts"]
    assert paged == everything["receipts"]

    # Proofs: each anchored receipt's folds its stored leaf up to its batch's root, even when
    # the rest of its batch is on other pages; pending receipts have no root and no proof.
    anchored = [r for r in paged if r["batch_root"]]
    pending = [r for r in paged if not r["batch_root"]]
    assert len(anchored) == READS_ANCHORED and len(pending) == READS_PENDING
    for r in anchored:
        folded = process_proof([bytes.fromhex(x[2:]) for x in r["proof"]],
                               bytes.fromhex(r["leaf"][2:]))
        assert "0x" + folded.hex() == r["batch_root"], r
    assert all(r["proof"] == [] for r in pending)

    # A receipt stored later comes on a later page: the page that was the last one now hands
    # out a cursor, and the page after it holds only the new receipt.
    answer = people.provider.request_read(people.patient.address,
                                          bytes.fromhex(paged[0]["record_id"][2:]))
    assert answer.status_code == 200, answer.text
    again = _page(people, limit=total)
    assert again["receipts"] == exact["receipts"] and again["next_cursor"]
    newer = _page(people, limit=total, cursor=again["next_cursor"])
    assert [r["seq"] for r in newer["receipts"]] == [answer.json()["receipt_seq"]]
    assert newer["next_cursor"] is None


def test_a_cursor_not_of_this_list_and_a_limit_out_of_bounds_are_refused_by_name(
        people: People) -> None:
    _reads(people)
    good = _page(people, limit=1)["next_cursor"]
    assert good
    for bad in ("nonsense!", "", good + "A", good[:-1],
                base64.urlsafe_b64encode(b"seq:-1").decode().rstrip("="),
                base64.urlsafe_b64encode(b"seq:01").decode().rstrip("="),
                base64.urlsafe_b64encode(b"row:3").decode().rstrip("="),
                base64.urlsafe_b64encode(b"seq:3").decode()):  # padded: not as handed out
        error = _refused(people, cursor=bad, limit=1)
        assert error["field"] == "cursor", (bad, error)
        assert "next_cursor" in error["message"], error
    assert _refused(people, cursor="x" * 65)["field"] == "cursor"
    for limit in (0, -1, RECEIPT_PAGE_MAX + 1):
        assert _refused(people, limit=limit)["field"] == "limit", limit
    assert people.provider.get("/auditor/receipts").status_code == 403
