"""SMART Health Links on two instances of the service sharing one database (a SQLite file, and
PostgreSQL when it can be started here) and one content store: a passcode's guesses are counted
once across both, even when wrong guesses race at both at once — exactly ``max_attempts`` are
answered 401 (remainingAttempts 4, 3, 2, 1, 0, each once), every other is 404 locked, and the
right passcode is then refused at both; the access log at either lists them all."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from apienv import ApiServer, ChainEnv, settings_for
from shl_reader import payload_of

from kizuna.chain.localnode import free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.http import ApiClient
from kizuna.sharing.ips import build_ips
from kizuna.sharing.share import share

pytestmark = pytest.mark.anvil

PGSERVER = Path(__file__).resolve().parents[1] / "support" / "pgserver.py"
ATTEMPTS = 5


def _pgserver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kizuna_tests_pgserver_shl", PGSERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    pg = _pgserver()
    reason = pg.postgres_available()
    if reason:
        pytest.skip(reason)
    with pg.PostgresServer(tmp_path) as server:
        yield pg.fresh_database(server.url)


def test_passcode_guesses_are_counted_once_across_instances(
        chain_env: ChainEnv, tmp_path: Path, database_url: str,
        synthea_resources: list[dict[str, object]]) -> None:
    shared = dict(database_url=database_url, siwe_domain="kizuna.test",
                  siwe_uri="https://kizuna.test")
    servers = [ApiServer(settings=settings_for(chain_env, tmp_path, port=free_port(), **shared),
                         log_path=tmp_path / f"api-{i}.log") for i in range(2)]
    for server in servers:
        server.start()
    try:
        api = ApiClient(servers[0].url, timeout=60)
        api.login(LocalKeySigner("0x" + os.urandom(32).hex()))
        made = share(api, servers[0].url, [build_ips(synthea_resources)],
                     passcode="the-right-one", max_attempts=ATTEMPTS)
        path = payload_of(made.uri)["url"].removeprefix(servers[0].url)
        clients = [httpx.Client(base_url=s.url, timeout=60) for s in servers]

        def guess(i: int) -> httpx.Response:
            return clients[i % 2].post(path, json={"recipient": f"prober {i}",
                                                   "passcode": f"wrong-{i}"})

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(guess, range(3 * ATTEMPTS)))
        assert sorted(a.status_code for a in answers) == [401] * ATTEMPTS + [404] * (
            2 * ATTEMPTS)
        assert sorted(a.json()["remainingAttempts"] for a in answers
                      if a.status_code == 401) == list(range(ATTEMPTS))
        for client in clients:
            right = client.post(path, json={"recipient": "Dr. Tanaka",
                                            "passcode": "the-right-one"})
            assert right.status_code == 404 and "locked" in right.text
        # the other instance lists every access the first one recorded, and its own
        other = ApiClient(servers[1].url, timeout=60)
        other.http.headers["Authorization"] = f"Bearer {api.session.token}"  # type: ignore[union-attr]
        (link,) = other.links()
        outcomes = sorted(a["outcome"] for a in link["accesses"])
        assert outcomes == sorted(["wrong-passcode"] * ATTEMPTS
                                  + ["refused-locked"] * (2 * ATTEMPTS + 2))
        assert link["state"] == "locked" and link["attempts_left"] == 0
        for client in clients:
            client.close()
    finally:
        for server in servers:
            server.stop()
