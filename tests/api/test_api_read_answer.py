"""The read route's answer is written as JSON directly (``read_answer``): it must be exactly the
documented ``ReadOut`` — every field, no other, the same values ``ReadOut`` would dump."""

from __future__ import annotations

import json
import os

import pytest

from kizuna.api.convert import read_answer
from kizuna.api.schemas import ReadOut
from kizuna.types import Address, Cid, RecordId, ScopeId
from kizuna.wire.reads import ReadGrant


def _grant(envelope: bytes | None, cfrags: int) -> ReadGrant:
    return ReadGrant(
        record_id=RecordId(os.urandom(32)),
        patient=Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        scope_id=ScopeId(os.urandom(32)), cid=Cid("bafkreigh2akiscaildc" + "a" * 39),
        content_type='application/fhir+json; profile="ü"', size=10_240,
        capsule=os.urandom(98), cfrags=tuple(os.urandom(359) for _ in range(cfrags)),
        delegating_key=os.urandom(33), verifying_key=os.urandom(33), receipt_seq=2**40,
        request_id=os.urandom(32), head_block=123_456, served_at=1_790_000_000,
        leaf=os.urandom(32), envelope=envelope)


@pytest.mark.parametrize(("envelope", "cfrags"), [(os.urandom(10_240), 1), (None, 3), (b"", 0)])
def test_the_answer_is_exactly_the_documented_model(envelope: bytes | None, cfrags: int) -> None:
    raw = read_answer(_grant(envelope, cfrags))
    answer = json.loads(raw)
    model = ReadOut.model_validate_json(raw)  # extra="forbid": no undocumented field passes
    assert set(answer) == set(ReadOut.model_fields)
    assert answer == json.loads(model.model_dump_json())
    assert (answer["envelope_base64"] is None) == (envelope is None)
    assert len(answer["cfrags"]) == cfrags
