"""The README's recipe for proxy nodes on separate machines, on one machine: three
``kizuna proxy serve`` processes each with its own home, key, database and index, configured
only by the chain RPC, the deployment file and the content store (as a remote machine would
be); a registrar lists them in a ProxyRegistry; the participants' commands find them through
``KIZUNA_PROXY_REGISTRY`` / ``KIZUNA_PROXY_THRESHOLD`` and grant, read and audit through
them. The participants' side is the role tests' running ``kizuna up --demo`` (a fresh patient
with one record, so no other test's grants or reads are in the way); the nodes, their registry
and the env naming it are this test's own."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import clean_env
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from roles_stack import Stack

from kizuna.chain.agents.proxies import ProxyRegistryAgent, deploy_proxy_registry
from kizuna.chain.connection import connect
from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.stack.children import stop_all, wait_healthy
from kizuna.stack.demo import REGISTRAR_ACCOUNT
from kizuna.types import checksum_address

pytestmark = pytest.mark.anvil

HEART_RATE = {
    "resourceType": "Observation", "id": "hr-node", "status": "final",
    "category": [{"coding": [{"system":
                              "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "valueQuantity": {"value": 64, "unit": "/min"},
}


def test_nodes_configured_like_remote_machines_serve_the_cli(stack: Stack, new_patient: str,
                                                            tmp_path: Path) -> None:
    info = stack.up.info
    processes: list[subprocess.Popen[bytes]] = []
    try:
        store_path = info["store"].removeprefix("embedded, ")
        nodes: dict[str, tuple[str, Path]] = {}
        for i in range(3):  # "on each node machine": its own key, database, index and home
            machine = tmp_path / f"machine{i}"
            machine.mkdir()
            key = Account.create()
            (machine / "node.key").write_text(key.key.hex())
            port = free_port()
            env = {**clean_env(machine / "home"), "KIZUNA_RPC_URL": info["rpc_url"],
                   "KIZUNA_DEPLOYMENT_FILE": info["deployment_file"],
                   "KIZUNA_STORE": "embedded", "KIZUNA_STORE_PATH": store_path,
                   "KIZUNA_ANCHOR_INTERVAL_S": "3600"}
            # production settings (the default environment) and no session secret: a node
            # signs no one in, so it needs none (docs/proxies.md). No anchoring pass within
            # the test: these nodes hold no anchorer role (docs/proxies.md, "Anchoring"), so a
            # pass (every 60 s by default: a slow run reaches one) would batch the read's
            # receipts under a root it cannot anchor, which `audit threshold` rightly reports;
            # nodes anchoring their receipts is test_cli_threshold_anchoring's.
            log = machine / "node.log"
            with log.open("wb") as out:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "kizuna.cli", "proxy", "serve", "--key-file",
                     str(machine / "node.key"), "--database",
                     f"sqlite:///{machine / 'node.sqlite3'}", "--index",
                     str(machine / "index.sqlite"), "--host", "127.0.0.1", "--port",
                     str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL))
            url = f"http://127.0.0.1:{port}"
            wait_healthy(lambda p=processes[-1]: p.poll() is None, url,  # type: ignore[misc]
                         what=f"node {i}", log_path=log, timeout_s=90, request_timeout_s=5)
            nodes[key.address] = (url, machine / "node.sqlite3")

        # the registrar lists each node: address, public URL, verifying key
        chain = connect(info["rpc_url"], Path(info["deployment_file"]))
        registrar = dev_private_keys(REGISTRAR_ACCOUNT + 1)[REGISTRAR_ACCOUNT]
        registry = deploy_proxy_registry(chain.w3, Account.from_key(registrar))
        agent = ProxyRegistryAgent(chain, registry)
        for machine_dir, (address, (url, _db)) in zip(
                sorted(tmp_path.glob("machine*")), nodes.items(), strict=True):
            raw = (machine_dir / "node.key").read_text().strip().removeprefix("0x")
            agent.add_node(checksum_address(address), url,
                           PrivateKey(bytes.fromhex(raw)).public_key.to_compressed_bytes(),
                           signer=LocalKeySigner(registrar))

        # on the participants' machines; the record added in process, as `patient add`
        # adds it (that command: test_cli_patient)
        stack.add_resource(new_patient, HEART_RATE)
        env = stack.env(KIZUNA_PROXY_REGISTRY=registry, KIZUNA_PROXY_THRESHOLD="2")
        granted = stack.kizuna("patient", "grant", "dr-sato", "Observation:vital-signs",
                               "--days", "1", "--key", new_patient, "--json", env=env)
        assert granted.code == 0, granted.err
        assert granted.json()["provider"] and granted.json()["proxy_nodes"] == "2-of-3"
        listed = stack.kizuna("provider", "records", "--patient", new_patient,
                              "--key", "dr-sato", "--json", env=env)
        assert listed.code == 0, listed.err
        record_id = listed.json()[0]["record_id"]
        read = stack.kizuna("provider", "read", new_patient, record_id, "--key", "dr-sato",
                            env=env)
        assert read.code == 0, read.err
        own = stack.kizuna("patient", "get", record_id, "--key", new_patient, env=env)
        assert json.loads(read.out) == json.loads(own.out)
        assert json.loads(read.out)["id"] == "hr-node"
        assert all(_count(db, "SELECT COUNT(*) FROM receipts") == 1
                   for _url, db in nodes.values())  # the read went through the nodes

        node_args = [a for address, (_url, db) in nodes.items()
                     for a in ("--node", f"{address}=sqlite:///{db}")]
        audited = stack.kizuna("audit", "threshold", *node_args, "--threshold", "2", "--json",
                               env=env)
        assert audited.code == 0, audited.out + audited.err
        assert audited.json()["checked"] == 1 and audited.json()["passed"] == 1
    finally:
        stop_all(processes, 20)
        assert all(p.poll() is not None for p in processes)
        assert not os.environ.get("KIZUNA_PROXY_REGISTRY")  # the test's env stayed its own


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])
