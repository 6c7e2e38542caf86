"""Fixtures for the content-store tests: a real js-ipfs daemon, deterministic data, and small
misbehaving HTTP servers (a node answering garbage, a node lying about content)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.ipfs import IpfsStore
from kizuna.storage.localipfs import LocalIpfsNode


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIpfsNode]:
    """A real IPFS daemon (npm ipfs@0.66.1) on free ports of 127.0.0.1, for the session."""
    log = tmp_path_factory.mktemp("ipfs") / "jsipfs.log"
    with LocalIpfsNode(log_path=log) as node:
        yield node


@pytest.fixture
def ipfs_store(ipfs_node: LocalIpfsNode) -> Iterator[IpfsStore]:
    """The client, verifying CIDs and bytes; 'absent' is decided within 1 s."""
    with IpfsStore(ipfs_node.api_url, find_timeout_s=1.0) as store:
        yield store


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A fresh embedded store, deleted afterwards (some tests put 100 MB in it)."""
    store = EmbeddedStore(tmp_path / "store")
    yield store
    shutil.rmtree(store.root, ignore_errors=True)


class _Server:
    """A ThreadingHTTPServer on a free port of 127.0.0.1, running until the test ends."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _GarbageHandler(BaseHTTPRequestHandler):
    """200 OK with a body that is not the IPFS API's (HTML for /api/v0/version, text else)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        body = b"<html><body>It works!</body></html>" if "version" in self.path else b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """An HTTP server that answers every API call with 200 and a non-API body."""
    server = _Server(_GarbageHandler)
    yield server.url
    server.close()


@pytest.fixture
def not_http_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers any request with bytes that are not HTTP."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(b"\x00\x01garbage that is not HTTP at all\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


class _LyingHandler(BaseHTTPRequestHandler):
    """Speaks the API's shapes but lies: every add gets the empty file's CID, every cat
    returns bytes that are not the requested content."""

    LIE_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        if self.path.startswith("/api/v0/add"):
            body = b'{"Name":"data","Hash":"%s","Size":0}\n' % self.LIE_CID.encode()
        elif self.path.startswith("/api/v0/block/stat"):
            body = b'{"Key":"x","Size":1}'
        elif self.path.startswith("/api/v0/cat"):
            body = b"these are not the bytes you asked for"
        else:
            body = b'{"Version":"0.0.0-liar"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def lying_server() -> Iterator[str]:
    server = _Server(_LyingHandler)
    yield server.url
    server.close()
