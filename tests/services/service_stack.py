"""The service-level test stack (anvil, deployment, embedded store, database, clients).

A module of its own, not conftest.py: test modules import ``Stack`` by name, and every test
package has a ``conftest`` of its own, so ``from conftest import ...`` picks whichever package's
conftest was imported first in a full run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils.crypto import keccak

from kizuna.chain.connection import Chain
from kizuna.chain.localnode import LocalNode
from kizuna.chain.models import ContractCall
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore


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
