"""The adversarial suite's shared helpers, in a module of their own: a test imports them from
here, never from ``conftest`` (several test folders have a conftest, and ``from conftest import``
gets whichever was imported first)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from apienv import ApiServer, ChainEnv
from participants import HttpPatient, HttpProvider, Participant, Sealed


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


__all__ = ["World"]
