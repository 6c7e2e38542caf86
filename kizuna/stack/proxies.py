"""``kizuna up --proxies N --threshold M``: N threshold proxy nodes (docs/proxies.md), each a
``kizuna proxy serve`` process with its own database, event index and Ethereum key under
``$KIZUNA_HOME/proxies/<i>/``, listed in a ProxyRegistry deployed on the local chain.

The keys and the registry's address are kept in the home, so a restart serves the same nodes
from the same registry. The nodes share the stack's chain and content store (as nodes on other
machines share a chain RPC and an IPFS node), never its database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_keys.datatypes import PrivateKey

from kizuna.chain.localnode import _die_with
from kizuna.errors import InputError
from kizuna.proxy.threshold import default_threshold
from kizuna.stack.children import stop_all, wait_healthy
from kizuna.stack.home import KizunaHome
from kizuna.types import Address, checksum_address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain

NODE_START_TIMEOUT_S = 90.0


@dataclass
class ProxyNodeProcess:
    number: int
    port: int
    directory: Path
    address: Address
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _node_key(directory: Path) -> Address:
    """The node's address; its key file (``node.key``, hex, 0600) is made on first use."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "node.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(Account.create().key.hex())
    return checksum_address(Account.from_key(path.read_text().strip()).address)


class ProxyNodes:
    """``count`` nodes on consecutive ports from ``first_port``, ``threshold`` of them needed."""

    def __init__(self, home: KizunaHome, *, count: int, threshold: int, first_port: int,
                 overrides: Mapping[str, Any], config_file: Path | None = None,
                 allow_origins: tuple[str, ...] = ()) -> None:
        if not 1 <= threshold <= count:
            raise InputError("threshold", f"must be in [1, {count}] for {count} proxy nodes, "
                                          f"got {threshold}")
        self.home = home
        self.threshold = threshold
        self.config_file = config_file
        self.overrides = dict(overrides)
        self.allow_origins = allow_origins
        """The web pages (origins) each node answers CORS for: the stack's own page."""
        self.nodes = []
        for i in range(count):
            directory = home.root / "proxies" / str(i)
            address = _node_key(directory)
            self.nodes.append(ProxyNodeProcess(number=i, port=first_port + i,
                                               directory=directory, address=address,
                                               log_path=home.logs_dir / f"proxy-{i}.log"))
        self.registry: Address | None = None
        self._saved: Path | None = None
        self._chain: Chain | None = None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KIZUNA_HOME"] = str(self.home.root)
        for name, value in self.overrides.items():
            env[f"KIZUNA_{name.upper()}"] = (str(value).lower() if isinstance(value, bool)
                                             else str(value))
        env.pop("KIZUNA_DATABASE_URL", None)  # a node never opens the service's database
        env.pop("KIZUNA_INDEX_PATH", None)
        return env

    def start(self) -> list[str]:
        """Start every node, then wait until each answers ``/health``; their URLs."""
        env = self._environment()
        for node in self.nodes:
            command = [sys.executable, "-m", "kizuna.cli", "proxy", "serve",
                       "--database", f"sqlite:///{node.directory / 'node.sqlite3'}",
                       "--index", str(node.directory / "index.sqlite3"),
                       "--key-file", str(node.directory / "node.key"),
                       "--port", str(node.port)]
            for origin in self.allow_origins:
                command += ["--allow-origin", origin]
            if self.config_file is not None:
                command += ["--config", str(self.config_file)]
            with node.log_path.open("ab") as log:
                node.process = subprocess.Popen(command, env=env, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL,
                                                preexec_fn=_die_with(os.getpid()))
        for node in self.nodes:
            self._wait_healthy(node)
        return self.urls

    def _wait_healthy(self, node: ProxyNodeProcess) -> None:
        wait_healthy(lambda: node.running, node.url, what=f"proxy node {node.number}",
                     log_path=node.log_path, timeout_s=NODE_START_TIMEOUT_S,
                     request_timeout_s=5)

    def _connect(self, rpc_url: str, deployment_file: Path) -> Chain:
        """The stack's chain, connected (and its deployment checked) once for :meth:`register`
        and :meth:`allow_anchoring`."""
        from kizuna.chain.connection import connect

        if self._chain is None:
            self._chain = connect(rpc_url, deployment_file)
        return self._chain

    def register(self, rpc_url: str, deployment_file: Path, registrar_key: str) -> Address:
        """The home's ProxyRegistry on this chain (deployed on the first start, registrar =
        ``registrar_key``), with every node listed at its endpoint; its address."""
        from kizuna.chain.agents.proxies import ProxyRegistryAgent, deploy_proxy_registry
        from kizuna.chain.signers import LocalKeySigner

        chain = self._connect(rpc_url, deployment_file)
        saved = self.home.root / "proxies" / "registry.json"
        address: Address | None = None
        if saved.exists():
            data = json.loads(saved.read_text())
            if data.get("chainId") == chain.chain_id and chain.w3.eth.get_code(data["address"]):
                address = checksum_address(data["address"])
        if address is None:
            address = deploy_proxy_registry(chain.w3, Account.from_key(registrar_key))
        agent = ProxyRegistryAgent(chain, address)
        signer = LocalKeySigner(registrar_key)
        for node in self.nodes:
            entry = agent.node_of(node.address)
            if entry is None:
                # The node signs nothing with its key yet (docs/proxies.md): its verifying
                # key is the public key of its Ethereum key, compressed.
                raw = (node.directory / "node.key").read_text().strip().removeprefix("0x")
                verifying = PrivateKey(bytes.fromhex(raw)).public_key.to_compressed_bytes()
                agent.add_node(node.address, node.url, verifying, signer=signer)
        self.registry = address
        # What the participants' commands read (kizuna.cli.proxy.proxy_set_for): the registry,
        # the threshold a grant asks for, and that the nodes serve (until stop()).
        self._saved = saved
        saved.write_text(json.dumps({"chainId": chain.chain_id, "address": address,
                                     "threshold": self.threshold, "serving": True}) + "\n")
        return address

    def allow_anchoring(self, rpc_url: str, deployment_file: Path, admin_key: str) -> None:
        """Each node anchors its own receipts with its own key (docs/proxies.md): the AccessLog
        admin (``admin_key``) grants it ANCHOR_ROLE and, on the local chain, gives an account
        with less than 0.1 ETH 1 ETH for its anchor transactions."""
        from kizuna.chain.models import ContractCall
        from kizuna.chain.signers import LocalKeySigner

        chain = self._connect(rpc_url, deployment_file)
        admin = LocalKeySigner(admin_key)
        access_log = chain.access_log
        role = access_log.anchor_role()
        for node in self.nodes:
            if not access_log.is_anchorer(node.address):
                access_log.grant_role(role, node.address, signer=admin)
            if chain.w3.eth.get_balance(node.address) < 10**17:
                chain.sender.transact(ContractCall(to=node.address, data=b"", value=10**18),
                                      admin, gas=21_000)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to every node, then wait; SIGKILL what does not stop in time."""
        if self._saved is not None and self._saved.exists():
            data = json.loads(self._saved.read_text())
            self._saved.write_text(json.dumps({**data, "serving": False}) + "\n")
        processes = [node.process for node in self.nodes]
        for node in self.nodes:
            node.process = None
        stop_all(processes, timeout)


__all__ = ["ProxyNodeProcess", "ProxyNodes", "default_threshold"]
