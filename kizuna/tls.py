"""How Kizuna verifies the servers it talks to, and the one way it opens an HTTP client.

One rule for every outgoing connection (the API client, the IPFS RPC, proxy nodes, a FHIR
server, the chain's JSON-RPC, readiness probes): an ``https`` server is verified against
``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when the environment names one, else certifi's CA bundle,
with its host name checked (httpx's own default). A plain ``http`` address has no TLS to verify:
its client gets a context that trusts no CA at all, so a redirect to an ``https`` address fails
its handshake rather than going unverified.

Each context is built once per process and shared. Loading a CA bundle costs ~30-40 ms of CPU,
and httpx builds a context for every client it makes, whether or not the client ever speaks
TLS: a command that opened three clients, or a probe that polled a starting server with
``httpx.get``, paid it each time. A shared ``SSLContext`` is safe across clients and threads;
httpcore sets its ALPN list on it before each handshake, the same ``http/1.1`` for every
Kizuna client (none speaks HTTP/2).
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


@functools.cache
def verifying_context() -> ssl.SSLContext:
    """The process's context for ``https``: CA bundle as httpx picks it, host names checked."""
    import httpx  # here: the chain's JSON-RPC client uses this module without httpx

    return httpx.create_ssl_context()


@functools.cache
def _trusting_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no CA


def context_for(url: str) -> ssl.SSLContext:
    """The context a client that talks to ``url`` verifies TLS with (see the module doc)."""
    if url.lower().startswith("http://"):
        return _trusting_nothing()
    return verifying_context()


def http_client(url: str, *, base: bool = False, **options: Any) -> httpx.Client:
    """An httpx client for talking to ``url`` (its ``base_url`` when ``base``), with the context
    :func:`context_for` gives; ``options`` go to ``httpx.Client``. A client that talks to
    several servers (proxy nodes) passes ``""``: verified, as for ``https``."""
    import httpx

    if base:
        options["base_url"] = url
    return httpx.Client(verify=context_for(url), **options)
