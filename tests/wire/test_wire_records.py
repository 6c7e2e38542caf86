"""A record's one JSON form (``kizuna.wire.records``): what the API's ``RecordOut`` carries and
what the Python client reads back, a batch record's root, leaf and proof included."""

from __future__ import annotations

import pytest

from kizuna.api.convert import record_out
from kizuna.api.schemas import RecordOut
from kizuna.batch import BatchLeaf, BatchManifest, pack_proof, proof_leads_to
from kizuna.errors import InputError
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId
from kizuna.wire.records import RecordInfo, record_json, record_of_json

PATIENT = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")  # type: ignore[arg-type]


def _record(n: int, **batch: object) -> RecordInfo:
    return RecordInfo(record_id=RecordId(bytes([n]) * 32), patient=PATIENT,
                      scope_id=ScopeId(b"\x05" * 32), cid=Cid("bafkreiexample"),
                      commitment=Commitment(bytes([n + 100]) * 32), size=10 + n,
                      content_type="application/fhir+json", created_at=1_700_000_000, epoch=2,
                      **batch)  # type: ignore[arg-type]


def test_a_batch_record_keeps_its_root_leaf_and_proof() -> None:
    leaves = [BatchLeaf(RecordId(bytes([n]) * 32), ScopeId(b"\x05" * 32),
                        Commitment(bytes([n + 100]) * 32)) for n in range(1, 6)]
    manifest = BatchManifest.of(leaves)
    proof = manifest.proof(2)  # the leaf of record 3
    info = _record(3, batch_root=manifest.root, leaf_index=2, proof=pack_proof(proof))

    body = record_json(info)
    assert body["batch_root"] == "0x" + manifest.root.hex()
    assert body["leaf_index"] == 2
    assert body["proof"] == ["0x" + w.hex() for w in proof]  # words, as a read's answer has
    back = record_of_json(RecordOut.model_validate(body).model_dump())
    assert back == info
    assert back.proof is not None and back.batch_root is not None
    assert proof_leads_to(back.batch_root, leaves[2], [back.proof[i:i + 32] for i in
                                                       range(0, len(back.proof), 32)])


def test_a_record_alone_and_the_routes_answer() -> None:
    info = _record(1)
    body = record_json(info)
    assert (body["batch_root"], body["leaf_index"], body["proof"]) == (None, None, None)
    assert record_of_json(body) == info
    # the routes answer exactly this form (with their own block_number hint)
    assert record_out(info).model_dump(exclude={"block_number"}) == body
    assert set(RecordOut.model_fields) - set(body) == {"block_number"}
    # a batch of one record: an empty proof, not an absent one
    one = _record(2, batch_root=b"\x09" * 32, leaf_index=0, proof=b"")
    assert record_json(one)["proof"] == [] and record_of_json(record_json(one)) == one


@pytest.mark.parametrize(("field", "value"), [("record_id", "0xzz"), ("proof", ["0x12"]),
                                              ("batch_root", 7)])
def test_a_malformed_answer_names_its_field(field: str, value: object) -> None:
    body = record_json(_record(1, batch_root=b"\x09" * 32, leaf_index=0, proof=b"\x01" * 32))
    body[field] = value
    with pytest.raises(InputError) as refused:
        record_of_json(body)
    assert refused.value.field.startswith(field)
