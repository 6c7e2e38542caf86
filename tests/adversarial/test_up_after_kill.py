"""Issue 15, crash resistance of ``kizuna up``: a killed service never leaves an anvil that
blocks the next start.

Before the fix, ``kizuna up`` killed with SIGKILL (or crashed, as the 99,000-bracket login did)
left its anvil running in its own session on the chain port, and the next ``kizuna up`` of the
same home refused to start ("port ... is in use") until the anvil was killed by hand. Now anvil
dies with its parent (Linux ``PR_SET_PDEATHSIG``), and a start that finds the anvil a killed
``kizuna up`` of its home left behind (its pid in the home's lock file, running on the home's
chain state) stops it first. Each mechanism is tested on its own."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from cli_harness import UpProcess

from kizuna.chain.localnode import LocalNode, free_port, port_in_use
from kizuna.stack.home import KizunaHome
from kizuna.stack.lock import listener_pid

pytestmark = pytest.mark.anvil


def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_up_killed_with_sigkill_comes_up_again_with_its_chain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rpc_port = free_port()
    ports = ["--port", str(free_port()), "--rpc-port", str(rpc_port)]
    crashed = UpProcess(home, *ports)
    crashed.ready()
    anvil = listener_pid(rpc_port)
    assert anvil is not None
    crashed.stop(signal.SIGKILL)  # no clean-up at all
    again = UpProcess(home, *ports)
    try:
        info = again.ready()
        assert info["deployed_now"] is False  # the chain kept its contracts
        assert _gone(anvil)  # the old anvil ended; a new one serves the chain
        assert listener_pid(rpc_port) not in (None, anvil)
    finally:
        assert again.stop() == 0, again.stderr
    assert not port_in_use(rpc_port)


def test_an_anvil_left_on_the_homes_chain_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    """The second line of defence, without the first: an anvil that outlived its ``kizuna up``
    (here one started without ``die_with_parent``, as a non-Linux kernel or an older version
    would leave it), named in the home's lock file as a killed ``kizuna up`` leaves it."""
    root = tmp_path / "home"
    rpc_port = free_port()
    ports = ["--port", str(free_port()), "--rpc-port", str(rpc_port)]
    first = UpProcess(root, *ports)
    first.ready()
    assert first.stop() == 0, first.stderr  # a chain with contracts in the home
    home = KizunaHome(root)
    orphan = LocalNode(port=rpc_port, state_path=home.anvil_state)
    orphan.start()
    try:
        pid = listener_pid(rpc_port)
        assert pid is not None
        home.lock_file.write_text(json.dumps({"pid": 999_999, "state": "running",
                                              "anvil_pid": pid}) + "\n")
        again = UpProcess(root, *ports)
        try:
            assert again.ready()["deployed_now"] is False
            assert _gone(pid)
        finally:
            assert again.stop() == 0, again.stderr
    finally:
        orphan.stop()


def test_a_process_that_is_not_the_homes_anvil_is_never_stopped(tmp_path: Path) -> None:
    """A lock file naming a pid that is something else (a reused pid, another program on the
    port) is only named in the refusal, never signalled."""
    root = tmp_path / "home"
    rpc_port = free_port()
    other = LocalNode(port=rpc_port, state_path=tmp_path / "elsewhere" / "state.json")
    other.start()
    try:
        pid = listener_pid(rpc_port)
        assert pid is not None
        home = KizunaHome(root).ensure()
        home.lock_file.write_text(json.dumps({"pid": 999_999, "anvil_pid": pid}) + "\n")
        refused = UpProcess(root, "--port", str(free_port()), "--rpc-port", str(rpc_port))
        code = refused.process.wait(timeout=120)
        assert code == 5, refused.stderr
        assert f"in use by pid {pid}" in refused.stderr
        assert other.running and os.path.exists(f"/proc/{pid}")
    finally:
        other.stop()
