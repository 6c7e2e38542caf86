"""Fixtures of the CLI tests: an isolated KIZUNA_HOME, and one running ``kizuna up`` (real
anvil, contracts, embedded store, database and API on free ports) shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import UpProcess
from roles_fixtures import new_patient, stack  # noqa: F401 (the role-command tests')

from kizuna.chain.localnode import free_port


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "kizuna-home"


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """A ``kizuna up`` (no demo) for the module's tests; stopped (SIGTERM) afterwards."""
    home = tmp_path_factory.mktemp("stack") / "home"
    up = UpProcess(home, "--port", str(free_port()), "--rpc-port", str(free_port()))
    try:
        up.ready()
        yield up
    finally:
        up.stop()
