"""Fixtures of the FHIR proxy tests: the real stack (module), a Synthea history (session), the
story of a patient granting a provider two scopes (module), and clinic.py's hand-made history
behind a proxy (module). The types live in proxy_stack.py and clinic.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import clinic
import httpx
import pytest
from clinic import Clinic
from local_stack import LocalStack
from proxy_stack import GRANTED, Story

from kizuna.fhirproxy import GrantedCache, ProxyServer


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> LocalStack:
    """The local stack of tests/support/local_stack.py, one per module."""
    return local_stack


@pytest.fixture(scope="module")
def story(stack: LocalStack, synthea_infant: dict[str, Any]) -> Story:
    patient, provider = stack.patient(), stack.provider()
    entries = patient.import_fhir(synthea_infant)
    patient.grant(provider.address, list(GRANTED), expires_at=stack.now() + 86_400)
    return Story(stack=stack, patient=patient, provider=provider, entries=entries,
                 bundle=synthea_infant)


@pytest.fixture(scope="module")
def clinic_proxy(stack: LocalStack) -> Iterator[Clinic]:
    """clinic.py's history, granted whole to a provider whose proxy serves it."""
    patient, provider = stack.patient(), stack.provider()
    entries = patient.import_fhir(clinic.bundle())
    patient.grant(provider.address, list(clinic.GRANTED), expires_at=stack.now() + 86_400)
    cache = GrantedCache(provider, ttl_s=0)
    with ProxyServer(cache, port=0) as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as client:
        yield Clinic(patient=patient, entries=entries, client=client)
