"""A local Ethereum node (anvil, from npm's ``@foundry-rs/anvil``) on 127.0.0.1.

Used by the tests, the benchmarks and ``kizuna up``. The node listens on loopback only, on a
free port unless one is given, and keeps its state on disk when ``state_path`` is set.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kizuna.errors import ConfigError, ConflictError, NodeUnreachable

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""The well-known development mnemonic anvil and Hardhat fund by default. Never for real funds."""

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def dev_private_keys(count: int = 10) -> list[str]:
    """The private keys anvil funds by default (derived from ``DEV_MNEMONIC``)."""
    return list(_dev_keys(count))


@functools.cache
def _dev_keys(count: int) -> tuple[str, ...]:
    # eth_account here and httpx in _wait_ready, not at import: the CLI's lock and port checks
    # (`kizuna down`, `kizuna --help`) import this module and need neither.
    from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

    seed = seed_from_mnemonic(DEV_MNEMONIC, "")  # PBKDF2, once for all the keys
    return tuple(key_from_seed(seed, f"m/44'/60'/0'/0/{i}").hex() for i in range(count))


def find_anvil() -> str:
    """Path of the anvil binary: ``KIZUNA_ANVIL``, the project's node_modules, or PATH.

    In node_modules the native binary (``@foundry-rs/anvil-<platform>/bin/anvil``) is preferred
    to the ``.bin/anvil`` Node launcher: the launcher runs anvil as a grandchild, which a plain
    terminate of the launcher would leave running.
    """
    configured = os.environ.get("KIZUNA_ANVIL")
    if configured:
        return configured
    modules = _PROJECT_ROOT / "node_modules"
    for native in sorted((modules / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            return str(native)
    launcher = modules / ".bin" / "anvil"
    if launcher.exists():
        return str(launcher)
    found = shutil.which("anvil")
    if found:
        return found
    raise ConfigError("anvil not found: run scripts/bootstrap.sh (npm install) or set KIZUNA_ANVIL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (32768 unless configured)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(offsets: Sequence[int]) -> int:
    """A base port ``p`` such that every ``p + offset`` is free on 127.0.0.1 right now.

    The base is drawn below the kernel's ephemeral range: a port inside it can be taken, between
    this check and the server's bind, as the local end of any outgoing connection on the machine
    (connect() favours even ports, the very ``p + 1`` of a block that bind(0) started on an odd
    one)."""
    ceiling = _ephemeral_floor() - max(offsets) - 1
    floor = max(1024, ceiling - 12_000)
    if ceiling <= floor:
        raise ConfigError(f"no room below the ephemeral ports for offsets up to {max(offsets)}")
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(floor, ceiling)
        if all(_bindable(base + offset) for offset in offsets):
            return base
    raise ConfigError(f"no free block of ports for offsets {list(offsets)}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) == 0


@dataclass
class LocalNode:
    """An anvil process. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    port: int | None = None
    chain_id: int = 31337
    state_path: Path | None = None
    block_time: float | None = None
    accounts: int = 10
    log_path: Path | None = None
    startup_timeout: float = 30.0
    die_with_parent: bool = False
    """Linux: the kernel sends anvil SIGTERM (it dumps its state and exits) when the thread that
    started it dies, however it dies (``kizuna up`` killed with SIGKILL): nothing is left to
    hold the port. Start such a node from a thread that lives as long as the node should."""

    def __post_init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port = self.port

    @property
    def rpc_url(self) -> str:
        if self._port is None:
            raise ConfigError("the local node has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalNode:
        if self.running:
            return self
        if self.port is not None and port_in_use(self.port):
            raise ConflictError(
                f"port {self.port} on 127.0.0.1 is in use: cannot start anvil there"
            )
        attempts = 1 if self.port is not None else 3
        for attempt in range(attempts):
            self._port = self.port if self.port is not None else free_port()
            self._spawn()
            try:
                self._wait_ready()
                return self
            except NodeUnreachable:
                exited = self._process is not None and self._process.poll() is not None
                self.stop()
                if not exited or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        args = [
            find_anvil(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self._port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--mnemonic",
            DEV_MNEMONIC,
            "--hardfork",
            "cancun",
        ]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state_path), "--state-interval", "5"]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            args,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends launcher and anvil
            preexec_fn=_die_with(os.getpid()) if self.die_with_parent else None,
        )

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        from kizuna.tls import http_client

        with http_client(self.rpc_url, timeout=1.0) as client:  # one for every poll
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise NodeUnreachable(
                        f"anvil exited with code {self._process.returncode} at start")
                try:
                    answer = client.post(self.rpc_url, json=payload)
                    if answer.status_code == 200 and "result" in answer.json():
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise NodeUnreachable(
            f"anvil did not answer on {self.rpc_url} within {self.startup_timeout}s"
        )

    def stop(self) -> None:
        """Stop the node (SIGTERM, so anvil writes its state file), waiting for it to exit.

        The signal goes to the node's whole process group and to every process below it, so a
        launcher (``node .bin/anvil``) and the anvil it started both end, and this returns only
        once all of them have (the port is free then).
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            stop_tree(process.pid, wait=process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            parent = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def stop_tree(pid: int, *, wait: subprocess.Popen[bytes] | None = None,
              timeout: float = 15.0) -> None:
    """SIGTERM ``pid``, its process group and every process below it; wait until all are gone
    (``wait``: the ``Popen`` of ``pid``, reaped), SIGKILL what is left after ``timeout``."""
    tree = [pid, *descendants(pid)]
    for signum, patience in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)
        for member in tree:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(member, signum)
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if wait is not None:
                with suppress(subprocess.TimeoutExpired):
                    wait.wait(timeout=0.05)
            else:
                time.sleep(0.05)
            if not any(pid_running(m) for m in tree):
                return


def pid_running(pid: int) -> bool:
    """Whether ``pid`` still runs: it exists and is not a zombie or dead (a child not yet
    reaped by its parent has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when its parent (thread) dies; when the parent
    died already before this ran, the child exits at once. No-op where prctl is missing."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True) if name else None

    def preexec() -> None:
        if libc is None or not hasattr(libc, "prctl"):
            return
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@contextmanager
def local_node(**kwargs: object) -> Iterator[LocalNode]:
    """``with local_node() as node: node.rpc_url`` — an anvil for the duration of the block."""
    node = LocalNode(**kwargs)  # type: ignore[arg-type]
    with node:
        yield node
