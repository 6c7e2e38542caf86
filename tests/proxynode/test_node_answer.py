"""The node's read answer (``node_read_answer``): the service's ``ReadOut`` JSON with the
patient's ``node_statement`` added, written without parsing and re-dumping the answer."""

from __future__ import annotations

import json

from kizuna.api.convert import read_answer
from kizuna.api.schemas import ReadOut
from kizuna.proxynode.server import node_read_answer
from kizuna.types import Cid, RecordId, ScopeId
from kizuna.wire.reads import ReadGrant

GRANT = ReadGrant(
    record_id=RecordId(b"\x01" * 32), patient="0x" + "ab" * 20,  # type: ignore[arg-type]
    scope_id=ScopeId(b"\x02" * 32), cid=Cid("bafy-test"), content_type='text/"plain"\n',
    size=3, capsule=b"\x03" * 98, cfrags=(b"\x04" * 10, b"\x05" * 10),
    delegating_key=b"\x06" * 33, verifying_key=b"\x07" * 33, receipt_seq=7,
    request_id=b"\x08" * 32, head_block=12, served_at=1_700_000_000, leaf=b"\x09" * 32,
    envelope=b"abc", proof=(b"\x0a" * 32,))


def test_the_answer_is_the_read_answer_plus_the_statement() -> None:
    statement = {"epoch": 1, "nodes": ["0x" + "cd" * 20], "threshold": 2,
                 "kfrag_digest": "0x" + "ee" * 32, "signature": "0x" + "ff" * 65}
    answer = json.loads(node_read_answer(GRANT, statement))
    assert list(answer)[-1] == "node_statement"
    assert answer.pop("node_statement") == statement
    assert answer == json.loads(read_answer(GRANT))
    ReadOut.model_validate(answer)


def test_a_node_without_a_statement_says_null() -> None:
    answer = json.loads(node_read_answer(GRANT, None))
    assert answer["node_statement"] is None
    assert answer["content_type"] == 'text/"plain"\n'
