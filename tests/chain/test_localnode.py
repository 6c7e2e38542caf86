"""The local anvil node used by tests, benchmarks and `kizuna up`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from web3 import Web3

from kizuna.chain.localnode import (
    DEV_MNEMONIC,
    LocalNode,
    descendants,
    dev_private_keys,
    pid_running,
    port_in_use,
)
from kizuna.errors import ConflictError

pytestmark = pytest.mark.anvil


def test_anvil_answers_on_loopback_and_funds_the_dev_keys(anvil: LocalNode) -> None:
    assert anvil.rpc_url.startswith("http://127.0.0.1:")
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    assert w3.eth.chain_id == 31337
    funded = [w3.eth.account.from_key(key).address for key in dev_private_keys()]
    assert funded == w3.eth.accounts[:10]  # every key, in anvil's order
    first = w3.eth.account.from_key(dev_private_keys(1)[0]).address
    assert first == funded[0]
    assert w3.eth.get_balance(first) > 0
    assert "junk" in DEV_MNEMONIC


def test_a_busy_port_is_named(anvil: LocalNode) -> None:
    busy = int(anvil.rpc_url.rsplit(":", 1)[1])
    with pytest.raises(ConflictError, match=str(busy)):
        LocalNode(port=busy).start()


def test_state_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state.json"
    with LocalNode(state_path=state) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        sender, receiver = w3.eth.accounts[0], w3.eth.accounts[1]
        w3.eth.send_transaction({"from": sender, "to": receiver, "value": 12345})
        height = w3.eth.block_number
        port = int(node.rpc_url.rsplit(":", 1)[1])
    assert not port_in_use(port)
    assert state.exists()
    with LocalNode(state_path=state) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        assert w3.eth.block_number == height


@pytest.mark.parametrize("launcher", [False, True], ids=["native", "node-launcher"])
def test_stop_leaves_no_anvil_behind(
    launcher: bool, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if launcher:  # node_modules/.bin/anvil runs anvil as a grandchild
        monkeypatch.setenv("KIZUNA_ANVIL", str(project_root / "node_modules" / ".bin" / "anvil"))
    with LocalNode() as node:
        port = int(node.rpc_url.rsplit(":", 1)[1])
        assert port_in_use(port)
    survivors = [
        line
        for line in subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True
        ).stdout.splitlines()
        if "anvil" in line and f"--port {port} " in line
    ]
    assert survivors == []
    assert not port_in_use(port)


@pytest.mark.parametrize("launcher", [False, True], ids=["native", "node-launcher"])
def test_stop_ends_the_node_s_whole_process_tree(
    launcher: bool, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anvil runs in a process group of its own, and stop() ends every process in it: the
    launcher and the anvil it started alike (no caller walks /proc after it)."""
    import os

    if launcher:
        monkeypatch.setenv("KIZUNA_ANVIL", str(project_root / "node_modules" / ".bin" / "anvil"))
    with LocalNode() as node:
        assert node._process is not None
        leader = node._process.pid
        tree = [leader, *descendants(leader)]
        assert len(tree) >= (2 if launcher else 1)
        assert {os.getpgid(pid) for pid in tree} == {leader} != os.getpgid(0)
    assert [pid for pid in tree if pid_running(pid)] == []


def test_a_node_started_with_die_with_parent_ends_when_its_parent_is_killed(
    tmp_path: Path,
) -> None:
    """``die_with_parent``: SIGKILL the process that started anvil, and anvil ends too (Linux
    ``PR_SET_PDEATHSIG``), so nothing is left holding the port."""
    import signal
    import sys
    import time

    script = (
        "import sys, time\n"
        "from kizuna.chain.localnode import LocalNode\n"
        "node = LocalNode(die_with_parent=True).start()\n"
        "print(node._process.pid, node.rpc_url.rsplit(':', 1)[1], flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        anvil, port = (int(x) for x in parent.stdout.readline().split())
        assert port_in_use(port)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{anvil}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{anvil}").exists()
    assert not port_in_use(port)


def test_free_port_block_is_below_the_ephemeral_range_and_bindable() -> None:
    import socket

    from kizuna.chain.localnode import _ephemeral_floor, free_port_block

    offsets = [0, 1, 2, 801]
    base = free_port_block(offsets)
    assert base >= 1024 and base + 801 < _ephemeral_floor()
    held = []
    try:
        for offset in offsets:  # every port of the block binds
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", base + offset))
            sock.listen()
        assert free_port_block(offsets) != base  # a held block is never handed out again
    finally:
        for sock in held:
            sock.close()
