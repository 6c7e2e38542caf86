"""API fixtures: the tests' own anvil (faults tests stop nodes; no other suite shares its keys),
a deployment on it, its settings (embedded store + SQLite) and the real API: fresh for each
test, or one for the module where it sets ``SHARED_STACK = True`` (:func:`apienv.shares_stack`;
a test of such a module that needs its own asks for ``fresh_stack``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apienv import (
    ApiServer,
    ChainEnv,
    deploy_env,
    settings_for,
    shared_server,
    shares_stack,
)
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


@pytest.fixture(scope="module")
def module_chain_env(api_node: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    """The deployment a ``SHARED_STACK`` module's tests share."""
    return deploy_env(api_node, tmp_path_factory.mktemp("module-deployment"))


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings_for(module_chain_env, tmp_path_factory.mktemp("module-data"),
                        port=free_port())


@pytest.fixture(scope="module")
def module_api_server(module_settings: Settings) -> Iterator[ApiServer]:
    """The API a ``SHARED_STACK`` module's tests share."""
    server = ApiServer(settings=module_settings,
                       log_path=module_settings.store_path.parent / "api.log").start()
    yield server
    server.stop()


@pytest.fixture
def fresh_stack() -> None:
    """Asked for by a test of a ``SHARED_STACK`` module that needs a deployment and API of
    its own (it counts the whole deployment's state, or changes or stops the server)."""


@pytest.fixture
def chain_env(request: pytest.FixtureRequest, api_node: LocalNode,
              tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    """A fresh deployment per test: one service (database) per AccessLog, as in production —
    an auditor of one deployment must not see other tests' anchored batches. (The module's
    one in a ``SHARED_STACK`` module.)"""
    if shares_stack(request):
        shared: ChainEnv = request.getfixturevalue("module_chain_env")
        return shared
    return deploy_env(api_node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture
def settings(request: pytest.FixtureRequest, chain_env: ChainEnv, tmp_path: Path) -> Settings:
    if shares_stack(request):
        shared: Settings = request.getfixturevalue("module_settings")
        return shared
    return settings_for(chain_env, tmp_path, port=free_port())


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """The services' context the settings name, opened as the API opens it (real parts)."""
    opened = open_context(settings)
    yield opened
    close_context(opened)


@pytest.fixture
def api_server(request: pytest.FixtureRequest, settings: Settings,
               tmp_path: Path) -> Iterator[ApiServer]:
    """The real API: ``kizuna serve`` under uvicorn in a subprocess, on a free port (the
    module's, in a ``SHARED_STACK`` module)."""
    if shares_stack(request):
        yield from shared_server(request)
        return
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
