"""``kizuna up --proxies 3 --threshold 2`` runs three ``kizuna proxy serve`` processes (three
databases, three keys under the home) each answering /health, listed in a ProxyRegistry the
stack deployed on its chain, and ``kizuna down`` (SIGTERM) stops them with the rest: checked on
this test's stack rather than on a ``kizuna up`` of their own (the nodes start the same way with
or without ``--demo``; a whole stack of proxy nodes costs ~8 CPU-s).

Each threshold proxy node anchors its own receipts with its own key (``kizuna up --proxies``
gives each node ANCHOR_ROLE): after reads through the nodes and an anchoring interval, every
node's receipts are under roots that node anchored, each node in its own sequence, and no two
nodes share a root (each receipt names its node); when a node's operator alters a receipt row in
the node's database, or puts another node's receipt of the same read in its place, ``kizuna
audit threshold`` names that node (its receipts no longer rebuild its anchored root) and no
other."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from cli_harness import UpProcess, clean_env, run

from kizuna.chain.agents.proxies import ProxyRegistryAgent
from kizuna.chain.connection import connect
from kizuna.chain.localnode import free_port, free_port_block, port_in_use
from kizuna.stack.demo import DEMO_PASSPHRASE
from kizuna.types import checksum_address

pytestmark = pytest.mark.anvil

ANCHOR_S = 1.0


def _unanchored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(
            "SELECT COUNT(*) FROM receipts r LEFT JOIN receipt_batches b ON r.batch_root = "
            "b.root WHERE b.tx_hash IS NULL").fetchone()[0])


def test_each_node_anchors_its_receipts_and_a_tampered_node_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port = free_port_block([0, 801, 802, 803])
    rpc_port = free_port()
    env = clean_env(home, KIZUNA_PASSPHRASE=DEMO_PASSPHRASE)
    up = UpProcess(home, "--demo", "--port", str(api_port), "--rpc-port", str(rpc_port),
                   "--proxies", "3", "--threshold", "2",
                   env=clean_env(home, KIZUNA_ANCHOR_INTERVAL_S=str(ANCHOR_S)))
    try:
        info = up.ready(timeout=400)
        proxies = info["proxies"]
        assert proxies["threshold"] == 2
        assert proxies["urls"] == [f"http://127.0.0.1:{api_port + 801 + i}" for i in range(3)]
        addresses = [httpx.get(url + "/health", timeout=10).json()["node"]
                     for url in proxies["urls"]]
        assert len(set(addresses)) == 3  # three keys
        nodes = [home / "proxies" / str(i) / "node.sqlite3" for i in range(3)]
        assert all(db.is_file() for db in nodes)
        chain = connect(info["rpc_url"], Path(info["deployment_file"]))
        registered = ProxyRegistryAgent(chain, checksum_address(proxies["registry"])).nodes()
        assert [(n.address, n.endpoint) for n in registered] == list(zip(
            addresses, proxies["urls"], strict=True))

        granted = run(home, "patient", "grant", "dr-sato", "Observation:vital-signs",
                      "--days", "1", "--key", "kenji", "--json", env=env)
        assert granted.code == 0, granted.err
        listed = run(home, "provider", "records", "--patient", "kenji", "--key", "dr-sato",
                     "--json", env=env)
        assert listed.code == 0, listed.err
        record_id = listed.json()[0]["record_id"]
        for _ in range(2):
            done = run(home, "provider", "read", "kenji", record_id, "--key", "dr-sato",
                       env=env)
            assert done.code == 0, done.err

        # within a few anchoring intervals every node's receipts are in anchored batches
        deadline = time.monotonic() + 60
        while any(_unanchored(db) for db in nodes):
            assert time.monotonic() < deadline, [_unanchored(db) for db in nodes]
            time.sleep(0.5)
        roots: set[bytes] = set()
        for db in nodes:
            with sqlite3.connect(db) as conn:
                mine = {bytes(r) for (r,) in conn.execute("SELECT root FROM receipt_batches")}
            assert mine and all(chain.access_log.batch_of(r) is not None for r in mine)
            roots |= mine
        # anchored by the nodes themselves, each in its own sequence; a receipt names its node,
        # so no two nodes' batches share a root even when they served a read in the same
        # second and block
        assert sum(chain.access_log.batch_count(a)[0] for a in addresses) == len(roots)
        leaves: dict[bytes, set[bytes]] = {}
        node_roots = []
        for db in nodes:
            with sqlite3.connect(db) as conn:
                node_roots.append({bytes(r) for (r,) in conn.execute(
                    "SELECT root FROM receipt_batches")})
                for request_id, leaf in conn.execute("SELECT request_id, leaf FROM receipts"):
                    leaves.setdefault(bytes(request_id), set()).add(bytes(leaf))
        assert sum(len(r) for r in node_roots) == len(roots)  # disjoint
        assert all(len(found) == 3 for found in leaves.values()), leaves

        audited = run(home, "audit", "threshold", "--json", env=env)
        assert audited.code == 0, audited.out + audited.err
        assert audited.json()["counts"]["anchored_batches"] >= 3

        # node 1's operator alters a receipt row: the audit names node 1 alone
        with sqlite3.connect(nodes[1]) as conn:
            conn.execute("UPDATE receipts SET head_block = head_block + 1 WHERE seq = "
                         "(SELECT MIN(seq) FROM receipts)")
        audited = run(home, "audit", "threshold", "--json", env=env)
        assert audited.code == 1, audited.out + audited.err
        found = [f for f in audited.json()["failures"] if f["check"] == "threshold.receipts"]
        assert found, audited.json()
        assert all(f["reason"].startswith(f"node {addresses[1]}: ") for f in found), found
        assert any("batch.root" in f["reason"] for f in found), found

        # node 2's operator puts node 0's receipt of a read in place of its own (its leaf names
        # node 0): the audit names node 2 too
        with sqlite3.connect(nodes[0]) as conn:
            request_id, leaf = conn.execute(
                "SELECT request_id, leaf FROM receipts ORDER BY seq LIMIT 1").fetchone()
        with sqlite3.connect(nodes[2]) as conn:
            conn.execute("UPDATE receipts SET leaf = ? WHERE request_id = ?", (leaf, request_id))
        audited = run(home, "audit", "threshold", "--json", env=env)
        assert audited.code == 1, audited.out + audited.err
        found = [f for f in audited.json()["failures"] if f["check"] == "threshold.receipts"
                 and f["reason"].startswith(f"node {addresses[2]}: ")]
        assert any("receipt.leaf" in f["reason"] for f in found), audited.json()
    finally:
        up.stop()
    # every node stopped with the stack (all three were up until then)
    assert not any(port_in_use(api_port + 801 + i) for i in range(3))
