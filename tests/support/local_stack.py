"""The in-process local stack of the service and FHIR proxy tests, all real: an anvil node (state
kept on disk, so it can be stopped and started again on the same port), the Kizuna contracts
deployed on it, the event index, the embedded content store in a temporary directory, the SQLite
service database, the relayer — and patients, providers and guardians with funded keys, each
using the in-process clients. The fixture is ``local_stack`` (tests/conftest.py, one per module).

A module of its own, not conftest.py: test modules import ``LocalStack`` by name, and every test
package has a ``conftest`` of its own, so ``from conftest import ...`` picks whichever package's
conftest was imported first in a full run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.db import Database
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore


@dataclass
class LocalStack:
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


@contextmanager
def open_local_stack(root: Path) -> Iterator[LocalStack]:
    """The stack in ``root`` (anvil's state and log, the index, the store, the database);
    everything is closed and the node stopped on exit."""
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
        try:
            ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db)
            yield LocalStack(node=node, chain=chain, ctx=ctx, store=store,
                             relayer=Relayer(chain, relayer_key), admin=admin, funder=funder)
        finally:
            db.dispose()
            index.close()
    finally:
        node.stop()
