"""SIWE sign-in over the API: a good login, and every way a login must fail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apienv import ChainEnv, bearer, own_module_settings, sign_in, sign_text, siwe_message
from fastapi.testclient import TestClient

from kizuna.api.app import create_app
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.services.context import ServiceContext

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""A deployment of the module's own (tests/api/apienv.py, shares_stack): each test signs in its
own wallets, on an app in process with settings and a database of the module's own
(``module_settings``), not the database a running API serves."""


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_module_settings(module_chain_env, tmp_path_factory)


@pytest.fixture
def client(settings: Settings, ctx: ServiceContext) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, with_services=False)
    with TestClient(app, base_url=f"http://127.0.0.1:{settings.api_port}") as test_client:
        yield test_client


def _message(client: TestClient, signer: LocalKeySigner, **changes: object) -> str:
    info = client.get("/auth/nonce").json()
    fields: dict[str, object] = dict(address=signer.address, domain=info["domain"],
                                     uri=info["uri"], chain_id=info["chain_id"],
                                     nonce=info["nonce"])
    fields.update(changes)
    return siwe_message(**fields)  # type: ignore[arg-type]


def _login(client: TestClient, signer: LocalKeySigner, text: str) -> tuple[int, dict[str, object]]:
    answer = client.post("/auth/login",
                         json={"message": text, "signature": sign_text(signer, text)})
    return answer.status_code, answer.json()


def test_login_gives_a_session_with_chain_roles(client: TestClient, chain_env: ChainEnv) -> None:
    patient = LocalKeySigner.generate()
    body = sign_in(client, patient)
    assert body["address"] == patient.address
    assert body["roles"] == ["patient"]
    me = client.get("/auth/me", headers=bearer(str(body["token"])))
    assert me.status_code == 200 and me.json()["address"] == patient.address
    # the database keeps no token in clear
    assert client.get("/auth/me", headers=bearer(str(body["token"]) + "x")).status_code == 401


def test_provider_and_auditor_roles_come_from_the_chain(client: TestClient,
                                                         chain_env: ChainEnv) -> None:
    provider = chain_env.new_signer(funded=False)
    chain_env.add_provider(provider, b"\x02" + b"\x01" * 32)
    auditor = LocalKeySigner.generate()
    chain_env.grant_auditor(auditor.address)
    assert sign_in(client, provider)["roles"] == ["patient", "provider"]
    assert sign_in(client, auditor)["roles"] == ["patient", "auditor"]


def test_replayed_login_is_refused(client: TestClient) -> None:
    signer = LocalKeySigner.generate()
    text = _message(client, signer)
    assert _login(client, signer, text)[0] == 200
    status, body = _login(client, signer, text)
    assert status == 401
    assert "nonce" in str(body["error"]["message"])  # type: ignore[index]


def test_expired_message_is_refused(client: TestClient) -> None:
    signer = LocalKeySigner.generate()
    text = _message(client, signer, expiration=datetime.now(UTC) - timedelta(seconds=5),
                    issued_at=datetime.now(UTC) - timedelta(seconds=60))
    status, body = _login(client, signer, text)
    assert status == 401 and "expired" in str(body["error"]["message"])  # type: ignore[index]


def test_old_message_is_refused(client: TestClient) -> None:
    signer = LocalKeySigner.generate()
    text = _message(client, signer, issued_at=datetime.now(UTC) - timedelta(hours=2))
    assert _login(client, signer, text)[0] == 401


@pytest.mark.parametrize("change", [{"domain": "evil.example"},
                                    {"uri": "https://evil.example/"},
                                    {"chain_id": 1},
                                    {"nonce": "unknownnonce12345"}])
def test_wrong_domain_uri_chain_or_nonce_is_refused(client: TestClient,
                                                    change: dict[str, object]) -> None:
    signer = LocalKeySigner.generate()
    status, body = _login(client, signer, _message(client, signer, **change))
    assert status == 401, body


def test_signature_of_another_key_is_refused(client: TestClient) -> None:
    signer, other = LocalKeySigner.generate(), LocalKeySigner.generate()
    text = _message(client, signer)
    answer = client.post("/auth/login", json={"message": text, "signature": sign_text(other, text)})
    assert answer.status_code == 401


def test_garbage_is_422_with_the_field(client: TestClient) -> None:
    answer = client.post("/auth/login", json={"message": "hello", "signature": "0x00"})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "message"
    answer = client.post("/auth/login", json={"message": "x", "signature": "nothex"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "signature"


def test_no_token_is_401(client: TestClient) -> None:
    answer = client.get("/auth/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_logout_ends_the_session(client: TestClient) -> None:
    token = str(sign_in(client, LocalKeySigner.generate())["token"])
    assert client.post("/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/auth/me", headers=bearer(token)).status_code == 401


def test_health_and_version(client: TestClient, chain_env: ChainEnv) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["chain_id"] == chain_env.deployment.chain_id
    assert client.get("/version").json()["contracts"]["ConsentLedger"] == \
        chain_env.deployment.consent_ledger


def test_status_needs_a_signed_in_session(client: TestClient) -> None:
    """/health and /version stay public; the process figures of /status need a session (any
    role: a plain patient will do), and a logged-out token no longer opens them."""
    anonymous = client.get("/status")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert client.get("/status", headers=bearer("not-a-token")).status_code == 401
    token = str(sign_in(client, LocalKeySigner.generate())["token"])
    status = client.get("/status", headers=bearer(token))
    assert status.status_code == 200, status.text
    figures = status.json()
    assert figures["pid"] > 0 and figures["peak_rss_mib"] >= figures["rss_mib"] > 0
    client.post("/auth/logout", headers=bearer(token))
    assert client.get("/status", headers=bearer(token)).status_code == 401
    assert client.get("/version").status_code == 200
