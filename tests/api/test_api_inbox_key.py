"""The patient's own inbox key (``GET /patient/inbox-key``): a new patient's page asks at every
visit whether their key is published, so "none yet" is an answer (``published: null``), not a
404 that the browser logs as an error; after publishing, the key and its signed statement."""

from __future__ import annotations

import pytest
from participants import People, hx

from kizuna.chain.eip712 import TypedData
from kizuna.receipts.request import proxy_domain
from kizuna.wire.care import INBOX_KEY_FIELDS

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): the test signs in its own
wallets and asks only for its own patient's key."""


def test_own_inbox_key_none_yet_then_published(people: People) -> None:
    patient, chain = people.patient, people.patient.chain
    none_yet = patient.get("/patient/inbox-key")
    assert none_yet.status_code == 200, none_yet.text
    assert none_yet.json() == {"published": None}
    # others still get 404 for a patient with no key: they cannot write to them
    assert people.provider.get(f"/patients/{patient.address}/inbox-key").status_code == 404

    public = patient.keys.public_key.to_bytes()
    statement = TypedData(domain=proxy_domain(chain_id=chain.chain_id,
                                              access_log=chain.deployment.access_log),
                          primary_type="InboxKey", types={"InboxKey": INBOX_KEY_FIELDS},
                          message={"patient": patient.address, "publicKey": hx(public)})
    published = patient.post("/patient/inbox-key", {
        "public_key": hx(public), "signature": hx(patient.signer.sign_typed_data(statement))})
    assert published.status_code == 200, published.text
    own = patient.get("/patient/inbox-key").json()["published"]
    assert own == published.json()
    assert own["public_key"] == hx(public)
    assert patient.http.get("/patient/inbox-key").status_code == 401  # no session
