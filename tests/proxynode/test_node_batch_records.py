"""Proxy nodes serve records registered alone and in a batch, through the Python clients a
user runs: PatientClient's grant with a proxy set (its own on-chain grant, one bound fragment
to each node, the scope's records announced with their batch proofs) and ProviderClient's
read through 2 of the 3 nodes. A node checks a batch record as the service's access check
does (``batchRecordOf`` and the Merkle proof) and refuses one whose proof does not lead to the
root."""

from __future__ import annotations

import time

import httpx
import pytest
from harness import REGISTERED, Stack
from proxynode_harness import NodeProcess

from kizuna.client.keys import ParticipantKeys
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.client.threshold import ProxySet, ThresholdRefused
from kizuna.db import schema as t

pytestmark = pytest.mark.anvil


@pytest.mark.parametrize("node_stack", REGISTERED, indirect=True)
def test_two_of_three_nodes_serve_the_clients_reads(node_stack: Stack,
                                                    three_nodes: list[NodeProcess]) -> None:
    stack, nodes = node_stack, three_nodes
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient, plaintext=b'{"resourceType":"Observation","id":"1"}')
    proxies = ProxySet(nodes={n.address: n.endpoint for n in nodes}, threshold=2)
    service = LocalService(stack.ctx)
    patient_client = PatientClient(signer=patient.signer, service=service, chain=stack.chain,
                                   keys=ParticipantKeys(patient.keys), proxies=proxies)
    done = patient_client.grant(provider.address, ["Observation"],
                                expires_at=stack.env.now() + 3600)
    assert done.kfrags_stored == 3
    mine = patient.address
    assert [n.count("kfrags", patient=mine) for n in nodes] == [1, 1, 1]
    with stack.db.read() as conn:  # the service holds no fragment of this grant
        assert conn.execute(t.kfrags.select().where(
            t.kfrags.c.provider == provider.address)).first() is None
    batched = "records WHERE batch_root IS NOT NULL"
    assert [n.count(batched, patient=mine) for n in nodes] == [int(stack.batched)] * 3

    reader = ProviderClient(signer=provider.signer, service=service, chain=stack.chain,
                            keys=ParticipantKeys(provider.keys), proxies=proxies)
    assert reader.read(patient=patient.address, record_id=record.record_id) == record.plaintext
    assert [n.count("receipts", patient=mine) for n in nodes] == [1, 1, 1]

    # a record added after the grant: each node is told of it at the first read (and checks it)
    later = stack.add_record(patient, plaintext=b'{"resourceType":"Observation","id":"2"}')
    nodes[0].kill()
    assert reader.read(patient=patient.address, record_id=later.record_id) == later.plaintext
    assert [n.count(batched, patient=mine) for n in nodes[1:]] == [2 * int(stack.batched)] * 2
    nodes[1].kill()
    with pytest.raises(ThresholdRefused, match="2 proxy nodes must serve the read, 1 did"):
        reader.read(patient=patient.address, record_id=later.record_id)


@pytest.mark.parametrize("node_stack", ["in a batch"], indirect=True)
def test_a_node_refuses_a_batch_record_whose_proof_fails(node_stack: Stack,
                                                         three_nodes: list[NodeProcess]) -> None:
    stack = node_stack
    patient = stack.party()
    record = stack.add_record(patient)
    row = stack.ctx.records.get(record.record_id)
    assert row.batch_root is not None and row.proof is not None
    body = {"record_id": "0x" + bytes(record.record_id).hex(), "cid": record.cid, "epoch": 0,
            "batch_root": "0x" + row.batch_root.hex(), "scope_id": "0x" + row.scope_id.hex(),
            "commitment": "0x" + bytes(row.commitment).hex(), "leaf_index": row.leaf_index,
            "proof": ["0x" + row.proof[i:i + 32].hex() for i in range(0, len(row.proof), 32)]}
    node = three_nodes[0]
    bad = {**body, "proof": ["0x" + bytes(32).hex()] * len(body["proof"])}
    refused = httpx.post(node.endpoint + "/node/records", json=bad, timeout=30)
    assert refused.status_code == 404
    assert "proof does not lead to its root" in refused.text
    assert node.count("records", patient=patient.address) == 0
    taken = httpx.post(node.endpoint + "/node/records", json=body, timeout=30)
    assert taken.status_code == 200, taken.text
    assert node.count("records WHERE batch_root IS NOT NULL", patient=patient.address) == 1


def test_a_revoke_reaches_every_node_and_the_read_is_refused(
        node_stack: Stack, three_nodes: list[NodeProcess]) -> None:
    """PatientClient.revoke_all (the patient's own transaction) with a proxy set: each node's
    own follower deletes its fragment, and every node's access check refuses at the head."""
    stack, nodes = node_stack, three_nodes
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient, plaintext=b'{"resourceType":"Observation"}')
    proxies = ProxySet(nodes={n.address: n.endpoint for n in nodes}, threshold=2)
    service = LocalService(stack.ctx)
    patient_client = PatientClient(signer=patient.signer, service=service, chain=stack.chain,
                                   keys=ParticipantKeys(patient.keys), proxies=proxies)
    patient_client.grant(provider.address, ["Observation"], expires_at=stack.env.now() + 3600)
    reader = ProviderClient(signer=provider.signer, service=service, chain=stack.chain,
                            keys=ParticipantKeys(provider.keys), proxies=proxies)
    assert reader.read(patient=patient.address, record_id=record.record_id) == record.plaintext
    patient_client.revoke_all(provider.address)
    deadline = time.monotonic() + 20
    while any(n.count("kfrags", patient=patient.address) for n in nodes):
        assert time.monotonic() < deadline, "a node's follower kept the revoked fragment"
        time.sleep(0.2)
    with pytest.raises(ThresholdRefused) as refused:
        reader.read(patient=patient.address, record_id=record.record_id)
    assert str(refused.value).count("refused (403)") == 3, refused.value
    # no node served after it
    assert [n.count("receipts", patient=patient.address) for n in nodes] == [1, 1, 1]
