"""One ``kizuna up`` per home, and clear words about what is in the way.

:class:`StackLock` holds an exclusive ``flock`` on ``$KIZUNA_HOME/up.lock`` for the life of the
stack and writes into it who holds it (pid, ports, URLs). The kernel drops the lock when the
process dies, however it dies, so a stale file never blocks a new start; a second ``kizuna up``
on the same home reads the file and names the running one.

:func:`check_ports_free` looks at the ports the stack needs before anything starts and, when one
is taken, says which port and — on Linux, for processes of the same user — which pid listens
on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from kizuna.chain.localnode import port_in_use, stop_tree
from kizuna.errors import ConflictError


class StackRunning(ConflictError):
    """A ``kizuna up`` already runs on this home."""

    def __init__(self, lock_file: Path, holder: Mapping[str, Any]) -> None:
        pid = holder.get("pid", "?")
        where = ", ".join(f"{label} {holder[key]}" for key, label in
                          (("rpc_url", "chain"), ("api_url", "API")) if key in holder)
        super().__init__(
            f"kizuna up is already running on this home (pid {pid}"
            + (f": {where}" if where else "") + f"; lock {lock_file}); stop it with Ctrl-C "
            f"in its terminal or `kill {pid}`")
        self.holder = dict(holder)


class PortInUse(ConflictError):
    """A port the stack needs is taken."""

    def __init__(self, port: int, purpose: str, pid: int | None, hint: str,
                 known: str | None = None) -> None:
        owner = f" by pid {pid}" + (f" ({_process_name(pid)})" if _process_name(pid) else "") \
            if pid is not None else " by another process"
        if known:
            owner += f", {known}"
        super().__init__(f"port {port} on 127.0.0.1 ({purpose}) is in use{owner}: {hint}")
        self.port = port
        self.pid = pid


class StackLock:
    """An exclusive lock on one home's ``up.lock`` (context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self, details: Mapping[str, Any]) -> StackLock:
        """Take the lock or raise :class:`StackRunning` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackRunning(self.path, read_lock(self.path)) from None
        self._handle = handle
        self.update(details)
        return self

    def update(self, details: Mapping[str, Any]) -> None:
        """Rewrite the lock's content (pid + ``details``), e.g. once the URLs are known."""
        if self._handle is None:
            return
        body = {"pid": os.getpid(), "started_at": int(time.time()), **details}
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(body, default=str) + "\n")
        self._handle.flush()

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> StackLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_held(path: Path) -> bool:
    """Whether a process holds the lock at ``path`` (the flock, not the file, is the truth:
    a killed stack leaves its file behind but not its lock)."""
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def read_lock(path: Path) -> dict[str, Any]:
    """What a lock file says (``{}`` when absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def check_ports_free(ports: Sequence[tuple[int, str, str]], *,
                     known: Mapping[int, str] | None = None) -> None:
    """Raise :class:`PortInUse` for the first taken ``(port, purpose, hint)``; ``known`` says
    what some pids are (e.g. the anvil a ``kizuna up`` killed with SIGKILL left behind)."""
    for port, purpose, hint in ports:
        if port and port_in_use(port):
            pid = listener_pid(port)
            leftover = (known or {}).get(pid) if pid is not None else None
            explained = leftover or (describe_pid(pid) if pid is not None else None)
            raise PortInUse(port, purpose, pid, f"stop it (kill {pid})" if leftover else hint,
                            known=explained)


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP ``port`` (Linux ``/proc``; own processes only), else ``None``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue
    return None


def stop_leftover_anvil(left: Mapping[str, Any], state_path: Path) -> int | None:
    """Stop the anvil a killed ``kizuna up`` of this home left behind; its pid, or ``None``.

    ``left`` is what the home's lock file said before this start took the lock (the lock is
    free, so the ``kizuna up`` that wrote it is dead). Only a live process whose command line
    runs anvil on *this home's* state file is stopped (SIGTERM: it dumps its state first), so a
    reused pid or another program is never touched."""
    pid = left.get("anvil_pid")
    if not isinstance(pid, int) or pid <= 1 or pid == os.getpid():
        return None
    try:
        args = [a.decode(errors="replace")
                for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return None
    ours = (any(Path(a).name == "anvil" or a.endswith("/anvil") for a in args)
            and "--state" in args and str(state_path) in args)
    if not ours:
        return None
    stop_tree(pid)
    return pid


def _is_kizuna_up(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [a.decode(errors="replace") for a in args if a]
    return "up" in names and any(n.endswith(("/kizuna", "kizuna.cli")) or n == "kizuna"
                                 for n in names)


def describe_pid(pid: int) -> str | None:
    """``"a `kizuna up`"`` or ``"started by a `kizuna up` (pid P)"`` when that is what ``pid``
    is (Linux ``/proc``), else ``None``."""
    if _is_kizuna_up(pid):
        return "a `kizuna up`"
    try:
        stat_fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1]
        parent = int(stat_fields.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if _is_kizuna_up(parent):
        return f"started by a `kizuna up` (pid {parent})"
    return None


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


__all__ = ["PortInUse", "StackLock", "StackRunning", "check_ports_free", "describe_pid",
           "listener_pid", "lock_held", "read_lock", "stop_leftover_anvil"]
