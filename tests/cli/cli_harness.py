"""Run the real ``kizuna`` entry point (``python -m kizuna.cli``) in a process of its own,
forked from the worker's zygote (tests/support/forked_cli.py), and ``kizuna up`` as a
background process (forked too, or a new interpreter), with an isolated KIZUNA_HOME per test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forked_cli
from forked_cli import clean_env

KIZUNA = [sys.executable, "-m", "kizuna.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        """The one line an error prints (asserts it is exactly one, without a traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        assert "Traceback" not in self.err
        return lines[0]


def run(home: Path, *args: str, env: dict[str, str] | None = None,
        stdin: str | None = None, timeout: float = 120) -> Result:
    """``python -m kizuna.cli ARGS``, in a process forked from the worker's zygote
    (tests/support/forked_cli.py says what it shares with a fresh interpreter, and why)."""
    code, out, err = forked_cli.run(list(args), env=env or clean_env(home), stdin=stdin,
                                    timeout=timeout)
    return Result(code, out, err)


class UpProcess:
    """``kizuna up --json`` in the background; :meth:`ready` waits for its JSON line.

    Forked from the worker's zygote (~2 CPU-s of imports less a start), unless ``fresh``: a
    new interpreter, whose command line reads ``kizuna.cli up`` as a user's does, for what
    names a running `kizuna up` by its command line (a port in use)."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None,
                 as_json: bool = True, fresh: bool = False) -> None:
        self.home = home
        self.err_path = home.parent / f"{home.name}-up-{time.monotonic_ns()}.err"
        self._err = self.err_path.open("w")
        command = ["up", *(["--json"] if as_json else []), *args]
        self.process: subprocess.Popen[str] | forked_cli.ForkedProcess
        if fresh:
            self.process = subprocess.Popen([*KIZUNA, *command], env=env or clean_env(home),
                                            stdout=subprocess.PIPE, stderr=self._err, text=True)
            assert self.process.stdout is not None
            self.stdout = self.process.stdout
        else:
            out_r, out_w = os.pipe()
            try:
                self.process = forked_cli.start(command, env=env or clean_env(home),
                                                stdout=out_w, stderr=self._err.fileno())
            except BaseException:
                os.close(out_r)
                raise
            finally:
                os.close(out_w)
            self.stdout = open(out_r, encoding="utf-8")  # noqa: SIM115 (closed by stop())
        self.info: dict[str, Any] = {}

    def ready(self, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        line = self.stdout.readline()  # blocks until the stack is up (or it exits)
        if not line:
            self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
            raise AssertionError(f"kizuna up exited {self.process.returncode}:\n{self.stderr}")
        self.info = json.loads(line)
        return self.info

    def ready_text(self, marker: str = "Next steps") -> str:
        """Without --json: the human output up to and including the line with ``marker``."""
        seen: list[str] = []
        for line in self.stdout:
            seen.append(line)
            if marker in line:
                return "".join(seen)
        self.process.wait(timeout=30)
        raise AssertionError(f"kizuna up exited {self.process.returncode}:\n"
                             f"{''.join(seen)}\n{self.stderr}")

    @property
    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.err_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
            self._err.close()
            self.stdout.close()
        return code
