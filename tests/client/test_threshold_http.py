"""The provider's requests to proxy nodes (kizuna/client/threshold.py ``_post``) share one
HTTP client: kept-alive connections, not a new client (its TLS context, ~26 ms of CPU) and a
new connection for each of a threshold read's requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from kizuna.client.threshold import ProxyNodeError, _post


class _Node(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    connections: ClassVar[set[int]] = set()

    def do_POST(self) -> None:
        _Node.connections.add(self.client_address[1])
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = 200 if body.get("ok") else 403
        answer = json.dumps({"echo": body} if status == 200
                            else {"error": {"message": "refused here"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Node.connections = set()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_requests_to_a_node_reuse_one_connection(node: str) -> None:
    for i in range(5):
        assert _post(node, "/node/reads", {"ok": True, "i": i}, timeout_s=5) == {
            "echo": {"ok": True, "i": i}}
    assert len(_Node.connections) == 1


def test_a_refusal_is_still_the_nodes_error(node: str) -> None:
    with pytest.raises(ProxyNodeError, match=r"refused \(403\): refused here") as caught:
        _post(node, "/node/reads", {"ok": False}, timeout_s=5)
    assert caught.value.status == 403
