"""Service-core fixtures: ``stack`` on eth-tester (fast, time travel), ``anvil_stack`` on a real
anvil node, ``postgres_url`` for a throwaway PostgreSQL 15 started here."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))

from chainenv import _anvil_env, _eth_tester_env
from harness import Stack, make_stack
from pgserver import PostgresServer, postgres_available

from kizuna.chain.localnode import LocalNode


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    made = make_stack(_eth_tester_env(), tmp_path)
    made.batched = getattr(request, "param", "alone") == "in a batch"
    yield made
    made.db.dispose()


@pytest.fixture
def anvil_stack(anvil: LocalNode, tmp_path: Path, request: pytest.FixtureRequest
                ) -> Iterator[Stack]:
    made = make_stack(_anvil_env(anvil), tmp_path)
    made.batched = getattr(request, "param", "alone") == "in a batch"
    yield made
    made.db.dispose()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        yield server.url


@pytest.fixture
def pg_stack(postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    from pgserver import fresh_database

    made = make_stack(_eth_tester_env(), tmp_path, fresh_database(postgres_url))
    yield made
    made.db.dispose()
