"""A patient over the real API for the sharing tests: a module of its own, not conftest.py
(``from conftest import`` would pick whichever package's conftest was imported first)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apienv import ApiServer, ChainEnv

from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient


@contextmanager
def patient_of(server: ApiServer, env: ChainEnv, key: str) -> Iterator[PatientClient]:
    """A patient over the real API (``ApiService``: what ``kizuna patient`` runs)."""
    signer = LocalKeySigner(key)
    api = ApiClient(server.url, timeout=120)
    api.login(signer)
    service = ApiService(api, env.chain)
    try:
        yield PatientClient(signer=signer, service=service, chain=env.chain)
    finally:
        service.close()
