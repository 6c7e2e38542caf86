"""``kizuna proxy serve`` as an operator runs it: in production, with no KIZUNA_SESSION_SECRET (a
node signs no one in: the provider's signed request authenticates each read), answering CORS for
the web pages named with ``--allow-origin`` and for no other origin; ``*`` or a URL that is not
an origin is refused at start with a message naming the option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from proxynode_harness import start_node

from kizuna.chain.agents.proxies import node_origin
from kizuna.config import DEFAULT_MAX_JSON_BODY_BYTES
from kizuna.errors import InputError
from kizuna.proxynode.server import checked_origins
from kizuna.stack.children import wait_healthy

pytestmark = pytest.mark.anvil

PAGE = "https://kizuna.example"


def test_a_production_node_needs_no_session_secret_and_answers_cors_for_its_pages(
        node_stack: object, tmp_path: Path) -> None:
    node = start_node(node_stack, tmp_path, "prod", environment="production",
                      args=("--allow-origin", PAGE, "--allow-origin", "http://127.0.0.1:8000"))
    try:
        wait_healthy(lambda: node.process.poll() is None, node.endpoint, what="proxy node",
                     log_path=node.log_path, timeout_s=90, request_timeout_s=5)
        assert httpx.get(node.endpoint + "/health", timeout=10).json()["node"] == node.address
        preflight = httpx.options(node.endpoint + "/node/reads", timeout=10, headers={
            "Origin": PAGE, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PAGE
        assert "access-control-allow-credentials" not in preflight.headers
        # a refusal carries the header too: the page reads why the node refused
        refused = httpx.post(node.endpoint + "/node/reads", json={}, timeout=10,
                             headers={"Origin": PAGE})
        assert refused.status_code == 422
        assert refused.headers["access-control-allow-origin"] == PAGE
        other = httpx.options(node.endpoint + "/node/reads", timeout=10, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        _read_bodies_checked_once(node.endpoint)
    finally:
        if node.process.poll() is None:
            node.process.terminate()
            node.process.wait(10)


def _read_bodies_checked_once(endpoint: str) -> None:
    """The node parses a read's body as the service does (``parse_signed_read``): each bad
    part is a 422 naming its field; a body past the limit is a 413, CORS headers kept."""
    request = {"provider": "0x" + "11" * 20, "patient": "0x" + "22" * 20,
               "recordId": "0x" + "33" * 32, "requestId": "0x" + "44" * 32, "issuedAt": "1"}
    bad: list[tuple[object, str]] = [
        ({"request": request}, "signature"),
        ({"request": request, "signature": "0xzz"}, "signature"),
        ({"request": {**request, "patient": "0x12"}, "signature": "0x00"}, "patient"),
        ({"request": {**request, "issuedAt": "soon"}, "signature": "0x00"}, "issuedAt"),
        ({"request": request, "signature": "0x00", "extra": 1}, "extra"),
        ([request], "body"),
    ]
    for body, field in bad:
        answer = httpx.post(endpoint + "/node/reads", json=body, timeout=10,
                            headers={"Origin": PAGE})
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["field"] == field, (body, answer.text)
        assert answer.headers["access-control-allow-origin"] == PAGE
    as_text = httpx.post(endpoint + "/node/reads", content=b"{}", timeout=10,
                         headers={"content-type": "text/plain"})
    assert (as_text.status_code, as_text.json()["error"]["field"]) == (422, "body")
    huge = httpx.post(endpoint + "/node/reads", timeout=30, headers={
        "Origin": PAGE, "content-type": "application/json"},
        content=b'{"signature":"' + b"0" * (DEFAULT_MAX_JSON_BODY_BYTES + 1) + b'"}')
    assert huge.status_code == 413, huge.text[:300]
    assert huge.headers["access-control-allow-origin"] == PAGE


@pytest.mark.parametrize("origin", ["*", "https://kizuna.example/app", "kizuna.example",
                                    "https://Kizuna.example", "javascript:alert(1)"])
def test_an_allowed_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(InputError, match="allow_origin"):
        checked_origins([origin])


def test_a_star_origin_stops_the_node_at_start(node_stack: object, tmp_path: Path) -> None:
    node = start_node(node_stack, tmp_path, "star", args=("--allow-origin", "*"))
    try:
        code = node.process.wait(60)
    except subprocess.TimeoutExpired:
        node.kill()
        raise
    assert code != 0
    assert "allow_origin" in node.log_path.read_text()


@pytest.mark.parametrize(("endpoint", "origin"), [
    ("http://127.0.0.1:8801", "http://127.0.0.1:8801"),
    ("https://Node1.Example:8443/kizuna/", "https://node1.example:8443"),
    ("http://[::1]:8801", "http://[::1]:8801"),
    ("http://a;b", None), ("http://x' *", None), ("http://*.example", None),
    ("ftp://node.example", None), ("http://user:pw@node.example", None),
    ("http://node.example:99999", None), ("node.example:8801", None),
])
def test_a_registered_endpoint_gives_the_page_a_checked_origin(endpoint: str,
                                                                origin: str | None) -> None:
    """What the page's connect-src may list (and web/src/provider/threshold.ts nodeOrigin
    applies the same rule): never anything that could write another CSP directive."""
    assert node_origin(endpoint) == origin
