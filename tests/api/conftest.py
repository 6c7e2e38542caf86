"""API fixtures: the tests' own anvil (faults tests stop nodes; no other suite shares its keys),
one deployment on it, and per-test data directories (embedded store + SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv, deploy_env, settings_for
from participants import HttpPatient, HttpProvider, Participant, People

from kizuna.chain.localnode import LocalNode, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.services.context import ServiceContext, close_context, open_context


@pytest.fixture(scope="session")
def api_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    log = tmp_path_factory.mktemp("api-anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node


@pytest.fixture
def chain_env(api_node: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    """A fresh deployment per test: one service (database) per AccessLog, as in production —
    an auditor of one deployment must not see other tests' anchored batches."""
    return deploy_env(api_node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture
def settings(chain_env: ChainEnv, tmp_path: Path) -> Settings:
    return settings_for(chain_env, tmp_path, port=free_port())


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """The services' context the settings name, opened as the API opens it (real parts)."""
    opened = open_context(settings)
    yield opened
    close_context(opened)


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path) -> Iterator[ApiServer]:
    """The real API: ``kizuna serve`` under uvicorn in a subprocess, on a free port."""
    server = ApiServer(settings=settings, log_path=tmp_path / "api.log").start()
    yield server
    server.stop()


@pytest.fixture
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=60) as client:
        yield client


@pytest.fixture
def people(chain_env: ChainEnv, http: httpx.Client) -> People:
    """A signed-in patient, a registered and signed-in provider, an auditor (role granted)."""
    chain = chain_env.chain
    patient = HttpPatient(signer=LocalKeySigner.generate(), chain=chain, http=http).login()
    provider = HttpProvider(signer=LocalKeySigner.generate(), chain=chain, http=http)
    chain_env.add_provider(provider.signer, provider.keys.public_key.to_bytes())
    provider.login()
    auditor = Participant(signer=LocalKeySigner.generate(), chain=chain, http=http)
    chain_env.grant_auditor(auditor.signer.address)
    auditor.login()
    return People(patient=patient, provider=provider, auditor=auditor)
