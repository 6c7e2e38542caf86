"""The stack's child servers: a child that dies at start is reported with the last line of its
log (why it died), and one that never answers is reported after the timeout."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kizuna.chain.localnode import free_port
from kizuna.errors import NodeUnreachable
from kizuna.stack.children import stop_all, wait_healthy


def _spawn(code: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-c", code], stdout=log,
                                stderr=subprocess.STDOUT)


def test_a_child_that_dies_at_start_is_reported_with_its_last_log_line(tmp_path: Path) -> None:
    log_path = tmp_path / "api-1.log"
    child = _spawn("import sys; print('starting'); "
                   "print('OSError: [Errno 98] address already in use'); sys.exit(1)", log_path)
    child.wait(timeout=30)
    with pytest.raises(NodeUnreachable) as caught:
        wait_healthy(lambda: child.poll() is None, f"http://127.0.0.1:{free_port()}",
                     what="API instance 1", log_path=log_path, timeout_s=30,
                     request_timeout_s=1)
    message = str(caught.value)
    assert message.startswith("API instance 1 exited at start: OSError: [Errno 98] address")
    assert str(log_path) in message


def test_a_child_that_never_answers_is_reported_after_the_timeout(tmp_path: Path) -> None:
    log_path = tmp_path / "node.log"
    child = _spawn("import time; time.sleep(60)", log_path)
    try:
        with pytest.raises(NodeUnreachable, match=r"proxy node 0 did not answer /health within"):
            wait_healthy(lambda: child.poll() is None, f"http://127.0.0.1:{free_port()}",
                         what="proxy node 0", log_path=log_path, timeout_s=0.5,
                         request_timeout_s=0.2)
    finally:
        stop_all([child, None], timeout=5)
    assert child.returncode is not None  # stopped by SIGTERM


def test_stop_all_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    child = _spawn("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "print('ready', flush=True); time.sleep(60)", tmp_path / "stubborn.log")
    while "ready" not in (tmp_path / "stubborn.log").read_text():
        assert child.poll() is None
        time.sleep(0.05)
    stop_all([child], timeout=0.5)
    assert child.returncode == -9


def test_waiting_for_a_slow_child_costs_little_cpu(tmp_path: Path) -> None:
    """Polling a server that is still starting (here: nothing listens) asks through one HTTP
    client: ``httpx.get`` a poll built a client and its TLS context each time, ~20 ms of CPU,
    so a proxy node that took 3 s to import cost the waiting ``kizuna up`` ~0.6 CPU-s."""
    url = f"http://127.0.0.1:{free_port()}"
    started, began = time.thread_time(), time.monotonic()
    with pytest.raises(NodeUnreachable, match="did not answer /health within 2s"):
        wait_healthy(lambda: True, url, what="proxy node 0", log_path=tmp_path / "node.log",
                     timeout_s=2, request_timeout_s=1)
    polls = (time.monotonic() - began) / 0.1
    spent = time.thread_time() - started
    assert polls >= 10
    # One client (~20 ms to build) and ~0.5 ms a refused poll; a client a poll was >= 0.2 s.
    assert spent < 0.12, f"{spent:.3f} CPU-s over ~{polls:.0f} polls"
