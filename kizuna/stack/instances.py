"""Several API instances for ``kizuna up --instances N``: one ``kizuna serve`` process each.

Each instance is a process of its own (a crash or a SIGKILL takes only it down), on its own
port (``api_port``, ``api_port + 1``, ...), with its own event index (a cache:
``$KIZUNA_HOME/instances/<i>/index.sqlite3``) and log (``$KIZUNA_HOME/logs/api-<i>.log``),
and shares with the others the chain, the content store and the database -- the home's SQLite
file, or the PostgreSQL server given with ``--database``. The instances elect one of them to
run the index follower and the receipt anchorer (:mod:`kizuna.services.leader`).

An instance is started with the home and the configuration file every command reads, plus what
the stack decided (the chain's URL, the deployment file, the store, the database) as
``KIZUNA_*`` variables, so ``kizuna config`` and an instance agree on everything else. Secrets
stay in the configuration file. On Linux an instance dies with the ``kizuna up`` that started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kizuna.chain.localnode import _die_with
from kizuna.stack.children import stop_all, wait_healthy
from kizuna.stack.home import KizunaHome

INSTANCE_START_TIMEOUT_S = 60.0


@dataclass
class ApiInstance:
    """One ``kizuna serve`` process of the stack."""

    number: int
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class ApiInstances:
    """``count`` instances on consecutive ports from ``first_port``; :meth:`start`,
    :meth:`stop`."""

    def __init__(self, home: KizunaHome, *, count: int, first_port: int,
                 overrides: Mapping[str, Any], config_file: Path | None = None) -> None:
        self.home = home
        self.config_file = config_file
        self.overrides = dict(overrides)
        self.instances = [ApiInstance(number=i, port=first_port + i,
                                      log_path=home.logs_dir / f"api-{i}.log")
                          for i in range(count)]
        self._reported: set[int] = set()

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.instances]

    def _environment(self, instance: ApiInstance) -> dict[str, str]:
        env = dict(os.environ)
        env["KIZUNA_HOME"] = str(self.home.root)
        for name, value in self.overrides.items():
            env[f"KIZUNA_{name.upper()}"] = _env_value(value)
        index_dir = self.home.root / "instances" / str(instance.number)
        index_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env["KIZUNA_INDEX_PATH"] = str(index_dir / "index.sqlite3")
        env["KIZUNA_API_HOST"] = "127.0.0.1"
        env["KIZUNA_API_PORT"] = str(instance.port)
        return env

    def start(self) -> list[str]:
        """Start every instance, then wait until each answers ``/health``; their URLs."""
        command = [sys.executable, "-m", "kizuna.cli", "serve", "--log-level", "warning"]
        if self.config_file is not None:
            command += ["--config", str(self.config_file)]
        for instance in self.instances:
            with instance.log_path.open("ab") as log:
                instance.process = subprocess.Popen(
                    command, env=self._environment(instance), stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with(os.getpid()))  # dies with `kizuna up`
        for instance in self.instances:
            self._wait_healthy(instance)
        return self.urls

    def _wait_healthy(self, instance: ApiInstance) -> None:
        # /health asks the store about a CID it lacks: a js-ipfs node takes its find timeout
        # (~10 s) to say no.
        wait_healthy(lambda: instance.running, instance.url,
                     what=f"API instance {instance.number}", log_path=instance.log_path,
                     timeout_s=INSTANCE_START_TIMEOUT_S, request_timeout_s=30)

    def newly_dead(self) -> list[ApiInstance]:
        """The instances that exited since the last call."""
        found = [i for i in self.instances
                 if i.process is not None and not i.running and i.number not in self._reported]
        self._reported.update(i.number for i in found)
        return found

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to every instance (a clean stop: the leader resigns), then wait; SIGKILL
        what does not stop in ``timeout`` seconds."""
        processes = [instance.process for instance in self.instances]
        for instance in self.instances:
            instance.process = None
        stop_all(processes, timeout)


__all__ = ["ApiInstance", "ApiInstances"]
