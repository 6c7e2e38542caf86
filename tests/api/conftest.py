"""API fixtures: the tests' own anvil (faults tests stop nodes; no other suite shares its keys),
one deployment on it, and per-test data directories (embedded store + SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apienv import ChainEnv, deploy_env, settings_for

from kizuna.api.app import close_context, open_context
from kizuna.chain.localnode import LocalNode, free_port
from kizuna.config import Settings
from kizuna.services.context import ServiceContext


@pytest.fixture(scope="session")
def api_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    log = tmp_path_factory.mktemp("api-anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node


@pytest.fixture(scope="session")
def chain_env(api_node: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
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
