"""Chain-layer fixtures. Tests taking ``env`` run on eth-tester and on anvil (that run is marked
``anvil``); ``tester_env`` is eth-tester only, ``anvil_env`` anvil only. Every ``env`` is a fresh
deployment with fresh patient/provider keys, so tests never see each other's state."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from chainenv import Env, _anvil_env, _eth_tester_env, hardhat_env

from kizuna.chain.localnode import LocalNode
from kizuna.tls import http_client


@pytest.fixture
def tester_env() -> Env:
    return _eth_tester_env()


@pytest.fixture
def anvil_env(anvil: LocalNode) -> Env:
    return _anvil_env(anvil)


@pytest.fixture(params=["eth_tester", pytest.param("anvil", marks=pytest.mark.anvil),
                        pytest.param("hardhat", marks=pytest.mark.node)])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if request.param == "eth_tester":
        yield _eth_tester_env()
    elif request.param == "anvil":
        yield _anvil_env(request.getfixturevalue("anvil"))
    else:
        yield hardhat_env(request.getfixturevalue("hardhat_node"))


@pytest.fixture
def fresh_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A private anvil for tests that rewind the chain (reorgs) or need an empty node."""
    log = tmp_path_factory.mktemp("anvil-private") / "anvil.log"
    node = LocalNode(log_path=log).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def hardhat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``npx hardhat node`` (Hardhat 3's in-process EDR network over HTTP) on a free port of
    127.0.0.1, for the session; yields its RPC URL."""
    import subprocess
    import time

    import httpx

    from kizuna.chain.localnode import free_port

    root = Path(__file__).resolve().parents[2]
    node_bin = root / ".venv" / "bin" / "node"
    hardhat = root / "node_modules" / "hardhat" / "dist" / "src" / "cli.js"
    if not hardhat.exists():
        pytest.skip("hardhat is not installed (npm install)")
    port = free_port()
    log = (tmp_path_factory.mktemp("hardhat") / "hardhat.log").open("wb")
    process = subprocess.Popen(
        [str(node_bin if node_bin.exists() else "node"), str(hardhat), "node",
         "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # the whole launcher → node tree is stopped as one group
    )
    url = f"http://127.0.0.1:{port}"
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        deadline = time.monotonic() + 90
        with http_client(url, timeout=1.0) as probe:  # one for every poll
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"hardhat node exited with {process.returncode}")
                try:
                    if "result" in probe.post(url, json=payload).json():
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("hardhat node did not start within 90 s")
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()
