"""Fixtures of the CLI tests: an isolated KIZUNA_HOME, and the running ``kizuna up`` (real
anvil, contracts, embedded store, database and API on free ports) of the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import UpProcess
from roles_fixtures import new_patient, stack  # noqa: F401 (the role-command tests')
from roles_stack import Stack


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "kizuna-home"


@pytest.fixture
def running_stack(stack: Stack) -> UpProcess:  # noqa: F811 (the fixture imported above)
    """A running ``kizuna up``: the role tests' session ``kizuna up --demo`` (one per xdist
    worker, already up for them) rather than a stack of the module's own, which cost a chain,
    a deployment and an API started and stopped in each of three modules.
    Tests may add keys (names of their own) and records to it; none stops it or changes its
    configuration."""
    return stack.up
