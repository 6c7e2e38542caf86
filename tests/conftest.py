"""Fixtures shared by every test package. Servers started here listen on 127.0.0.1 only and
are stopped when the tests that need them are done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.chain.localnode import LocalNode

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A real anvil node (npm @foundry-rs/anvil) on a free port of 127.0.0.1, for the session."""
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node
