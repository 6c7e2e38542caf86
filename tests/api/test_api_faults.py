"""Faults, with the real server: the chain node stops in the middle of an upload (a clear 503,
nothing half-registered, the retry succeeds once the node is back); the content store is
unreachable (503 naming it); the service is killed between a read and the anchoring of its
receipt (the receipt is anchored when the service comes back)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv, deploy_env, settings_for
from participants import HttpPatient, Participant, People, hx

from kizuna.chain.localnode import LocalNode, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.db import Database

pytestmark = pytest.mark.anvil

LAB = "Observation:laboratory"


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[LocalNode]:
    """An anvil of this test alone, keeping its state on disk so it can be restarted."""
    node = LocalNode(state_path=tmp_path / "anvil-state.json",
                     log_path=tmp_path / "anvil.log").start()
    yield node
    node.stop()


def _restart(node: LocalNode) -> LocalNode:
    port = int(node.rpc_url.rsplit(":", 1)[1])
    node.stop()
    again = LocalNode(port=port, state_path=node.state_path, log_path=node.log_path)
    return again.start()


def test_chain_stops_during_upload(own_node: LocalNode, tmp_path: Path) -> None:
    env = deploy_env(own_node, tmp_path / "deployment")
    settings = settings_for(env, tmp_path / "data", port=free_port())
    time.sleep(6)  # let anvil write the deployment into its state file (--state-interval 5)
    server = ApiServer(settings=settings, log_path=tmp_path / "api.log").start()
    node = own_node
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            patient = HttpPatient(signer=LocalKeySigner.generate(), chain=env.chain,
                                  http=http).login()
            sealed = patient.seal(b"x" * 3_000_000, label=LAB, content_type="text/plain")
            registration = patient.registration(sealed)

            def slow_body() -> Iterator[bytes]:
                view = memoryview(sealed.envelope)
                for start in range(0, len(view), 256 * 1024):
                    if start == 1024 * 1024:
                        node.stop()  # the chain goes away mid-upload
                    yield bytes(view[start:start + 256 * 1024])

            answer = patient.upload(sealed, body=slow_body(), registration=registration)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["kind"] == "NodeUnreachable"
            assert "Retry-After" in answer.headers
            db = Database(settings.database_url)
            with db.read() as conn:
                rows = conn.exec_driver_sql("SELECT count(*) FROM records").scalar()
            assert rows == 0  # nothing half-registered
            assert patient.get("/patient/records").json() == []

            node = _restart(node)
            again = patient.upload(sealed, registration=registration)
            assert again.status_code == 201, again.text
            assert again.json()["record_id"] == hx(sealed.record_id)
            assert len(patient.get("/patient/records").json()) == 1
            db.dispose()
    finally:
        server.stop()
        if node is not own_node:
            node.stop()


def test_content_store_unreachable(chain_env: ChainEnv, tmp_path: Path) -> None:
    closed_port = free_port()
    settings = settings_for(chain_env, tmp_path, port=free_port(), store="ipfs",
                            ipfs_api=f"http://127.0.0.1:{closed_port}", ipfs_timeout=2.0)
    server = ApiServer(settings=settings, log_path=tmp_path / "api.log").start(
        wait_healthy=False)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            health = http.get("/health")
            assert health.status_code == 503
            assert health.json()["error"]["kind"] == "StoreUnavailable"
            patient = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                                  http=http).login()
            sealed = patient.seal(b"report", label=LAB, content_type="text/plain")
            answer = patient.upload(sealed)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["kind"] == "StoreUnavailable"
            assert patient.get("/patient/records").json() == []
            assert chain_env.chain.ledger.record_of(sealed.record_id) is None
    finally:
        server.stop()


def test_restart_between_read_and_anchor(people: People, api_server: ApiServer) -> None:
    patient, provider = people.patient, people.provider
    sealed = patient.add(b"lab", label=LAB, content_type="text/plain")
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200
    answer = provider.request_read(patient.address, sealed.record_id)
    assert answer.status_code == 200
    request_id = answer.json()["request_id"]
    # the schedule is an hour away: the receipt is not anchored when the service dies
    reads = patient.get("/patient/reads").json()
    assert [r["anchored"] for r in reads] == [False]
    api_server.kill()  # SIGKILL: no clean shutdown
    api_server.start()
    with httpx.Client(base_url=api_server.url, timeout=60) as http:
        again = Participant(signer=patient.signer, chain=patient.chain, http=http).login()
        deadline = time.monotonic() + 60
        while True:
            reads = again.get("/patient/reads").json()
            if (reads and reads[0]["anchored"]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reads[0]["request_id"] == request_id
        assert reads[0]["anchored"], api_server.log_path.read_text()[-3000:]
        auditor = Participant(signer=people.auditor.signer, chain=patient.chain,
                              http=http).login()
        report = auditor.get("/auditor/verification").json()
        assert report["ok"] and report["receipts"]["passed"] >= 1, report
