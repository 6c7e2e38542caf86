"""``kizuna up`` started and stopped as a user would: one stack per home, ports in use named,
data (records, grants, anchored receipts) intact across a restart and a kill, a reset chain
reported."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from cli_harness import UpProcess, clean_env, run

from kizuna.batch import BatchLeaf, proof_leads_to, unpack_proof
from kizuna.chain.connection import connect
from kizuna.chain.localnode import free_port, port_in_use
from kizuna.stack.demo_data import DEMO_PATIENTS, history, home_readings
from kizuna.types import Address, Commitment, RecordId, ScopeId


def test_a_second_up_on_the_same_home_names_the_running_one(running_stack: UpProcess) -> None:
    info = running_stack.info
    again = run(running_stack.home, "up", "--port", str(free_port()),
                "--rpc-port", str(free_port()))
    assert again.code == 5
    line = again.error_line
    assert "already running" in line and f"pid {info['pid']}" in line
    assert info["api_url"] in line
    assert running_stack.process.poll() is None  # the first one is unharmed


def test_ports_in_use_are_named_with_the_process_in_the_way(running_stack: UpProcess,
                                                            tmp_path: Path) -> None:
    info = running_stack.info
    rpc_port = int(info["rpc_url"].rsplit(":", 1)[1])
    api_port = int(info["api_url"].rsplit(":", 1)[1])
    other = tmp_path / "other-home"
    chain_taken = run(other, "up", "--rpc-port", str(rpc_port), "--port", str(free_port()))
    assert chain_taken.code == 5
    assert f"port {rpc_port} on 127.0.0.1 (Ethereum node) is in use by pid" in \
        chain_taken.error_line
    assert "--rpc-port" in chain_taken.error_line
    assert f"started by a `kizuna up` (pid {info['pid']})" in chain_taken.error_line
    api_taken = run(other, "up", "--rpc-port", str(free_port()), "--port", str(api_port))
    assert api_taken.code == 5
    assert f"port {api_port} on 127.0.0.1 (API) is in use by pid {info['pid']}" in \
        api_taken.error_line
    assert "a `kizuna up`" in api_taken.error_line
    assert not (other / "up.lock").exists()  # released by the refused start


def test_status_reports_the_running_stack(running_stack: UpProcess) -> None:
    done = run(running_stack.home, "status", "--json")
    assert done.code == 0, done.err
    status = done.json()
    assert status["status"] == "ok" and status["chain_id"] == 31337
    assert status["stack_pid"] == running_stack.info["pid"]
    assert status["contracts"] == running_stack.info["contracts"]


def test_status_of_an_unreachable_api_is_unavailable(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run(home, "status", "--api-url", url)
    assert done.code == 69
    assert f"the Kizuna API at {url} does not answer" in done.error_line
    as_json = run(home, "status", "--api-url", url, "--json")
    assert as_json.code == 69 and '"kind": "NodeUnreachable"' in as_json.error_line


def _state(home: Path, rpc_url: str, deployment_file: str) -> dict[str, Any]:
    """Records, grants and anchored receipts: the service database checked against the chain."""
    db = sqlite3.connect(home / "kizuna.sqlite3")
    try:
        records = db.execute("SELECT record_id, patient, scope_id, commitment, batch_root, proof "
                             "FROM records").fetchall()
        grants = db.execute("SELECT DISTINCT patient, scope_id, provider FROM kfrags").fetchall()
        roots = db.execute("SELECT DISTINCT batch_root FROM receipts").fetchall()
        receipts = db.execute("SELECT count(*) FROM receipts").fetchone()[0]
    finally:
        db.close()
    chain = connect(rpc_url, deployment_file)

    def on_chain(record_id: bytes, patient: str, scope_id: bytes, commitment: bytes,
                 root: bytes | None, proof: bytes | None) -> bool:
        """Registered alone (the ledger's record), or in a batch of the patient's whose root
        the record's leaf and proof lead to."""
        if root is None:
            status = chain.ledger.record_of(RecordId(bytes(record_id)))
            return status is not None and status.patient == patient
        batch = chain.ledger.batch_of(bytes(root))
        leaf = BatchLeaf(RecordId(bytes(record_id)), ScopeId(bytes(scope_id)),
                         Commitment(bytes(commitment)))
        return (batch is not None and batch.patient == patient
                and proof_leads_to(bytes(root), leaf, unpack_proof(bytes(proof or b""))))

    on_chain_records = sum(1 for row in records if on_chain(*row))
    batched = sum(1 for row in records if row[4] is not None)
    live_grants = sum(1 for patient, scope, provider in grants
                      if chain.ledger.has_access(Address(patient), Address(provider),
                                                 ScopeId(bytes(scope))))
    anchored = sum(1 for (root,) in roots
                   if root is not None and chain.access_log.batch_of(bytes(root)) is not None)
    return {"records": len(records), "on_chain_records": on_chain_records, "batched": batched,
            "grants": len(grants), "live_grants": live_grants, "receipts": receipts,
            "roots": len(roots), "anchored_roots": anchored}


def test_demo_data_survives_a_restart_and_a_kill_and_a_reset_chain_is_reported(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = ["--port", str(free_port()), "--rpc-port", str(free_port())]
    first = UpProcess(home, "--demo", *ports)
    try:
        info = first.ready()
        assert info["deployed_now"] is True
        demo = info["demo"]
        names = {i["name"]: i for i in demo["identities"]}
        assert {"aiko", "kenji", "dr-tanaka", "dr-sato", "registrar"} <= set(names)
        assert demo["reads"] == 3 and sum(demo["records"].values()) > 50
        before = _state(home, info["rpc_url"], info["deployment_file"])
        keys = run(home, "keys", "list", "--json").json()
        assert {k["name"] for k in keys} == set(names)
    finally:
        code = first.stop(signal.SIGINT)
    assert code == 0, first.stderr
    assert "Traceback" not in first.stderr and "error" not in first.stderr  # --json: quiet
    assert before["records"] == before["on_chain_records"] == sum(demo["records"].values())
    # each history imported as one batch, the readings taken at home registered alone
    assert before["batched"] == sum(len(history(p)["entry"]) for p in DEMO_PATIENTS)
    assert before["grants"] == before["live_grants"] == 5  # 3 + 1 + 1 scopes granted
    assert before["receipts"] == 3 and before["anchored_roots"] == before["roots"] >= 1
    assert not (home / "up.lock").exists()
    assert not port_in_use(int(info["rpc_url"].rsplit(":", 1)[1]))
    assert (home / "chain" / "anvil-state.json").stat().st_size > 0

    second = UpProcess(home, *ports)
    try:
        again = second.ready()
        assert again["deployed_now"] is False
        assert again["contracts"] == info["contracts"]
        assert _state(home, again["rpc_url"], again["deployment_file"]) == before
    finally:
        second.stop(signal.SIGKILL)  # no clean-up at all: anvil dies with it (PR_SET_PDEATHSIG)
    third = UpProcess(home, *ports)  # at once: no waiting for the killed one's anvil by hand
    try:
        resumed = third.ready()
        assert resumed["deployed_now"] is False  # the chain kept its contracts, and the data
        assert _state(home, resumed["rpc_url"], resumed["deployment_file"]) == before
        stopped = run(home, "down", "--json")
        assert stopped.code == 0, stopped.err
        assert stopped.json()["stopped"] == resumed["pid"]
        assert third.process.wait(timeout=5) == 0  # `down` returned once it had exited
    finally:
        assert third.stop(signal.SIGTERM) == 0, third.stderr
    nothing = run(home, "down")
    assert nothing.code == 3 and "no `kizuna up` is running" in nothing.error_line

    (home / "chain" / "anvil-state.json").unlink()
    reset = run(home, "up", *ports, env=clean_env(home))
    assert reset.code == 1
    # `up` narrates its start on stderr; the failure is its last line, one line, no traceback
    last = reset.err.strip().splitlines()[-1]
    assert last.startswith("kizuna: error:") and "Traceback" not in reset.err
    assert "no Kizuna contracts" in last and "was reset" in last, reset.err
    assert not (home / "up.lock").exists()
    assert not port_in_use(int(info["rpc_url"].rsplit(":", 1)[1]))


def test_up_with_ipfs_prints_where_everything_is_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port, rpc_port = free_port(), free_port()
    up = UpProcess(home, "--ipfs", "--port", str(api_port), "--rpc-port", str(rpc_port),
                   as_json=False)
    try:
        text = up.ready_text()
        for expected in (f"http://127.0.0.1:{rpc_port}  (chain 31337)",
                         f"http://127.0.0.1:{api_port}/docs", "IPFS node http://127.0.0.1:",
                         f"{home}/deployments/31337.json  (deployed now)",
                         f"sqlite:///{home}/kizuna.sqlite3", f"{home}/keys"):
            assert expected in text, text
        status = run(home, "status", "--json")
        assert status.code == 0, status.err
        assert status.json()["store"] == "ipfs"
        assert (home / "ipfs" / "config").is_file()
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, up.stderr
    assert "stopping" in up.stderr and "stopped" in up.stderr and "Traceback" not in up.stderr
    assert not port_in_use(rpc_port) and not port_in_use(api_port)


def test_an_interrupted_demo_cleans_up_and_resumes_without_duplicates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = ["--port", str(free_port()), "--rpc-port", str(free_port())]
    first = UpProcess(home, "--demo", *ports, as_json=False)
    deadline = time.monotonic() + 240
    while "Encrypting and registering Aiko" not in first.stderr:
        assert first.process.poll() is None, first.stderr
        assert time.monotonic() < deadline, first.stderr
        time.sleep(0.2)
    # at once: aiko's history is being imported (one batch, registered at its end), and the
    # rest of the demo (kenji's history, grants, reads) is still to come
    assert first.stop(signal.SIGTERM) == 130, first.stderr
    assert "interrupted" in first.stderr and "Traceback" not in first.stderr
    assert not (home / "up.lock").exists() and not (home / "demo.json").exists()
    assert not port_in_use(int(ports[3]))

    second = UpProcess(home, "--demo", *ports)
    try:
        demo = second.ready()["demo"]
    finally:
        assert second.stop() == 0, second.stderr
    # a history is registered whole (one batch) and never imported again on top: each patient
    # has their whole history, and their readings taken at home at most once
    whole = {p.key_name: (len(history(p)["entry"]), len(home_readings(p))) for p in DEMO_PATIENTS}
    for name, count in demo["records"].items():
        history_size, readings = whole[name]
        assert history_size <= count <= history_size + readings, demo
    db = sqlite3.connect(home / "kizuna.sqlite3")
    try:
        total = db.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        db.close()
    assert total == sum(demo["records"].values())


def test_other_commands_find_the_running_stack_through_the_home(running_stack: UpProcess) -> None:
    env = clean_env(running_stack.home, KIZUNA_ENVIRONMENT="development")
    shown = run(running_stack.home, "config", "--json", env=env).json()
    info = running_stack.info
    assert shown["values"]["rpc_url"] == info["rpc_url"]
    assert shown["sources"]["rpc_url"] == "running kizuna up"
    assert f"http://127.0.0.1:{shown['values']['api_port']}" == info["api_url"]
    assert shown["values"]["siwe_uri"] == info["api_url"]
    # the environment still wins over the running stack
    env["KIZUNA_RPC_URL"] = "http://127.0.0.1:1"
    again = run(running_stack.home, "config", "--json", env=env).json()
    assert again["values"]["rpc_url"] == "http://127.0.0.1:1"
