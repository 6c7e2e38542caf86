"""Real ``kizuna proxy serve`` processes for the proxy node tests: each with its own database,
event index and Ethereum key, over a service core's chain and content store (never its
database)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from kizuna.chain.localnode import free_port
from kizuna.types import Address, checksum_address


@dataclass
class NodeProcess:
    address: Address
    endpoint: str
    db_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def count(self, table: str) -> int:
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


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
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kizuna.cli", "proxy", "serve", "--database",
             f"sqlite:///{db_path}", "--index", str(root / f"{name}-index.sqlite"),
             "--port", str(port), *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    return NodeProcess(checksum_address(key.address), f"http://127.0.0.1:{port}", db_path,
                       log_path, process)
