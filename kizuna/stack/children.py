"""The local stack's child servers (API instances, proxy nodes): waiting until one answers
``/health``, and stopping a group of them (SIGTERM, then SIGKILL after a deadline)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from kizuna.errors import NodeUnreachable
from kizuna.tls import http_client


def wait_healthy(running: Callable[[], bool], url: str, *, what: str, log_path: Path,
                 timeout_s: float, request_timeout_s: float) -> None:
    """Poll ``url``/health until it answers 200; ``NodeUnreachable`` naming ``what`` and its
    log when the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    with http_client(url, timeout=request_timeout_s) as client:  # one for every poll
        while True:
            if not running():
                raise NodeUnreachable(f"{what} exited at start: {_last_line(log_path)} "
                                      f"(see {log_path})")
            try:
                if client.get(url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise NodeUnreachable(f"{what} did not answer /health within {timeout_s:g}s "
                                      f"(see {log_path})")
            time.sleep(0.1)


def _last_line(log_path: Path) -> str:
    """The log's last non-empty line (a server that dies at start says why last), shortened."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, 2) - 4096))
            lines = [line for line in log.read().decode("utf-8", "replace").splitlines()
                     if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:300] if lines else "nothing in its log"


def stop_all(processes: Sequence[subprocess.Popen[bytes] | None], timeout: float) -> None:
    """SIGTERM to every running process, then wait for all; SIGKILL what has not stopped
    ``timeout`` seconds after the signals."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["stop_all", "wait_healthy"]
