"""The ``kizuna`` commands and servers the tests start (:func:`run` for a one-shot command,
:func:`start` for a server), each in a process of its own forked from an interpreter that has
already imported Kizuna (a "zygote", one per test worker).

Why: the suite runs a few hundred commands and starts dozens of servers, and a fresh ``python
-m kizuna.cli`` spends ~0.5-1.5 CPU-s importing web3, pydantic, FastAPI and Kizuna before it
does anything; on two cores that is minutes of the run. A forked child starts with those
modules loaded and does only the command's own work.

What a command sees is what ``python -m kizuna.cli ARGS`` would give it: its own process, the
caller's environment (replaced wholesale), working directory, standard input, output and error
(the caller's pipes, passed over the socket), ``sys.argv``, ``sys.path[0]`` and ``__main__``; it
ends through the interpreter's own exit (atexit handlers, non-daemon threads, an uncaught
exception's traceback and status 1). What differs: the modules are imported once, at the
zygote's start, with no ``KIZUNA_*`` variable set (Kizuna reads its environment when a command
runs, never at import); the child's parent is the zygote, not the test.

The zygote is single-threaded (a fork copies only the calling thread), never touches the
network, and exits when its test worker does.
"""

from __future__ import annotations

import array
import contextlib
import gc
import io
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_PRELOAD = (
    "kizuna.cli.main", "kizuna.cli.patient", "kizuna.cli.patient_sharing", "kizuna.cli.provider",
    "kizuna.cli.audit", "kizuna.cli.admin", "kizuna.cli.keys", "kizuna.cli.registrar",
    "kizuna.cli.research", "kizuna.cli.data_requests", "kizuna.cli.participant",
    "kizuna.cli.config_cmd", "kizuna.cli.fhir_import", "kizuna.cli.store",
    "kizuna.client.http", "web3", "kizuna.cli.serve", "kizuna.api.app", "uvicorn",
    "kizuna.cli.proxy", "kizuna.proxynode.server",
)
"""What every command imports, or most do, and the servers the tests start dozens of times
(``kizuna serve``, ``kizuna proxy serve``); the rest (``up``...) are imported by the commands
that need them, in the child."""


# --- the zygote -------------------------------------------------------------------------------


class _Child(BaseException):
    """Raised in a freshly forked child: unwinds the zygote's loop (closing its sockets in
    the child) so that the command runs at the top of the stack, as in a new interpreter."""

    def __init__(self, request: dict[str, Any], fds: list[int]) -> None:
        super().__init__()
        self.request = request
        self.fds = fds


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(1 << 20, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    request: dict[str, Any] = json.loads(data)
    return request, list(fds)


def _serve(path: str) -> None:
    for name in _PRELOAD:
        __import__(name)
    gc.collect()
    gc.freeze()  # the children share these pages and never walk these objects again
    parent = os.getppid()
    running: dict[int, socket.socket] = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(64)
        listener.settimeout(0.05)
        while os.getppid() == parent:  # the test worker has gone: so does the zygote
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                connection = None
            if connection is not None:
                connection.settimeout(None)
                request, fds = _receive(connection)
                pid = os.fork()
                if pid == 0:
                    connection.close()
                    for other in running.values():
                        other.close()
                    raise _Child(request, fds)
                for fd in fds:
                    os.close(fd)
                connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                running[pid] = connection
            while running:
                done, status, usage = os.wait4(-1, os.WNOHANG)
                if done == 0:
                    break
                finished = running.pop(done, None)
                if finished is not None:
                    answer = {"code": os.waitstatus_to_exitcode(status),
                              "cpu": usage.ru_utime + usage.ru_stime}
                    with contextlib.suppress(OSError):
                        finished.sendall(json.dumps(answer).encode() + b"\n")
                    finished.close()
    for pid in running:  # only on the worker's exit
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _run_child(child: _Child) -> None:
    """The command, in the forked child: the caller's stdio, environment, directory, argv."""
    request = child.request
    for target, fd in enumerate(child.fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    # New text streams on the new descriptors, made as a new interpreter makes them (the
    # zygote's were made for its own, different, stdio).
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                 encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                  encoding="utf-8", write_through=unbuffered)
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                  encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
    sys.argv = [str(Path(__import__("kizuna.cli").cli.__file__).with_name("__main__.py")),
                *request["args"]]
    sys.path[0] = os.getcwd()
    import runpy

    runpy.run_module("kizuna.cli", run_name="__main__", alter_sys=True)


# --- the test's side --------------------------------------------------------------------------


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test's commands: its own home, no KIZUNA_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env["KIZUNA_HOME"] = str(home)
    env.update(extra)
    return env



class Zygote:
    """The worker's zygote, started on first use (:func:`run`, :func:`start`) and stopped
    with the worker."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None

    @property
    def socket_path(self) -> Path:
        assert self._folder is not None
        return self._folder / "zygote.sock"

    def _start(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="kizuna-zygote-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        with (self._folder / "zygote.log").open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, __file__, str(self.socket_path)], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.socket_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log_text = (self._folder / "zygote.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"the kizuna zygote did not start:\n{log_text[-3000:]}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def connect(self) -> socket.socket:
        if not self.alive():
            self.stop()
            self._start()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(self.socket_path))
        return connection

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._folder is not None:
            for child in self._folder.iterdir():
                child.unlink(missing_ok=True)
            self._folder.rmdir()
            self._folder = None


ZYGOTE = Zygote()

REAPED_CPU = [0.0]
"""CPU-seconds of the commands run so far (and of the processes they waited for): the
zygote reaps them, not the worker, so the worker's own count of its children misses them
(tests/conftest.py adds this)."""


class _Lines:
    """The zygote's answers on one connection: a line for the pid, a line at the exit."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self._buffer = b""

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next answer, or None if none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.connection], [], [], left)
            if not ready:
                return None
            data = self.connection.recv(4096)
            if not data:
                raise RuntimeError("the kizuna zygote went away")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer


class ForkedProcess:
    """A command forked from the zygote (a server, or one :func:`run` waits for), with what
    tests use of :class:`subprocess.Popen`: ``pid``, ``returncode``, ``poll``, ``wait``,
    ``send_signal``, ``terminate``, ``kill``. Safe to poll from another thread (a monitor)
    meanwhile."""

    def __init__(self, args: list[str], lines: _Lines, pid: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self._lines = lines
        self._lock = threading.Lock()

    def _collect(self, timeout: float | None) -> bool:
        with self._lock:
            if self.returncode is None:
                answer = self._lines.read(timeout)
                if answer is None:
                    return False
                REAPED_CPU[0] += float(answer["cpu"])
                self._lines.connection.close()
                self.returncode = int(answer["code"])
            return True

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._collect(timeout):
            raise subprocess.TimeoutExpired(["kizuna", *self.args], timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _spawn(args: list[str], env: dict[str, str], fds: list[int], cwd: str | None
           ) -> ForkedProcess:
    """A child of the zygote running ``args`` on the descriptors ``fds`` (stdin, stdout,
    stderr; the caller closes its own copies)."""
    connection = ZYGOTE.connect()
    request = {"args": args, "env": env, "cwd": cwd or os.getcwd()}
    connection.sendmsg([json.dumps(request).encode()], [
        (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    lines = _Lines(connection)
    started = lines.read(None)
    assert started is not None
    return ForkedProcess(args, lines, int(started["pid"]))


def start(args: list[str], *, env: dict[str, str], stdout: int, stderr: int,
          cwd: str | None = None) -> ForkedProcess:
    """``python -m kizuna.cli *args`` in the background, its stdin /dev/null and its output on
    the descriptors ``stdout`` and ``stderr`` (the caller's; it may close them after)."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    try:
        return _spawn(args, env, [stdin, stdout, stderr], cwd)
    finally:
        os.close(stdin)


def run(args: list[str], *, env: dict[str, str], stdin: str | None = None,
        timeout: float = 120, cwd: str | None = None) -> tuple[int, str, str]:
    """``python -m kizuna.cli *args`` with ``env``, as ``subprocess.run(..., text=True,
    capture_output=True)`` would run it: (exit code, stdout, stderr). Past ``timeout`` the
    command is killed and :class:`subprocess.TimeoutExpired` raised."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        process = _spawn(args, env, [stdin_r, out_w, err_w], cwd)
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    pending = (stdin or "").encode()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(out_r, selectors.EVENT_READ)
        selector.register(err_r, selectors.EVENT_READ)
        if pending:
            os.set_blocking(stdin_w, False)
            selector.register(stdin_w, selectors.EVENT_WRITE)
        else:
            os.close(stdin_w)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:  # as subprocess.run: kill, wait, raise
                process.kill()
                for key in list(selector.get_map().values()):
                    selector.unregister(key.fd)
                    os.close(key.fd)
                process.wait()
                raise subprocess.TimeoutExpired(["kizuna", *args], timeout)
            for key, _ in selector.select(left):
                if key.fd == stdin_w:
                    try:
                        pending = pending[os.write(stdin_w, pending[:65536]):]
                    except BrokenPipeError:
                        pending = b""
                    if not pending:
                        selector.unregister(stdin_w)
                        os.close(stdin_w)
                    continue
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    return (process.wait(), b"".join(chunks[out_r]).decode("utf-8", "replace"),
            b"".join(chunks[err_r]).decode("utf-8", "replace"))


if __name__ == "__main__":
    try:
        _serve(sys.argv[1])
        sys.exit(0)
    except _Child as forked:
        child = forked.with_traceback(None)  # the zygote's frames go; the command runs alone
    _run_child(child)
