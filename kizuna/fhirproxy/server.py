"""Serving the proxy: uvicorn on the loopback interface only.

The proxy answers decrypted health data without any authentication of its own — its only
protection is that no other machine can reach it. So it binds ``127.0.0.1`` (or ``::1``) and
refuses any other host, and it answers only requests addressed to 127.0.0.1, localhost or
[::1] (the ``Host`` header: a web page under another name re-pointed at 127.0.0.1 must not
read it); to share it, put an authenticating reverse proxy in front (docs).
:class:`ProxyServer` runs it on a thread (tests, embedding) with a real port (``port=0`` picks a
free one); :meth:`ProxyServer.run` runs it in the foreground (the CLI).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType

import uvicorn

from kizuna.errors import ConflictError, InputError
from kizuna.fhirproxy.app import create_app
from kizuna.fhirproxy.cache import GrantedCache
from kizuna.hosts import LOOPBACK_HOSTS

LOOPBACK = frozenset({"127.0.0.1", "::1"})
DEFAULT_PORT = 8090


class _Server(uvicorn.Server):
    """uvicorn's server, except that Ctrl-C / SIGTERM end :meth:`ProxyServer.run` normally
    (uvicorn re-raises the signal after its graceful shutdown: the command would then end as
    interrupted, or be killed by SIGTERM, instead of exiting 0 as ``kizuna up`` does)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True


class ProxyServer:
    """The FHIR proxy of one provider, bound to the loopback interface."""

    def __init__(self, cache: GrantedCache, *, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, extra_hosts: Sequence[str] = ()) -> None:
        if host not in LOOPBACK:
            raise InputError("host", f"{host!r}: the FHIR proxy serves decrypted data without "
                                     "authentication, so it binds 127.0.0.1 or ::1 only")
        if not 0 <= port <= 65535:
            raise InputError("port", f"{port} is not a TCP port")
        self.cache = cache
        self.host = host
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        # Only the names this socket is reached by (a browser page under another name that
        # resolves here — DNS rebinding — is refused), plus the operator's --allow-host names.
        try:
            app = create_app(cache, allowed_hosts=[*LOOPBACK_HOSTS, *extra_hosts])
        except ValueError as exc:
            self._socket.close()
            raise InputError("allow-host", str(exc)) from None
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def bound_address(self) -> str:
        """The address the listening socket is bound to (what the tests check)."""
        return str(self._socket.getsockname()[0])

    def run(self) -> None:
        """Serve in the foreground until interrupted; forget the decrypted data afterwards."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.cache.clear()
            self._socket.close()

    def start(self) -> ProxyServer:
        """Serve on a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="kizuna-fhir-proxy", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the FHIR proxy did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._socket.close()
        self.cache.clear()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConflictError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


__all__ = ["DEFAULT_PORT", "LOOPBACK", "ProxyServer"]
