"""Real ``kizuna proxy serve`` processes for the proxy node tests: each with its own database,
event index and Ethereum key, over a service core's chain and content store (never its
database); ``Cluster``: a module's three of them, shared by its tests."""

from __future__ import annotations

import os
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import forked_cli
from eth_account import Account

from kizuna.chain.localnode import free_port
from kizuna.stack.children import wait_healthy
from kizuna.types import Address, checksum_address


@dataclass
class NodeProcess:
    address: Address
    endpoint: str
    db_path: Path
    log_path: Path
    process: forked_cli.ForkedProcess

    def count(self, table: str, *, patient: str | None = None) -> int:
        """Rows of ``table`` (it may end in a WHERE clause), only ``patient``'s when named: a
        module's nodes hold other tests' patients too."""
        sql = f"SELECT COUNT(*) FROM {table}"
        params: tuple[str, ...] = ()
        if patient is not None:
            sql += (" AND" if " WHERE " in table else " WHERE") + " patient = ?"
            params = (checksum_address(patient),)
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def wait_ready(self, what: str) -> None:
        wait_healthy(lambda: self.process.poll() is None, self.endpoint, what=what,
                     log_path=self.log_path, timeout_s=90, request_timeout_s=5)


def start_node(stack: object, root: Path, name: str, *, environment: str = "development",
               args: tuple[str, ...] = ()) -> NodeProcess:
    """One node over the stack's chain and content store, with its own key and database
    (``environment``: its KIZUNA_ENVIRONMENT; no KIZUNA_SESSION_SECRET is ever set: a node
    needs none; ``args``: more ``kizuna proxy serve`` options)."""
    chain = stack.chain  # type: ignore[attr-defined]
    deployment = chain.deployment.save(root / f"{name}-deployment")
    key = Account.create()
    port = free_port()
    db_path, log_path = root / f"{name}.sqlite3", root / f"{name}.log"
    inherited = {k: v for k, v in os.environ.items() if k != "KIZUNA_SESSION_SECRET"}
    env = {**inherited, "KIZUNA_RPC_URL": chain.w3.provider.endpoint_uri,
           "KIZUNA_DEPLOYMENT_FILE": str(deployment), "KIZUNA_STORE": "embedded",
           "KIZUNA_STORE_PATH": str(stack.store.root),  # type: ignore[attr-defined]
           "KIZUNA_ENVIRONMENT": environment, "KIZUNA_NODE_KEY": key.key.hex(),
           "KIZUNA_HOME": str(root / f"{name}-home"), "KIZUNA_FOLLOW_INTERVAL_S": "0.5"}
    with log_path.open("wb") as log:  # forked from the worker's zygote (forked_cli)
        process = forked_cli.start(
            ["proxy", "serve", "--database", f"sqlite:///{db_path}", "--index",
             str(root / f"{name}-index.sqlite"), "--port", str(port), *args], env=env,
            stdout=log.fileno(), stderr=log.fileno())
    return NodeProcess(checksum_address(key.address), f"http://127.0.0.1:{port}", db_path,
                       log_path, process)


@dataclass
class Cluster:
    """A module's three nodes over its one service core (``stack``), shared by its tests, each
    test with its own patients and providers. A node a test killed or whose database it
    altered (``altered``) is replaced by a fresh node (new key, new database) before the next
    test: every test starts on three healthy, untouched nodes, whatever ran before it."""

    stack: object
    root: Path
    nodes: list[NodeProcess] = field(default_factory=list)
    altered: set[Address] = field(default_factory=set)
    started: int = 0

    def start(self) -> NodeProcess:
        self.started += 1
        return start_node(self.stack, self.root, f"node{self.started}")

    def ready(self) -> list[NodeProcess]:
        if not self.nodes:
            self.nodes = [self.start() for _ in range(3)]
        for i, node in enumerate(self.nodes):
            if node.address in self.altered or node.process.poll() is not None:
                node.stop()
                self.nodes[i] = self.start()
        self.altered.clear()
        for i, node in enumerate(self.nodes):
            node.wait_ready(f"proxy node {i}")
        return list(self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
