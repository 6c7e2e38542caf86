"""One TLS rule for every outgoing connection (``kizuna.tls``): an ``https`` server is verified
(the environment's CA bundle, else certifi's), by the HTTP clients and the chain's JSON-RPC
client alike; a client for a plain ``http`` address loads no CA bundle and trusts nothing, so
an ``https`` request through it fails rather than going unverified; each context is built once
per process."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kizuna.chain.rpc import LeanRpc
from kizuna.client.http import ApiClient
from kizuna.errors import NodeUnreachable
from kizuna.tls import context_for, http_client, verifying_context


@pytest.fixture()
def fresh_contexts() -> Iterator[None]:
    """The contexts built again for the test's environment, and again after it."""
    verifying_context.cache_clear()
    yield
    verifying_context.cache_clear()


def test_a_plain_http_address_gets_a_context_that_trusts_no_ca() -> None:
    context = context_for("http://127.0.0.1:8000")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs() == []
    assert context_for("HTTP://localhost/") is context


def test_an_https_address_is_verified_with_a_ca_bundle_built_once(
        fresh_contexts: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = context_for("https://kizuna.example.org")
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 50  # certifi's bundle
    # every https client of the process (and one for several servers: "") shares it
    assert context_for("HTTPS://other.example.org/api") is context is verifying_context()
    assert context_for("") is context


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert_path, key_path = _self_signed(tmp_path)

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self) -> None:  # a JSON-RPC node's answer, for the chain's client
            asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps({"jsonrpc": "2.0", "id": asked["id"], "result": "0x7a69"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", cert_path
    finally:
        server.shutdown()
        server.server_close()


def test_a_ca_the_environment_names_is_trusted_by_every_client(
        tls_server: tuple[str, Path], fresh_contexts: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert_path = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with http_client(url) as client:
        assert client.get(url).text == "ok"
    rpc = LeanRpc(url)
    try:
        assert rpc.call("eth_chainId", []) == "0x7a69"
    finally:
        rpc.close()


def test_a_server_no_trusted_ca_signed_is_refused_by_every_client(
        tls_server: tuple[str, Path], fresh_contexts: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with http_client(url) as client, pytest.raises(httpx.ConnectError,
                                                   match="CERTIFICATE_VERIFY"):
        client.get(url)
    rpc = LeanRpc(url)
    try:
        with pytest.raises(NodeUnreachable):
            rpc.call("eth_chainId", [])
    finally:
        rpc.close()


def test_an_https_request_through_the_plain_http_client_fails_closed(
        tls_server: tuple[str, Path]) -> None:
    url, cert_path = tls_server
    # the server is real and answers whoever trusts its certificate ...
    trusting = ssl.create_default_context(cafile=str(cert_path))
    assert httpx.get(url, verify=trusting).text == "ok"
    # ... but the client built for a plain-http API trusts no CA: the handshake fails
    with ApiClient("http://127.0.0.1:9") as api, pytest.raises(httpx.ConnectError,
                                                                match="CERTIFICATE_VERIFY"):
        api.http.get(url)
