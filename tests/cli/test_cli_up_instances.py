"""``kizuna up --instances N``: N ``kizuna serve`` processes on one chain, one store and one
database, each with its own /health; one of them leads (runs the follower and the anchorer),
and when it is killed (SIGKILL) another leads within one interval while ``kizuna up`` keeps the
survivors serving. On the home's SQLite (``--json``, 2 instances), and through the README's
cluster recipe: 3 instances with PostgreSQL (a throwaway server started here, ``--database``)
and a real IPFS node over its RPC API (``--ipfs``: the project's js-ipfs daemon). One cluster
of each: the recipe's cluster is the one whose leader is killed (a second PostgreSQL + IPFS
cluster for the same checks cost ~40 % of this file's CPU).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from cli_harness import UpProcess, run

from kizuna.chain.localnode import free_port, free_port_block, pid_running, port_in_use
from kizuna.services.leader import LEADER_LOCK_KEY
from kizuna.stack.lock import listener_pid, lock_held

PGSERVER = Path(__file__).resolve().parents[1] / "support" / "pgserver.py"
ELECTION_SLACK_S = 10.0
"""One follow interval (2 s by default) plus what a pass may take on a busy two-core machine."""


def _pgserver() -> ModuleType:
    """The suite's throwaway PostgreSQL (tests/support/pgserver.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("kizuna_tests_pgserver", PGSERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[str]:
    pg = _pgserver()
    reason = pg.postgres_available()
    if reason:
        pytest.skip(reason)
    with pg.PostgresServer(tmp_path) as server:
        yield pg.fresh_database(server.url)


def _leader_pid(database: str, home: Path) -> int | None:
    """Which process leads, as the database says: the advisory lock's session, or the SQLite
    leader file's pid."""
    if database.startswith("sqlite") or not database:
        text = (home / "kizuna.sqlite3-leader").read_text().strip()
        return int(text) if text else None
    import psycopg

    key = LEADER_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(database, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
            (key >> 32, key & 0xFFFFFFFF))]
    assert len(names) <= 1, names
    found = re.search(r"pid=(\d+)", names[0]) if names else None
    return int(found.group(1)) if found else None


def _wait_for_leader(database: str, home: Path, among: set[int]) -> tuple[int, float]:
    start = time.monotonic()
    while True:
        pid = _leader_pid(database, home)
        if pid in among:
            return pid, time.monotonic() - start
        assert time.monotonic() - start < ELECTION_SLACK_S, f"no leader among {among}: {pid}"
        time.sleep(0.1)


def _leader_dies_and_another_leads(database: str, home: Path, pids: dict[int, int]) -> set[int]:
    """Kill the leader (SIGKILL): one of the others leads within one interval and every
    survivor keeps answering /health. The survivors' pids."""
    leader, _ = _wait_for_leader(database, home, set(pids))
    os.kill(leader, signal.SIGKILL)
    survivors = {p for p in pids if p != leader}
    new_leader, took = _wait_for_leader(database, home, survivors)
    assert new_leader != leader and took < ELECTION_SLACK_S
    for pid in survivors:
        assert httpx.get(f"http://127.0.0.1:{pids[pid]}/health", timeout=30).status_code == 200
    return survivors


def _listeners(port: int, count: int) -> dict[int, int]:
    """pid -> port of the processes serving the ``count`` ports from ``port``."""
    found = {listener_pid(port + i): port + i for i in range(count)}
    assert None not in found and len(found) == count, found
    return {pid: p for pid, p in found.items() if pid is not None}


def test_up_runs_instances_that_elect_one_leader_and_survive_its_death(tmp_path: Path) -> None:
    """On the home's SQLite (the file election); PostgreSQL + IPFS: the README recipe's test."""
    home = tmp_path / "home"
    count = 2
    port = free_port_block(range(count))
    up = UpProcess(home, "--instances", str(count), "--port", str(port),
                   "--rpc-port", str(free_port()))
    try:
        info = up.ready()
        urls = [f"http://127.0.0.1:{port + i}" for i in range(count)]
        assert info["api_urls"] == urls and info["api_url"] == urls[0]
        for url in urls:  # a health check per instance; each serves the same chain and store
            health = httpx.get(f"{url}/health", timeout=30)
            assert health.status_code == 200, health.text
            assert health.json()["store"] == "embedded"
        done = run(home, "status", "--api-url", urls[-1], "--json")
        assert done.code == 0 and done.json()["chain_id"] == 31337, done.err
        survivors = _leader_dies_and_another_leads("", home, _listeners(port, count))
        assert up.process.poll() is None  # `kizuna up` keeps the survivors serving
        assert run(home, "down").code == 0  # stops every instance, frees every port
        for pid in survivors:
            assert not pid_running(pid)
        assert not any(port_in_use(port + i) for i in range(count))
    finally:
        up.stop()


README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe(name: str) -> str:
    """The fenced block right after ``<!-- recipe: name -->`` in the README."""
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)\n```",
                      README.read_text(encoding="utf-8"), re.S)
    assert found, f"README.md has no recipe {name!r}"
    return found.group(1)


def test_the_readme_cluster_recipe_runs_and_survives_its_leaders_death(
        tmp_path: Path, postgres_database: str) -> None:
    """The README's recipe as written, on free ports, this test's home and PostgreSQL, in two
    steps: up to its health checks (`kizuna up` left running in the background, as in a
    shell), then, after the leader of its 3 instances is killed and another leads, its
    `kizuna down`."""
    port = free_port_block(range(3))
    home = tmp_path / "kizuna-cluster"
    lines = (_recipe("cluster-up")
             .replace("~/kizuna-cluster", str(home))
             .replace("postgresql://kizuna@127.0.0.1:5432/kizuna", postgres_database)
             .replace("--rpc-port 8545", f"--rpc-port {free_port()}")
             .replace("--port 8000", f"--port {port}")
             .replace("8000 8001 8002", " ".join(str(port + i) for i in range(3)))).splitlines()
    assert lines[0].startswith("export KIZUNA_HOME=") and lines[-1].startswith("kizuna down")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the venv's kizuna
    out_path, err_path = tmp_path / "recipe.out", tmp_path / "recipe.err"

    def step(script: str) -> int:
        """Run part of the recipe: its own shell; output to files, since the `kizuna up` it
        backgrounds outlives the shell and would hold a pipe open."""
        with out_path.open("a") as out, err_path.open("a") as err:
            process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], env=env,
                                       stdout=out, stderr=err, text=True,
                                       start_new_session=True)
            try:
                return process.wait(timeout=400)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=60)

    def output() -> str:
        return f"{out_path.read_text()}\n{err_path.read_text()}"

    try:
        assert step("\n".join(lines[:-1])) == 0, output()
        assert out_path.read_text().count("(ok)") == 3, output()  # `kizuna status` of each
        for i in range(3):
            health = httpx.get(f"http://127.0.0.1:{port + i}/health", timeout=30)
            assert health.status_code == 200 and health.json()["store"] == "ipfs", health.text
        survivors = _leader_dies_and_another_leads(postgres_database, home,
                                                    _listeners(port, 3))
        assert lock_held(home / "up.lock")  # `kizuna up` keeps the survivors serving
        assert step("\n".join([lines[0], lines[-1]])) == 0, output()  # its `kizuna down`
        for pid in survivors:
            assert not pid_running(pid)
    finally:
        run(home, "down")  # whatever the script left running
    assert not any(port_in_use(port + i) for i in range(3))
