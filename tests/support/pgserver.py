"""A throwaway PostgreSQL 15 for the tests: initdb + pg_ctl in a temporary directory, listening
on 127.0.0.1 on a free port, run as the unprivileged user ``nobody`` when the tests run as root
(PostgreSQL refuses to run as root). Stopped and deleted afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from kizuna.chain.localnode import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_available() -> str:
    """Empty when a server can be started here, else the reason why not."""
    if not (BIN / "initdb").exists() or not (BIN / "pg_ctl").exists():
        return f"PostgreSQL 15 binaries are not installed ({BIN})"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    return ""


class PostgresServer:
    def __init__(self, _hint: Path) -> None:
        # pytest's tmp dirs are 0700 root: a directory of our own that nobody may enter.
        self.dir = Path(tempfile.mkdtemp(prefix="kizuna-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://kizuna@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "nobody", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.dir)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, "nobody", "nogroup")
        self._run("initdb", "-D", str(self.data), "-U", "kizuna", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                  "-c max_connections=200", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    name = "kz_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name
