"""The README's recipe for proxy nodes on separate machines, on one machine: three
``kizuna proxy serve`` processes each with its own home, key, database and index, configured
only by the chain RPC, the deployment file and the content store (as a remote machine would
be); a registrar lists them in a ProxyRegistry; the participants' commands find them through
``KIZUNA_PROXY_REGISTRY`` / ``KIZUNA_PROXY_THRESHOLD`` and grant, read and audit through
them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import UpProcess, clean_env, run
from eth_account import Account
from eth_keys.datatypes import PrivateKey

from kizuna.chain.agents.proxies import ProxyRegistryAgent, deploy_proxy_registry
from kizuna.chain.connection import connect
from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.stack.children import stop_all, wait_healthy
from kizuna.stack.demo import DEMO_PASSPHRASE, REGISTRAR_ACCOUNT
from kizuna.types import checksum_address

pytestmark = pytest.mark.anvil


def test_nodes_configured_like_remote_machines_serve_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = UpProcess(home, "--demo", "--port", str(free_port()), "--rpc-port", str(free_port()))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        info = up.ready(timeout=400)
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
                   "KIZUNA_STORE": "embedded", "KIZUNA_STORE_PATH": store_path}
            # production settings (the default environment) and no session secret: a node
            # signs no one in, so it needs none (docs/proxies.md)
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

        # on the participants' machines
        env = clean_env(home, KIZUNA_PASSPHRASE=DEMO_PASSPHRASE,
                        KIZUNA_PROXY_REGISTRY=registry, KIZUNA_PROXY_THRESHOLD="2")
        granted = run(home, "patient", "grant", "dr-sato", "Observation:vital-signs",
                      "--days", "1", "--key", "kenji", "--json", env=env)
        assert granted.code == 0, granted.err
        assert granted.json()["provider"]
        listed = run(home, "provider", "records", "--patient", "kenji", "--key", "dr-sato",
                     "--json", env=env)
        record_id = listed.json()[0]["record_id"]
        read = run(home, "provider", "read", "kenji", record_id, "--key", "dr-sato", env=env)
        assert read.code == 0, read.err
        own = run(home, "patient", "get", record_id, "--key", "kenji", env=env)
        assert json.loads(read.out) == json.loads(own.out)

        node_args = [a for address, (_url, db) in nodes.items()
                     for a in ("--node", f"{address}=sqlite:///{db}")]
        audited = run(home, "audit", "threshold", *node_args, "--threshold", "2", "--json",
                      env=env)
        assert audited.code == 0, audited.out + audited.err
        assert audited.json()["checked"] == 1 and audited.json()["passed"] == 1
    finally:
        stop_all(processes, 20)
        up.stop()
        assert all(p.poll() is not None for p in processes)
        assert not os.environ.get("KIZUNA_PROXY_REGISTRY")  # the test's env stayed its own
