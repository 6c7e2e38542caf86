"""API fixtures: the tests' own anvil (faults tests stop nodes; no other suite shares its keys),
one deployment on it, and per-test data directories (embedded store + SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apienv import ChainEnv, deploy_env, settings_for

from kizuna.chain.connection import Chain
from kizuna.chain.localnode import LocalNode, free_port
from kizuna.config import Settings
from kizuna.db import Database
from kizuna.storage.embedded import EmbeddedStore


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


@dataclass
class BareContext:
    """The chain, store and database the auth and system routes use (real parts, no services)."""

    chain: Chain
    store: EmbeddedStore
    db: Database

    def close(self) -> None:
        self.store.close()
        self.db.dispose()


@pytest.fixture
def bare_ctx(chain_env: ChainEnv, settings: Settings) -> Iterator[BareContext]:
    ctx = BareContext(chain=chain_env.chain, store=EmbeddedStore(settings.store_path),
                      db=Database.open(settings.database_url))
    yield ctx
    ctx.close()
