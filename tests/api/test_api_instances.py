"""Several instances: two uvicorn processes on one chain, one content store and one database
(a SQLite file, and PostgreSQL when it can be started here) answer consistently — a session,
a nonce, a record, a grant, a replay and a revoke made at one are honoured at the other."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from apienv import ApiServer, ChainEnv, settings_for, sign_in_at
from participants import HttpPatient, HttpProvider, hx

from kizuna.chain.localnode import free_port
from kizuna.chain.signers import LocalKeySigner

pytestmark = pytest.mark.anvil

LAB = "Observation:laboratory"

SHARED_STACK = True
"""The module's one deployment for both databases' runs (each its own two servers, database,
store and wallets; nothing counted across the deployment)."""
PGSERVER = Path(__file__).resolve().parents[1] / "support" / "pgserver.py"


def _pgserver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kizuna_tests_pgserver", PGSERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    if not PGSERVER.exists():
        pytest.skip("the core part's PostgreSQL fixture (tests/support/pgserver.py) is absent")
    pg = _pgserver()
    reason = pg.postgres_available()
    if reason:
        pytest.skip(reason)
    with pg.PostgresServer(tmp_path) as server:
        yield pg.fresh_database(server.url)


def test_two_instances_answer_consistently(chain_env: ChainEnv, tmp_path: Path,
                                           database_url: str) -> None:
    shared = dict(database_url=database_url, siwe_domain="kizuna.test",
                  siwe_uri="https://kizuna.test")
    servers = [ApiServer(settings=settings_for(chain_env, tmp_path, port=free_port(), **shared),
                         log_path=tmp_path / f"api-{i}.log") for i in range(2)]
    for server in servers:
        server.start()
    try:
        with httpx.Client(base_url=servers[0].url, timeout=60) as a, \
                httpx.Client(base_url=servers[1].url, timeout=60) as b:
            # a nonce from A, the login at B; the session works at both
            patient_signer = LocalKeySigner.generate()
            token = sign_in_at(nonce_from=a, login_at=b, signer=patient_signer)
            patient_a = HttpPatient(signer=patient_signer, chain=chain_env.chain, http=a,
                                    token=token)
            patient_b = HttpPatient(signer=patient_signer, chain=chain_env.chain, http=b,
                                    token=token, _keys=patient_a.keys)
            assert b.get("/auth/me", headers=patient_a.auth).status_code == 200

            # a record uploaded at A is listed at B
            sealed = patient_a.add(b"lab", label=LAB, content_type="text/plain")
            assert [r["record_id"] for r in patient_b.get("/patient/records").json()] == \
                [hx(sealed.record_id)]

            provider_signer = LocalKeySigner.generate()
            provider_a = HttpProvider(signer=provider_signer, chain=chain_env.chain, http=a)
            chain_env.add_provider(provider_signer, provider_a.keys.public_key.to_bytes())
            provider_a.login()
            provider_b = HttpProvider(signer=provider_signer, chain=chain_env.chain, http=b,
                                      token=provider_a.token, _keys=provider_a.keys)

            # the grant made at B (its key fragments in the shared db) serves reads at A
            answer = patient_b.grant(provider_a.address, provider_a.keys.public_key, [LAB])
            assert answer.status_code == 200, answer.text
            assert provider_a.read(patient_a.address, sealed) == b"lab"
            # a request served at A is a replay at B
            body = provider_a.read_request(patient_a.address, sealed.record_id)
            assert provider_a.post("/provider/reads", body).status_code == 200
            assert provider_b.post("/provider/reads", body).status_code == 403
            # the receipts of both are one list
            assert len(patient_b.get("/patient/reads").json()) == 2
            # a revoke at A refuses the next read at B
            assert patient_a.revoke(provider_a.address, LAB).status_code == 200
            assert provider_b.request_read(patient_a.address, sealed.record_id).status_code \
                == 403
            # logging out at B ends the session at A
            assert b.post("/auth/logout", headers=patient_a.auth).status_code == 204
            assert a.get("/auth/me", headers=patient_a.auth).status_code == 401
    finally:
        for server in servers:
            server.stop()
