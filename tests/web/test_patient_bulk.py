"""The page's bulk read (``PatientClient.readMany``, web/src/patient/records.ts) against the real
API and anvil: records added by the Python patient come back byte for byte, in the order
asked, with ONE chain query for every commitment and the envelopes 64 to a request — no
listing per record (the timeline read them O(n²) before) — and a single ``readOwn`` costs
the record by id and its content, whatever the number of records. The Node driver is
web/test/patient_cli.ts (the ``readMany`` and ``requests`` ops); the stack and helpers are
test_patient_parity's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_patient_parity import (
    ApiServer,
    ChainEnv,
    env,  # noqa: F401 - fixtures
    node,  # noqa: F401
    ok,
    patient_key,  # noqa: F401
    python_patient,
    server,  # noqa: F401
    web_patient,
)

from kizuna.crypto.commitment import commitment_of
from kizuna.wire.onchain import SentTransaction

pytestmark = [pytest.mark.node, pytest.mark.anvil]
FHIR = "application/fhir+json"


def test_read_many_matches_python_with_one_chain_query(env: ChainEnv,  # noqa: F811
                                                       server: ApiServer,  # noqa: F811
                                                       patient_key: str) -> None:  # noqa: F811
    client, service = python_patient(env, server, patient_key)
    try:
        contents = [json.dumps({"resourceType": "Observation", "id": f"o{i}",
                                "status": "final", "code": {"text": "Pulse"},
                                "valueQuantity": {"value": 60 + i, "unit": "/min"}},
                               separators=(",", ":")).encode() for i in range(69)]
        contents.append(b"\x00\x01binary\xff" * 300)
        added = []
        for i, content in enumerate(contents):
            # registered by the patient's own transactions: 70 relayed ones would pass the
            # relayer's daily gas budget for one patient
            rid, sid, envelope = client.seal(
                content, label="Observation:vital-signs" if i < 69 else "Condition",
                content_type=FHIR if i < 69 else "application/octet-stream")
            sent = env.chain.ledger.register_record(rid, commitment_of(envelope), sid,
                                                    signer=client.signer)
            added.append(client.upload(record_id=rid, scope_id=sid, envelope=envelope,
                                       registration=SentTransaction(sent.tx_hash)))
    finally:
        service.close()
    ids = ["0x" + bytes(r.record_id).hex() for r in added]
    asked = list(reversed(ids))  # any order: the answer follows it
    answer = web_patient(server, env, patient_key, [
        {"op": "requests"},
        {"op": "readMany", "record_ids": asked, "parallel": 4},
        {"op": "requests"},
        {"op": "readOwn", "record_id": ids[3]},
        {"op": "requests"},
        {"op": "readMany", "record_ids": [ids[0]], "parallel": 4},
    ])
    _, many, during, single, single_requests, one = answer["results"]
    assert [bytes.fromhex(c) for c in ok(many)["contents"]] == list(reversed(contents))
    assert many["each"] == len(contents)
    # one listing (the op's own, as the timeline's), one getLogs, the 70 envelopes in two
    # bulk requests (64 + 6), no request per record
    assert sorted(during["api"]) == sorted(["GET /patient/records",
                                            *["POST /patient/records/contents"] * 2])
    assert during["rpc"].count("eth_getLogs") == 1
    # a single read: the record by id and its content, no listing; one getLogs (the hint)
    assert bytes.fromhex(ok(single)["content"]) == contents[3]
    assert single_requests["api"] == [f"GET /patient/records/{ids[3]}",
                                      f"GET /patient/records/{ids[3]}/content"]
    assert single_requests["rpc"].count("eth_getLogs") == 1
    assert [bytes.fromhex(c) for c in ok(one)["contents"]] == [contents[0]]
