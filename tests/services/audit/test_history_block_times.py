"""The audit log's block times are kept across requests, by block hash (the index's
``block_times``): a second ``full_log`` over the same history asks the node for no block, the
answers match the node's blocks and a fresh history's, and a block replaced by a reorg is
answered with its new time, never the kept one.

Counted at the transport: a JSON-RPC relay in front of a real anvil records every request
the service's ``Chain`` and ``EventIndex`` make (no mock of the chain)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from web3.types import RPCEndpoint

from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.services import audit

pytestmark = pytest.mark.anvil


class CountingRelay:
    """Forwards JSON-RPC to ``upstream`` and keeps (method, params) of every request."""

    def __init__(self, upstream: str) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # LeanRpc keeps its connection alive

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payload = json.loads(body)
                for call in payload if isinstance(payload, list) else [payload]:
                    relay.calls.append((call["method"], list(call.get("params") or [])))
                forward = urllib.request.Request(
                    upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(forward, timeout=10) as answer:
                    out = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def block_lookups(self) -> list[str]:
        """The blocks asked by number or hash since the start (not ``latest``)."""
        return [str(params[0]) for method, params in self.calls
                if method in ("eth_getBlockByNumber", "eth_getBlockByHash")
                and params and params[0] not in ("latest", "pending", "safe", "finalized")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Setup:
    def __init__(self, node: LocalNode, relay: CountingRelay, tmp: Path) -> None:
        key = dev_private_keys(10)[7]
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(key), directory=None)
        self.node = node
        self.relay = relay
        self.admin = LocalKeySigner(key)
        self.chain: Chain = connect(relay.url, deployment)
        self.index = EventIndex.for_chain(self.chain, tmp / "index.sqlite")
        self.truth = web3_for(node.rpc_url)  # the node itself, not through the relay

    def add_provider(self) -> int:
        provider = Account.create().address
        done = self.chain.registry.add_provider(
            provider, pre.UmbralSecretKey.random().public_key.to_bytes(),
            bytes(keccak(text="credential")), signer=self.admin)
        return int(done.block_number)

    def node_time(self, number: int) -> int:
        return int(self.truth.eth.get_block(number)["timestamp"])


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    # Its own node: the reorg test reverts the chain, which would pull blocks from under
    # other tests on the session's node.
    with LocalNode(log_path=tmp_path / "anvil.log") as node:
        relay = CountingRelay(node.rpc_url)
        built = Setup(node, relay, tmp_path)
        try:
            yield built
        finally:
            built.index.close()
            relay.close()


def test_second_log_asks_no_block_and_answers_the_same(setup: Setup) -> None:
    blocks = [setup.add_provider() for _ in range(5)]
    head = setup.index.sync()  # the catch-up's own block requests are not counted below
    before = len(setup.relay.block_lookups())
    first = audit.full_log(setup.chain, index=setup.index)
    asked_first = setup.relay.block_lookups()[before:]
    # every block of the log but the head (the sync's own answer) was asked, each once
    expected = {hex(e.block_number) for e in first} - {hex(head.number)}
    assert sorted(asked_first) == sorted(expected) and len(expected) >= 4
    assert [e.time for e in first] == [setup.node_time(e.block_number) for e in first]
    assert {e.block_number for e in first} >= set(blocks)

    before = len(setup.relay.block_lookups())
    second = audit.full_log(setup.chain, index=setup.index)
    assert setup.relay.block_lookups()[before:] == []
    assert second == first
    # a history read afresh from the node's logs (its own cache) answers the same
    assert audit.ChainHistory.from_chain(setup.chain).entries() == first

    # a new event: its block is the head the sync answers with, the others are kept
    later = setup.add_provider()
    setup.index.sync()
    before = len(setup.relay.block_lookups())
    third = audit.full_log(setup.chain, index=setup.index)
    assert setup.relay.block_lookups()[before:] == []
    assert third[:-1] == first and third[-1].block_number == later
    assert third[-1].time == setup.node_time(later)


def test_a_reorged_block_gets_its_new_time(setup: Setup) -> None:
    setup.add_provider()
    snapshot = setup.truth.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    replaced = setup.add_provider()
    setup.add_provider()  # the head is past the replaced block: its time comes from the cache
    old = audit.full_log(setup.chain, index=setup.index)
    old_time = next(e.time for e in old if e.block_number == replaced)

    setup.truth.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
    setup.chain.sender.nonces.forget(setup.admin.address)  # its nonce went back with the chain
    setup.truth.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"),
                                      [old_time + 1_000])
    assert setup.add_provider() == replaced
    setup.add_provider()
    new = audit.full_log(setup.chain, index=setup.index)
    assert setup.index.reorgs == 1
    assert setup.node_time(replaced) == old_time + 1_000
    assert [e.time for e in new if e.block_number == replaced] == [old_time + 1_000]
    assert [e.time for e in new] == [setup.node_time(e.block_number) for e in new]
