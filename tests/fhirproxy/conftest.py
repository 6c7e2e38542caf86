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
from eth_account import Account
from proxy_stack import GRANTED, Stack, Story

from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.chain.transactions import TxPolicy
from kizuna.db import Database
from kizuna.fhirproxy import GrantedCache, ProxyServer
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore


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


@pytest.fixture(scope="module")
def story(stack: Stack, synthea_infant: dict[str, Any]) -> Story:
    patient, provider = stack.patient(), stack.provider()
    entries = patient.import_fhir(synthea_infant)
    patient.grant(provider.address, list(GRANTED), expires_at=stack.now() + 86_400)
    return Story(stack=stack, patient=patient, provider=provider, entries=entries,
                 bundle=synthea_infant)


@pytest.fixture(scope="module")
def clinic_proxy(stack: Stack) -> Iterator[Clinic]:
    """clinic.py's history, granted whole to a provider whose proxy serves it."""
    patient, provider = stack.patient(), stack.provider()
    entries = patient.import_fhir(clinic.bundle())
    patient.grant(provider.address, list(clinic.GRANTED), expires_at=stack.now() + 86_400)
    cache = GrantedCache(provider, ttl_s=0)
    with ProxyServer(cache, port=0) as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as client:
        yield Clinic(patient=patient, entries=entries, client=client)
