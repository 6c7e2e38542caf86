"""Issue #15, finding 7: the FHIR proxy and the API answer only the names they are reached by.

A web page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 (DNS rebinding) makes
the victim's browser send requests to a loopback service with ``Host: evil.example:PORT`` and
lets the page read the answers. The FHIR proxy serves decrypted records without
authentication, so such a page could read them. Now both refuse an unknown ``Host`` (421) and
serve the right one (127.0.0.1 / localhost / [::1]; configured names).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from participants import signed_in_provider

from kizuna.chain.connection import Chain
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.provider import ProviderClient
from kizuna.fhirproxy import GrantedCache, ProxyServer

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test its own
wallets (the proxy's refusals a world with records to leak); the setting's test starts its own
APIs."""

EVIL = ("evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
        "localhost.evil.example", "127.0.0.1@evil.example:{port}", "")


def hosts(template: tuple[str, ...], port: int) -> list[str]:
    return [h.format(port=port) for h in template]


@contextmanager
def _provider_over_http(url: str, signer: LocalKeySigner, chain: Chain) -> Iterator[ProviderClient]:
    """A provider's client as the FHIR proxy runs it: signed in to the real API at ``url``."""
    api = ApiClient(url)
    api.login(signer)
    try:
        yield ProviderClient(signer=signer, service=ApiService(api, chain), chain=chain)
    finally:
        api.close()


@pytest.fixture
def proxy(world: Any) -> Iterator[ProxyServer]:
    """The provider's real FHIR proxy (port 0: a free one) over the real API, with grants."""
    with _provider_over_http(world.server.url, world.provider.signer, world.env.chain) as client, \
            ProxyServer(GrantedCache(client, ttl_s=60), port=0) as server:
        yield server


def test_fhir_proxy_refuses_other_hosts(proxy: ProxyServer) -> None:
    with httpx.Client(base_url=proxy.url, timeout=60) as client:
        right = client.get("/Observation")
        assert right.status_code == 200, right.text
        assert right.json()["total"] > 0  # decrypted records are served to the right host
        for host in hosts(("localhost:{port}", "[::1]:{port}", "127.0.0.1:{port}"), proxy.port):
            assert client.get("/metadata", headers={"Host": host}).status_code == 200, host
        for host in hosts(EVIL, proxy.port):
            for path in ("/Observation", "/Condition", "/metadata"):
                answer = client.get(path, headers={"Host": host})
                assert answer.status_code == 421, (host, path, answer.text[:300])
                body = answer.json()
                assert body["resourceType"] == "OperationOutcome"
                assert "entry" not in body and "Observation" not in answer.text


def test_fhir_proxy_allows_configured_names(chain_env: ChainEnv, api_server: ApiServer,
                                            http: httpx.Client) -> None:
    """Only the names are checked here (``/metadata``): a registered provider, no records."""
    provider = signed_in_provider(chain_env, http)
    with _provider_over_http(api_server.url, provider.signer, chain_env.chain) as client, \
            ProxyServer(GrantedCache(client, ttl_s=60), port=0,
                        extra_hosts=["fhir.clinic.internal"]) as server, \
            httpx.Client(base_url=server.url, timeout=60) as proxied:
        assert proxied.get("/metadata",
                           headers={"Host": "fhir.clinic.internal"}).status_code == 200
        assert proxied.get("/metadata", headers={"Host": "evil.example"}).status_code == 421


def test_api_on_loopback_refuses_other_hosts(api_server: ApiServer, http: httpx.Client) -> None:
    port = api_server.settings.api_port
    for host in hosts(("127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"), port):
        assert http.get("/health", headers={"Host": host}).status_code == 200, host
    for host in hosts(EVIL, port):
        for method, path in (("GET", "/health"), ("GET", "/auth/nonce"),
                             ("POST", "/auth/login"), ("GET", "/patient/records")):
            answer = http.request(method, path, headers={"Host": host})
            assert answer.status_code == 421, (host, path, answer.text)
            assert answer.json()["error"]["field"] == "Host"


def test_api_allowed_hosts_setting(fresh_stack: None, start_api: object) -> None:
    """Configured names are answered; behind a load balancer (bound to all interfaces) with
    names configured, only those."""
    server = start_api(allowed_hosts="kizuna.example, *.kizuna.example")  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        port = server.settings.api_port
        for host in ("kizuna.example", "api.kizuna.example:443", f"127.0.0.1:{port}"):
            assert client.get("/health", headers={"Host": host}).status_code == 200, host
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 421
    exposed = start_api(api_host="0.0.0.0", allowed_hosts="kizuna.example")  # type: ignore[operator]
    with httpx.Client(base_url=exposed.url, timeout=30) as client:
        assert client.get("/health", headers={"Host": "kizuna.example"}).status_code == 200
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 421
