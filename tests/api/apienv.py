"""The API tests' environment: a deployment on a real anvil, settings pointing at it, SIWE
sign-in helpers, and :class:`ApiServer` — the real API under uvicorn in a subprocess on a free
port of 127.0.0.1 (started and stopped by the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import forked_cli
import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import siwe as siwe_lib

from kizuna.api.auth import AUDITOR_ROLE
from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import Deployment, deploy
from kizuna.chain.localnode import LocalNode, dev_private_keys, free_port
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.tls import http_client

ADMIN, RELAYER, FUNDER, ANCHORER = 0, 1, 2, 3
"""Which dev keys of the API tests' own anvil play which part (each key is used by one process
only, so no two processes race for an account's nonces)."""


@dataclass
class ChainEnv:
    node: LocalNode
    deployment: Deployment
    deployment_file: Path
    chain: Chain
    admin: LocalKeySigner
    relayer_key: str
    funder: LocalKeySigner

    def new_signer(self, *, funded: bool = True) -> LocalKeySigner:
        signer = LocalKeySigner.generate()
        if funded:
            self.fund(signer.address)
        return signer

    def fund(self, address: str) -> None:
        call = ContractCall(to=address, data=b"", value=10**18)
        self.chain.sender.transact(call, self.funder, gas=21_000)

    def add_provider(self, signer: LocalKeySigner, umbral_public_key: bytes) -> None:
        self.chain.registry.add_provider(signer.address, umbral_public_key, b"\x11" * 32,
                                         signer=self.admin)

    def grant_auditor(self, account: str) -> None:
        """``grantRole(KIZUNA_AUDITOR_ROLE, account)`` on AccessLog (the admin's call)."""
        access_log = self.chain.contract("AccessLog")
        data = access_log.encode_abi("grantRole", args=[AUDITOR_ROLE, account])
        self.chain.sender.transact(ContractCall(to=access_log.address,
                                                data=bytes.fromhex(data[2:])), self.admin)


def deploy_env(node: LocalNode, directory: Path) -> ChainEnv:
    keys = dev_private_keys(4)
    w3 = web3_for(node.rpc_url)
    deployment = deploy(w3, Account.from_key(keys[ADMIN]), directory=directory,
                        anchorer=Account.from_key(keys[ANCHORER]).address)
    chain = connect(node.rpc_url, deployment)
    return ChainEnv(node=node, deployment=deployment,
                    deployment_file=directory / f"{deployment.chain_id}.json", chain=chain,
                    admin=LocalKeySigner(keys[ADMIN]), relayer_key=keys[RELAYER],
                    funder=LocalKeySigner(keys[FUNDER]))


def shares_stack(request: pytest.FixtureRequest) -> bool:
    """Whether this test runs on the shared deployment and API (tests/api and
    tests/adversarial: a module that sets ``SHARED_STACK = True``) rather than a fresh pair.

    An API start costs ~2 CPU-s, so the modules whose tests need no fresh state (each makes
    its own wallets, counts nothing of the whole deployment, changes no setting and stops no
    server for good) share one deployment and one API per folder and worker
    (tests/api/stack_fixtures.py); a test of them that does need its own asks for the
    ``fresh_stack`` fixture, a module that needs settings of its own overrides
    ``module_settings``."""
    return (bool(getattr(request.module, "SHARED_STACK", False))
            and "fresh_stack" not in request.fixturenames)


def shared_server(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """The shared API (or its module's own) for one test; started again after a test that
    left it dead (a crash that test then reports), so the next test's outcome is its own."""
    server: ApiServer = request.getfixturevalue("module_api_server")
    yield server
    if server.process is None or server.process.poll() is not None:
        server.stop()
        server.start()


def settings_for(env: ChainEnv, data: Path, *, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        environment="development",
        rpc_url=env.node.rpc_url,
        deployment_file=env.deployment_file,
        store="embedded",
        store_path=data / "store",
        database_url=f"sqlite:///{data / 'service.sqlite3'}",
        api_port=port,
        siwe_domain=f"127.0.0.1:{port}",
        siwe_uri=f"http://127.0.0.1:{port}",
        relayer_key=env.relayer_key,
        anchorer_key=dev_private_keys(4)[ANCHORER],
        anchor_interval_s=3600.0,
    )
    values.update(overrides)
    return Settings(**values)


def own_module_settings(env: ChainEnv, factory: pytest.TempPathFactory,
                        **overrides: Any) -> Settings:
    """Settings of a ``SHARED_STACK`` module's own on ``env`` (what its ``module_settings``
    override returns): its own data folder, port and ``overrides``; the stack fixtures then
    give the module a deployment and an API of its own, not the shared ones."""
    return settings_for(env, factory.mktemp("module-data"), port=free_port(), **overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``KIZUNA_*`` variables (for a subprocess)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"KIZUNA_{name.upper()}"] = text
    return env


def siwe_message(*, address: str, domain: str, uri: str, chain_id: int, nonce: str,
                 issued_at: datetime | None = None,
                 expiration: datetime | None = None) -> str:
    issued = issued_at or datetime.now(UTC)
    fields: dict[str, Any] = dict(
        domain=domain, address=address, uri=uri, version="1", chain_id=chain_id, nonce=nonce,
        issued_at=issued.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        statement="Sign in to Kizuna.")
    if expiration is not None:
        fields["expiration_time"] = expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(siwe_lib.SiweMessage(**fields).prepare_message())


def sign_text(signer: LocalKeySigner, text: str) -> str:
    return "0x" + bytes(signer.sign_message(text)).hex()


def sign_in(client: httpx.Client, signer: LocalKeySigner, **message: Any) -> dict[str, Any]:
    """Sign in over HTTP; the login answer (token, roles, ...)."""
    info = client.get("/auth/nonce").json()
    text = siwe_message(address=signer.address, domain=info["domain"], uri=info["uri"],
                        chain_id=info["chain_id"], nonce=info["nonce"], **message)
    answer = client.post("/auth/login", json={"message": text,
                                              "signature": sign_text(signer, text)})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ApiServer:
    """``kizuna serve`` in a process of its own, on its own port; stop() sends SIGTERM."""

    settings: Settings
    log_path: Path
    process: forked_cli.ForkedProcess | subprocess.Popen[bytes] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    fresh: bool = False
    """A new interpreter (``python -c``), for a test of what the server imports itself."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, timeout: float = 60.0, wait_healthy: bool = True) -> ApiServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
        # A home of its own per server, never the user's ~/.kizuna (what the settings leave
        # unset, e.g. the event index's file, defaults into the home).
        env["KIZUNA_HOME"] = str(self.log_path.with_suffix(".home"))
        env.update(settings_env(self.settings))
        env.update(self.extra_env)
        # Forked from the worker's zygote, which has imported the server already
        # (tests/support/forked_cli.py): ~1.5 CPU-s less than a new interpreter, per start.
        command = ["serve", "--log-level", "warning"]
        with self.log_path.open("ab") as log:
            if self.fresh:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", "from kizuna.cli.main import main; main()",
                     *command], env=env, stdout=log, stderr=subprocess.STDOUT)
            else:
                self.process = forked_cli.start(command, env=env, stdout=log.fileno(),
                                                stderr=log.fileno())
        deadline = time.monotonic() + timeout
        with http_client(self.url, timeout=5) as probe:  # one for every poll
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the API exited: {self.log_path.read_text()[-3000:]}")
                try:
                    answer = probe.get(self.url + "/version", timeout=2)
                    if answer.status_code == 200 and (not wait_healthy or probe.get(
                            self.url + "/health").status_code == 200):
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL): a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def proc_status(self, key: str) -> float:
        """A ``/proc/<pid>/status`` figure in MiB (``VmHWM``, ``VmRSS``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(key)


def expired(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def recover(text: str, signature: str) -> str:
    return str(Account.recover_message(encode_defunct(text=text), signature=signature))


__all__ = ["ApiServer", "ChainEnv", "bearer", "deploy_env", "free_port", "own_module_settings",
           "settings_for", "shared_server", "shares_stack", "sign_in", "siwe_message"]


def sign_in_at(*, nonce_from: httpx.Client, login_at: httpx.Client,
               signer: LocalKeySigner) -> str:
    """A nonce from one instance, the login at another: the session token."""
    info = nonce_from.get("/auth/nonce").json()
    text = siwe_message(address=signer.address, domain=info["domain"], uri=info["uri"],
                        chain_id=info["chain_id"], nonce=info["nonce"])
    answer = login_at.post("/auth/login", json={"message": text,
                                                "signature": sign_text(signer, text)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])
