"""Finding 9: ``GET /content/{cid}`` served any envelope to any signed-in wallet. A care
message's CID is computable from its on-chain commitment's envelope (and a record's from the
bytes a provider once read), so a stranger fetched a patient's messages, bypassing the message
route's parties-only rule, and a provider fetched records without a read (no receipt).

Now the route serves an envelope only to whoever may have it: a message's parties, a record's
patient, a provider right after a read of that record that left a receipt. Everyone else gets
the answer of an unknown CID (404), which tells a prober nothing."""

from __future__ import annotations

import os

import pytest
from adversarial_world import World
from participants import HttpPatient, HttpProvider, Participant, hx

from kizuna.chain.eip712 import TypedData
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.receipts.request import proxy_domain
from kizuna.storage.envelope import encrypt_bytes
from kizuna.storage.unixfs import compute_cid
from kizuna.types import RecordId
from kizuna.wire.care import CARE_KINDS, INBOX_KEY_FIELDS

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test has its own
world."""

LAB = "Observation:laboratory"


def _send_report(world: World, patient: HttpPatient, provider: HttpProvider,
                 text: bytes) -> str:
    """The provider's report to ``patient`` (inbox key, logCareEvent, upload); its CID."""
    chain = patient.chain
    public = patient.keys.public_key.to_bytes()
    statement = TypedData(domain=proxy_domain(chain_id=chain.chain_id,
                                              access_log=chain.deployment.access_log),
                          primary_type="InboxKey", types={"InboxKey": INBOX_KEY_FIELDS},
                          message={"patient": patient.address, "publicKey": hx(public)})
    published = patient.post("/patient/inbox-key", {
        "public_key": hx(public), "signature": hx(patient.signer.sign_typed_data(statement))})
    assert published.status_code == 200, published.text
    world.env.fund(provider.address)
    message_id = os.urandom(32)
    envelope = bytes(encrypt_bytes(text, owner_key=pre.UmbralPublicKey.from_bytes(public),
                                   record_id=RecordId(message_id),
                                   content_type="application/fhir+json"))
    receipt = chain.ledger.log_care_event(patient.address, CARE_KINDS["report"],
                                          commitment_of(envelope), signer=provider.signer,
                                          provider=provider.address,
                                          scope_id=patient.keys.scope_id(LAB))
    sent = provider.http.put(f"/care/messages/{hx(message_id)}", content=envelope, headers={
        **provider.auth, "X-Kizuna-Tx-Hash": hx(receipt.tx_hash),
        "X-Kizuna-Patient": patient.address, "X-Kizuna-Kind": "report",
        "X-Kizuna-Provider": provider.address})
    assert sent.status_code == 201, sent.text
    cid = sent.json()["cid"]
    assert cid == compute_cid(envelope).text()  # anyone holding the envelope knows its CID
    return str(cid)


def _unseen(who: Participant, cid: str) -> None:
    """``who`` gets exactly the answer of a CID nobody stored."""
    answer = who.get(f"/content/{cid}")
    assert answer.status_code == 404, (who.address, answer.status_code)
    assert answer.json()["error"]["kind"] == "ContentNotFound"
    unknown = who.get("/content/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["kind"] == answer.json()["error"]["kind"]


def test_a_care_message_is_fetched_by_its_parties_only(world: World) -> None:
    alice, bob, provider = world.alice, world.bob, world.provider
    cid = _send_report(world, alice, provider, b"HIV viral load: undetectable")
    for outsider in (world.stranger, bob, world.auditor):
        _unseen(outsider, cid)
    for party in (alice, provider):  # the recipient and the sender
        answer = party.get(f"/content/{cid}")
        assert answer.status_code == 200, answer.text
        assert compute_cid(answer.content).text() == cid


def test_a_provider_fetches_a_record_only_after_a_receipted_read(world: World) -> None:
    alice, provider = world.alice, world.provider
    sealed = world.records[alice.address][LAB]  # granted to the provider
    cid = compute_cid(sealed.envelope).text()
    _unseen(provider, cid)  # no read, no receipt: not by CID either
    _unseen(world.stranger, cid)
    _unseen(world.bob, cid)
    own = alice.get(f"/content/{cid}")
    assert own.status_code == 200 and own.content == sealed.envelope

    before = alice.get("/patient/reads").json()
    read = provider.request_read(alice.address, sealed.record_id)
    assert read.status_code == 200, read.text
    assert read.json()["cid"] == cid
    after = alice.get("/patient/reads").json()
    assert len(after) == len(before) + 1  # the read left its receipt
    fetched = provider.get(f"/content/{cid}")  # the large-envelope path of a read
    assert fetched.status_code == 200 and fetched.content == sealed.envelope
    # a record of a scope never granted: not even its CID
    ungranted = world.records[alice.address]["Observation:vital-signs"]
    _unseen(provider, compute_cid(ungranted.envelope).text())
