"""Threshold proxy nodes end to end: three ``kizuna proxy serve`` processes (three databases,
three indexes, three Ethereum keys) on a real anvil, the patient handing each node only its
own bound fragment, the provider reading 2-of-3 in parallel (kizuna.proxynode.client)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import forked_cli
import httpx
import pytest
import uvicorn
from eth_account import Account
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from harness import Party, Record, Stack

from kizuna.chain.localnode import LocalNode, free_port
from kizuna.client.keys import ParticipantKeys
from kizuna.client.local import LocalService
from kizuna.client.provider import ProviderClient
from kizuna.proxy.kfrags import sign_scope_keys
from kizuna.proxy.threshold import NotEnoughNodes, split_for_nodes
from kizuna.proxynode.client import (
    ProxyNodeError,
    announce_record,
    hand_kfrags,
    threshold_read,
)
from kizuna.stack.children import wait_healthy
from kizuna.types import Address, Cid, checksum_address

pytestmark = pytest.mark.anvil


@dataclass
class Node:
    address: Address
    endpoint: str
    db_path: Path
    log_path: Path
    process: forked_cli.ForkedProcess

    def receipts(self, patient: Party) -> list[bytes]:
        """The request ids of ``patient``'s reads this node served (the cluster is the module's:
        other tests' patients have receipts here too)."""
        with sqlite3.connect(self.db_path) as conn:
            return [bytes(r[0]) for r in conn.execute(
                "SELECT request_id FROM receipts WHERE patient = ?",
                (checksum_address(patient.address),))]

    def kfrag_count(self, patient: Party) -> int:
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM kfrags WHERE patient = ?",
                                    (checksum_address(patient.address),)).fetchone()[0])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _start_node(stack: Stack, root: Path, name: str, deployment: Path) -> Node:
    key = Account.create()
    port = free_port()
    db_path, log_path = root / f"{name}.sqlite3", root / f"{name}.log"
    env = {**os.environ, "KIZUNA_RPC_URL": stack.chain.w3.provider.endpoint_uri,
           "KIZUNA_DEPLOYMENT_FILE": str(deployment), "KIZUNA_STORE": "embedded",
           "KIZUNA_STORE_PATH": str(stack.store.root), "KIZUNA_ENVIRONMENT": "development",
           "KIZUNA_NODE_KEY": key.key.hex(), "KIZUNA_HOME": str(root / f"{name}-home"),
           "KIZUNA_FOLLOW_INTERVAL_S": "0.5"}
    with log_path.open("wb") as log, open(os.devnull, "wb") as nothing:  # forked_cli's zygote
        process = forked_cli.start(
            ["proxy", "serve", "--database", f"sqlite:///{db_path}", "--index",
             str(root / f"{name}-index.sqlite"), "--port", str(port)], env=env,
            stdout=nothing.fileno(), stderr=log.fileno())
    return Node(checksum_address(key.address), f"http://127.0.0.1:{port}", db_path, log_path,
                process)


def _wait(nodes: list[Node]) -> None:
    for node in nodes:
        wait_healthy(lambda node=node: node.process.poll() is None,
                     node.endpoint, what=f"proxy node {node.address}", log_path=node.log_path,
                     timeout_s=90, request_timeout_s=1)


@dataclass
class Cluster:
    """The module's three nodes on the module's own deployment and service core. Each test
    has its own patient, provider, scope and record on them (``world``); a node a test killed
    or whose database it altered is replaced by a fresh one (new key, new database) before the
    next test, so every test starts on three healthy, untouched nodes in any order."""

    stack: Stack
    root: Path
    deployment: Path
    nodes: list[Node]
    altered: set[Address] = field(default_factory=set)
    started: int = 0

    def start(self) -> Node:
        self.started += 1
        return _start_node(self.stack, self.root, f"n{self.started}", self.deployment)

    def ready(self) -> list[Node]:
        for i, node in enumerate(self.nodes):
            if node.address in self.altered or node.process.poll() is not None:
                node.stop()
                self.nodes[i] = self.start()
        self.altered.clear()
        _wait(self.nodes)
        return list(self.nodes)


@pytest.fixture(scope="module")
def cluster(anvil: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from chainenv import _anvil_env
    from harness import make_stack

    root = tmp_path_factory.mktemp("proxy-nodes")
    stack = make_stack(_anvil_env(anvil), root)
    made = Cluster(stack, root, stack.chain.deployment.save(root / "deployments"), [])
    try:
        made.nodes = [made.start() for _ in range(3)]
        yield made
    finally:
        for node in made.nodes:
            node.stop()
        stack.db.dispose()


@dataclass
class World:
    stack: Stack
    patient: Party
    provider: Party
    client: ProviderClient
    record: Record
    nodes: list[Node]
    cluster: Cluster

    @property
    def endpoints(self) -> dict[Address, str]:
        return {n.address: n.endpoint for n in self.nodes}

    def read(self, nodes: list[Node] | None = None) -> bytes:
        chosen = self.nodes if nodes is None else nodes
        return threshold_read(self.client, {n.address: n.endpoint for n in chosen},
                              patient=self.patient.address,
                              record_id=self.record.record_id, threshold=2,
                              timeout_s=15).plaintext

    def altering(self, node: Node) -> Node:
        """``node``, whose database the test is about to alter: replaced after the test."""
        self.cluster.altered.add(node.address)
        return node


@pytest.fixture
def world(cluster: Cluster) -> World:
    """The test's own patient, provider and granted record, the grant's three fragments handed
    to the cluster's three nodes (2 of 3) and the record announced to them."""
    stack, nodes = cluster.stack, cluster.ready()
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient, plaintext=b'{"resourceType":"Observation"}')
    scope_id = record.scope_id
    stack.chain.ledger.grant(provider.address, scope_id, stack.env.now() + 3600,
                             signer=patient.signer)
    scope_sk = patient.keys.scope_delegating_key(scope_id)
    domain = stack.ctx.domain
    statements = split_for_nodes(
        patient.signer, domain, patient=checksum_address(patient.address),
        scope_id=scope_id,
        provider=checksum_address(provider.address), epoch=0, delegating_sk=scope_sk,
        receiving_key=provider.keys.public_key, signer=patient.keys.signer(),
        nodes=[n.address for n in nodes], threshold=2)
    keys_signature = sign_scope_keys(patient.private_key, domain,
                                     patient=checksum_address(patient.address),
                                     scope_id=scope_id, delegating_key=scope_sk.public_key,
                                     verifying_key=patient.keys.verifying_key)
    endpoints = {n.address: n.endpoint for n in nodes}
    hand_kfrags(endpoints, statements, delegating_key=scope_sk.public_key,
                verifying_key=patient.keys.verifying_key,
                scope_keys_signature=keys_signature)
    announce_record(endpoints, record_id=record.record_id, cid=Cid(record.cid), epoch=0)
    client = ProviderClient(signer=provider.signer, service=LocalService(stack.ctx),
                            chain=stack.chain, keys=ParticipantKeys(provider.keys))
    return World(stack, patient, provider, client, record, nodes, cluster)


def test_two_of_three_reads_and_one_node_is_not_enough(world: World) -> None:
    assert world.read() == world.record.plaintext
    # each node its own receipt
    assert all(len(n.receipts(world.patient)) == 1 for n in world.nodes)
    a, b, c = world.nodes
    for pair in ([a, b], [a, c], [b, c]):
        assert world.read(pair) == world.record.plaintext
    for alone in world.nodes:
        with pytest.raises(NotEnoughNodes):
            world.read([alone])
    # a node down is a node that did not answer, not a failed read
    c.kill()
    assert world.read() == world.record.plaintext
    b.kill()
    with pytest.raises(NotEnoughNodes, match="2 proxy nodes must serve the read, 1 did"):
        world.read()


def test_a_node_cannot_take_another_nodes_fragment(world: World) -> None:
    """Node a is handed node b's statement: a node reads every statement as naming itself, so
    b's no longer verifies against the patient's signature: refused, nothing stored."""
    stack, patient, provider = world.stack, world.patient, world.provider
    scope_sk = patient.keys.scope_delegating_key(world.record.scope_id)
    statements = split_for_nodes(
        patient.signer, stack.ctx.domain, patient=checksum_address(patient.address),
        scope_id=world.record.scope_id, provider=checksum_address(provider.address), epoch=0,
        delegating_sk=scope_sk, receiving_key=provider.keys.public_key,
        signer=patient.keys.signer(), nodes=[n.address for n in world.nodes], threshold=2)
    signature = sign_scope_keys(patient.private_key, stack.ctx.domain,
                                patient=checksum_address(patient.address),
                                scope_id=world.record.scope_id,
                                delegating_key=scope_sk.public_key,
                                verifying_key=patient.keys.verifying_key)
    a, b, _ = world.nodes
    before = a.kfrag_count(patient)
    with pytest.raises(ProxyNodeError, match=r"refused \(403\): .* not by the patient"):
        hand_kfrags({b.address: a.endpoint}, [statements[1]],
                    delegating_key=scope_sk.public_key,
                    verifying_key=patient.keys.verifying_key, scope_keys_signature=signature)
    assert a.kfrag_count(patient) == before


def test_a_node_that_kept_a_revoked_fragment_cannot_serve(world: World) -> None:
    a, patient = world.altering(world.nodes[0]), world.patient
    mine = ("SELECT * FROM kfrags WHERE patient = ?", (checksum_address(patient.address),))
    with sqlite3.connect(a.db_path) as conn:
        kept = conn.execute(*mine).fetchall()
        columns = [d[0] for d in conn.execute(*mine).description]
    assert kept
    world.stack.chain.ledger.revoke(world.provider.address, world.record.scope_id,
                                    signer=world.patient.signer)
    # the nodes' own followers delete the revoked grant's fragments...
    deadline = time.monotonic() + 20
    while any(n.kfrag_count(patient) for n in world.nodes):
        assert time.monotonic() < deadline, "a node's follower did not delete the fragment"
        time.sleep(0.2)
    # ...but node a's database is altered to keep its fragment
    with sqlite3.connect(a.db_path) as conn:
        conn.executemany(f"INSERT INTO kfrags ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' for _ in columns)})", kept)
    before = a.receipts(patient)
    with pytest.raises(NotEnoughNodes) as refused:
        world.read()
    assert "revoked" in str(refused.value).lower() or "no live grant" in str(refused.value)
    assert a.receipts(patient) == before  # its access check refused at the chain head: no receipt


def test_killing_a_node_mid_read_loses_no_receipt_at_the_others(world: World) -> None:
    a, b, c = world.nodes
    results: list[bytes] = []
    reader = threading.Thread(target=lambda: results.append(world.read()))
    reader.start()
    c.kill()
    reader.join(30)
    assert results == [world.record.plaintext]
    receipts_a, receipts_b = a.receipts(world.patient), b.receipts(world.patient)
    assert len(receipts_a) == len(receipts_b) == 1 and receipts_a == receipts_b


@contextmanager
def _lying_relay(target: str) -> Iterator[str]:
    """An adversary in front of a real node: passes the read on, then alters one byte of the
    capsule fragment the node answered (a well-formed answer with a wrong cfrag)."""
    app = FastAPI()

    @app.post("/node/reads")
    async def read(request: Request) -> JSONResponse:
        async with httpx.AsyncClient(timeout=15) as http:
            answer = await http.post(target + "/node/reads", content=await request.body(),
                                     headers={"content-type": "application/json"})
        data = answer.json()
        cfrag = bytearray(bytes.fromhex(data["cfrags"][0][2:]))
        cfrag[-1] ^= 1
        data["cfrags"] = ["0x" + cfrag.hex()]
        return JSONResponse(data)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_lying_node_is_detected_and_skipped(world: World) -> None:
    a, b, c = world.nodes
    with _lying_relay(c.endpoint) as liar:
        endpoints = {a.address: a.endpoint, b.address: b.endpoint, c.address: liar}
        outcome = threshold_read(world.client, endpoints, patient=world.patient.address,
                                 record_id=world.record.record_id, threshold=2)
        assert outcome.plaintext == world.record.plaintext
        assert set(outcome.served_by) == {a.address, b.address}
        assert "wrong capsule fragment" in outcome.skipped[c.address]
        a.kill()  # the liar and one honest node: the lie never counts
        with pytest.raises(NotEnoughNodes, match="wrong capsule fragment"):
            threshold_read(world.client, endpoints, patient=world.patient.address,
                           record_id=world.record.record_id, threshold=2)
