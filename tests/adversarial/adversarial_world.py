"""The adversarial suite's shared helpers, in a module of their own: a test imports them from
here, never from ``conftest`` (several test folders have a conftest, and ``from conftest import``
gets whichever was imported first)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from apienv import ApiServer, ChainEnv
from participants import HttpPatient, HttpProvider, Participant, Sealed

from kizuna.chain.signers import LocalKeySigner


def signed_in_provider(chain_env: ChainEnv, http: httpx.Client) -> HttpProvider:
    """A new provider, registered in the deployment's registry and signed in."""
    provider = HttpProvider(signer=LocalKeySigner.generate(), chain=chain_env.chain, http=http)
    chain_env.add_provider(provider.signer, provider.keys.public_key.to_bytes())
    provider.login()
    return provider


def signed_in_auditor(chain_env: ChainEnv, http: httpx.Client) -> Participant:
    """A new wallet with the auditor role, signed in."""
    auditor = Participant(signer=LocalKeySigner.generate(), chain=chain_env.chain, http=http)
    chain_env.grant_auditor(auditor.signer.address)
    auditor.login()
    return auditor


@dataclass
class World:
    """A small live deployment to attack (see the module's docstring)."""

    env: ChainEnv
    server: ApiServer
    http: httpx.Client
    alice: HttpPatient
    bob: HttpPatient
    provider: HttpProvider
    auditor: Participant
    stranger: Participant
    records: dict[str, dict[str, Sealed]]
    granted: dict[str, tuple[str, ...]]

    @property
    def patients(self) -> tuple[HttpPatient, HttpPatient]:
        return self.alice, self.bob

    def granted_records(self) -> list[tuple[HttpPatient, Sealed]]:
        """Every (patient, record) the provider may read now."""
        return [(patient, self.records[patient.address][label])
                for patient in self.patients for label in self.granted[patient.address]]


__all__ = ["World", "signed_in_auditor", "signed_in_provider"]
