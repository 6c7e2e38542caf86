"""The ``Host`` header check shared by the API and the FHIR proxy (DNS rebinding).

A page on ``evil.example`` whose name an attacker re-points at 127.0.0.1 makes the victim's
browser send its requests to a loopback service with ``Host: evil.example:PORT``; the browser
then lets that page read the answers (same origin, as far as it knows). A service on loopback
that answers only the names it is really reached by (``127.0.0.1``, ``localhost``, ``[::1]``
and names the operator configures) gives such a page nothing: its requests carry
the attacker's name and are refused before any route runs.

Entries are ``name`` (any port), ``name:port``, ``[v6]`` / ``[v6]:port``, ``*.domain`` (any
subdomain, any port) or ``*`` (no check). Only Starlette is imported: the FHIR proxy uses this
without the API's FastAPI stack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the settings' host check runs in every CLI command
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` value (lower case, IPv6 without brackets), or ``None``
    when it is not one (empty, bad port, unbracketed IPv6, ...)."""
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[1:end], text[end + 1:]
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
    if not name or any(c in name for c in "/@ \t"):
        return None
    if not rest:
        return name, None
    if rest[:1] != ":" or not rest[1:].isdigit() or len(rest) > 6:
        return None
    port = int(rest[1:])
    return (name, port) if port <= 65535 else None


def is_loopback(host: str) -> bool:
    """Whether a listen address is the loopback interface (``127.0.0.0/8``, ``::1``,
    ``localhost``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""The names a loopback service is reached by, on any port: a rebinding page cannot send them
(its requests carry its own name), so the port adds nothing and a client reaching the service
through a local port forward still gets in."""


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """A parsed list of allowed ``Host`` entries (see the module docstring)."""

    entries: tuple[tuple[str, int | None], ...]
    any_host: bool = False

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowedHosts:
        """Parse ``entries``; ``ValueError`` naming the first that is no host."""
        parsed: list[tuple[str, int | None]] = []
        any_host = False
        for entry in entries:
            if entry.strip() == "*":
                any_host = True
                continue
            host = split_host(entry)
            if host is None:
                raise ValueError(f"{entry!r} is not a host name, host:port or [IPv6]:port")
            parsed.append(host)
        return cls(tuple(parsed), any_host)

    def allows(self, header: str) -> bool:
        if self.any_host:
            return True
        host = split_host(header)
        if host is None:
            return False
        name, port = host
        for allowed, allowed_port in self.entries:
            if allowed_port is not None and allowed_port != port:
                continue
            if allowed == name or (allowed.startswith("*.") and name.endswith(allowed[1:])):
                return True
        return False


class HostCheck:
    """ASGI middleware: HTTP requests whose ``Host`` is not allowed (or that have none) get
    ``refuse(host)`` (a 4xx response) and never reach the app (neither app has WebSockets)."""

    def __init__(self, app: ASGIApp, *, allowed: AllowedHosts,
                 refuse: Callable[[str], Response]) -> None:
        self.app = app
        self.allowed = allowed
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allowed.any_host:
            await self.app(scope, receive, send)
            return
        header = ""
        for key, value in scope["headers"]:
            if key == b"host":
                header = value.decode("latin-1")
                break
        if self.allowed.allows(header):
            await self.app(scope, receive, send)
            return
        await self.refuse(header)(scope, receive, send)


__all__ = ["LOOPBACK_HOSTS", "AllowedHosts", "HostCheck", "is_loopback", "split_host"]
