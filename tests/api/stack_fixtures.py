"""The stack fixtures tests/api and tests/adversarial share, in one place: each conftest imports
them (so each folder gets its own session anvil; the API faults tests stop nodes and no other
suite shares its dev keys). Fresh for each test, or, in a module that sets
``SHARED_STACK = True`` (:func:`apienv.shares_stack`), the one deployment and API that every
such module of the folder shares on this worker (a test of such a module that needs its own
asks for ``fresh_stack``; a module that needs settings of its own overrides
``module_settings`` and gets a deployment and an API of its own).

* ``stack_node`` (session) — the folder's own anvil (:class:`LocalNode`).
* ``chain_env`` — a deployment on it (:class:`apienv.ChainEnv`): fresh per test, so one service
  (database) per AccessLog as in production — an auditor of one deployment never sees another
  test's anchored batches.
* ``settings`` — :class:`Settings` for that deployment: embedded store and SQLite in the test's
  ``tmp_path``, a free port of 127.0.0.1.
* ``api_server`` — the real API (``kizuna serve`` under uvicorn, in a subprocess) on
  ``settings``; ``http`` an :class:`httpx.Client` on it.
* ``people`` — a signed-in patient, a registered signed-in provider, an auditor (role granted).
"""

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
from participants import HttpPatient, People, signed_in_auditor, signed_in_provider

from kizuna.chain.localnode import LocalNode, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.tls import http_client

__all__ = ["api_server", "chain_env", "fresh_stack", "http", "module_api_server",
           "module_chain_env", "module_settings", "people", "settings", "shared_api_server",
           "shared_chain_env", "stack_node"]

@pytest.fixture(scope="session")
def stack_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    log = tmp_path_factory.mktemp("stack-anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node


@pytest.fixture(scope="session")
def shared_chain_env(stack_node: LocalNode,
                     tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    """The deployment the ``SHARED_STACK`` modules of this folder share on this worker."""
    return deploy_env(stack_node, tmp_path_factory.mktemp("shared-deployment"))


@pytest.fixture(scope="session")
def shared_api_server(shared_chain_env: ChainEnv,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API (default settings) the ``SHARED_STACK`` modules of this folder share on this
    worker; its settings are made here, with the port it binds at once."""
    data = tmp_path_factory.mktemp("shared-data")
    server = ApiServer(settings=settings_for(shared_chain_env, data, port=free_port()),
                       log_path=data / "api.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_chain_env(request: pytest.FixtureRequest, stack_node: LocalNode,
                     tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    """The deployment a ``SHARED_STACK`` module's tests share: the shared API's, or, for a
    module with settings of its own, a deployment of its own: an API or event index started
    on the shared deployment late in a session first indexes all its history (a login waits
    for that)."""
    if not hasattr(request.module, "module_settings"):
        shared: ChainEnv = request.getfixturevalue("shared_chain_env")
        return shared
    return deploy_env(stack_node, tmp_path_factory.mktemp("module-deployment"))


@pytest.fixture(scope="module")
def module_settings(shared_api_server: ApiServer) -> Settings:
    """The settings a ``SHARED_STACK`` module's tests share: the shared API's. A module that
    needs its own (another quota, a short follow interval, a server it starts itself on them)
    overrides this fixture: :func:`module_api_server` then starts an API of the module's own."""
    return shared_api_server.settings


@pytest.fixture(scope="module")
def module_api_server(request: pytest.FixtureRequest,
                      module_settings: Settings) -> Iterator[ApiServer]:
    """The API a ``SHARED_STACK`` module's tests share: the worker's shared one, or an API of
    the module's own on the settings it defines itself (its own ``module_settings``)."""
    if not hasattr(request.module, "module_settings"):
        shared: ApiServer = request.getfixturevalue("shared_api_server")
        yield shared
        return
    server = ApiServer(settings=module_settings,
                       log_path=module_settings.store_path.parent / "api.log").start()
    yield server
    server.stop()


@pytest.fixture
def fresh_stack() -> None:
    """Asked for by a test of a ``SHARED_STACK`` module that needs a deployment and API of
    its own (it counts the whole deployment's state, or changes or stops the server)."""


@pytest.fixture
def chain_env(request: pytest.FixtureRequest, stack_node: LocalNode,
              tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    if shares_stack(request):
        shared: ChainEnv = request.getfixturevalue("module_chain_env")
        return shared
    return deploy_env(stack_node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture
def settings(request: pytest.FixtureRequest, chain_env: ChainEnv, tmp_path: Path) -> Settings:
    if shares_stack(request):
        shared: Settings = request.getfixturevalue("module_settings")
        return shared
    return settings_for(chain_env, tmp_path, port=free_port())


@pytest.fixture
def api_server(request: pytest.FixtureRequest, settings: Settings,
               tmp_path: Path) -> Iterator[ApiServer]:
    if shares_stack(request):
        yield from shared_server(request)
        return
    server = ApiServer(settings=settings, log_path=tmp_path / "api.log").start()
    yield server
    server.stop()


@pytest.fixture
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with http_client(api_server.url, base=True, timeout=60) as client:
        yield client


@pytest.fixture
def people(chain_env: ChainEnv, http: httpx.Client) -> People:
    patient = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                          http=http).login()
    return People(patient=patient, provider=signed_in_provider(chain_env, http),
                  auditor=signed_in_auditor(chain_env, http))
