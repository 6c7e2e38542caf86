"""What users run with threshold proxies: ``kizuna up --demo --proxies 3 --threshold 2``, then
``kizuna patient grant`` (the fragments go to the three nodes, 2-of-3, none to the service) and
``kizuna provider read`` / ``export`` through the nodes — with all three up, with one killed,
and refused with a clear error naming the dead nodes when two are killed; ``kizuna audit
threshold`` passes the reads m nodes served and names the node that served one alone."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from cli_harness import UpProcess, clean_env, run

from kizuna.chain.localnode import free_port, free_port_block
from kizuna.stack.demo import DEMO_PASSPHRASE

pytestmark = pytest.mark.anvil


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _node_pid(home: Path, number: int) -> int:
    """The process of proxy node ``number`` of this home: the one whose command line names
    its key file (looked up by that path, killed by its pid)."""
    key_file = str(home / "proxies" / str(number) / "node.key").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and key_file in args:
            return int(entry.name)
    raise AssertionError(f"no process serves proxy node {number}")


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and b"Z" not in (
            Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3]):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_grant_and_reads_go_through_two_of_three_nodes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port = free_port_block([0, 801, 802, 803])
    up = UpProcess(home, "--demo", "--port", str(api_port), "--rpc-port", str(free_port()),
                   "--proxies", "3", "--threshold", "2")
    env = clean_env(home, KIZUNA_PASSPHRASE=DEMO_PASSPHRASE)
    try:
        info = up.ready(timeout=400)
        addresses = [httpx.get(url + "/health", timeout=10).json()["node"]
                     for url in info["proxies"]["urls"]]
        nodes = [home / "proxies" / str(i) / "node.sqlite3" for i in range(3)]
        service_db = Path(info["database_url"].removeprefix("sqlite:///"))

        granted = run(home, "patient", "grant", "dr-sato", "Observation:vital-signs",
                      "--days", "1", "--key", "kenji", "--json", env=env)
        assert granted.code == 0, granted.err
        sato = granted.json()["provider"]
        assert granted.json()["proxy_nodes"] == "2-of-3"
        kenji = next(i["address"] for i in info["demo"]["identities"] if i["name"] == "kenji")
        # 2-of-3: each node holds its own one fragment; the service holds none for the grant
        assert [_count(db, "SELECT COUNT(*) FROM kfrags") for db in nodes] == [1, 1, 1]
        assert _count(service_db, "SELECT COUNT(*) FROM kfrags WHERE provider = "
                                  f"'{sato}' AND patient = '{kenji}'") == 0

        listed = run(home, "provider", "records", "--patient", "kenji", "--key", "dr-sato",
                     "--json", env=env)
        assert listed.code == 0, listed.err
        record_id = listed.json()[0]["record_id"]
        own = run(home, "patient", "get", record_id, "--key", "kenji", env=env)
        assert own.code == 0, own.err
        expected = json.loads(own.out)

        def read() -> object:
            done = run(home, "provider", "read", "kenji", record_id, "--key", "dr-sato",
                       env=env)
            assert done.code == 0, done.err
            return json.loads(done.out)

        assert read() == expected
        assert [_count(db, "SELECT COUNT(*) FROM receipts") for db in nodes] == [1, 1, 1]
        exported = run(home, "provider", "export", "kenji", "-o", str(tmp_path / "k.json"),
                       "--key", "dr-sato", "--json", env=env)
        assert exported.code == 0, exported.err
        assert exported.json()["records"] == len(listed.json())

        audited = run(home, "audit", "threshold", "--json", env=env)
        assert audited.code == 0, audited.out + audited.err
        assert audited.json()["checked"] == 1 + len(listed.json())  # one read, the export's
        assert audited.json()["threshold"] == 2

        _kill(_node_pid(home, 2))  # one node down: any two still serve
        assert read() == expected

        _kill(_node_pid(home, 1))  # two down: one node alone cannot serve the read
        refused = run(home, "provider", "read", "kenji", record_id, "--key", "dr-sato",
                      env=env)
        assert refused.code != 0
        line = refused.error_line
        assert "2 proxy nodes must serve the read, 1 did" in line
        # each dead node is named, with why
        assert f"{addresses[1]}: " in line and f"{addresses[2]}: " in line, line
        assert line.count("did not answer") == 2, line
        # the node left served that read alone: the threshold audit names it
        audited = run(home, "audit", "threshold", "--json", env=env)
        assert audited.code == 1
        found = {(f["check"], f["reason"]) for f in audited.json()["failures"]}
        assert ("threshold.alone", f"node {addresses[0]} served it alone") in found
        assert any(check == "threshold.too_few" for check, _ in found)
    finally:
        up.stop()
