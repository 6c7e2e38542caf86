"""What a request must satisfy before any route parses it: a known ``Host``, and a JSON body
of bounded size and depth. Installed on the app by :func:`install` (ASGI middlewares, so they
run before routing, sessions and FastAPI's body parsing, for every route).

* **Size.** A JSON body larger than ``max_json_body_bytes`` (1 MiB) is refused with 413 — at
  once when its ``Content-Length`` says so, else as soon as the bytes received pass the limit
  (a chunked body is counted as it arrives), so memory never holds more than the limit. Before
  this an anonymous 76 MiB body grew the server from 152 to 610 MiB.
* **Depth.** A body nested deeper than :data:`kizuna.jsondepth.MAX_JSON_DEPTH` is refused with
  422 before it is decoded: ~100,000 nested ``[`` crashed the whole process in the C JSON decoder
  (see :mod:`kizuna._limits`).
* **Host.** See :mod:`kizuna.hosts`: bound to loopback, the API answers only its loopback
  names, the SIWE domain and ``allowed_hosts``; bound elsewhere, ``allowed_hosts`` when set.

Routes that take a raw body (a streamed envelope: record uploads, care messages; they declare
no JSON body) are left to :func:`kizuna.api.streaming.consume_body`, which counts their bytes
against their own, larger limits (``max_upload_bytes``, 1 GiB) without holding them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette._utils import get_route_path  # the router's own: root_path taken off
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kizuna.api.errors import PayloadTooLarge, UnknownHost, error_response
from kizuna.api.streaming import check_declared_length
from kizuna.config import Settings
from kizuna.errors import InputError, KizunaError
from kizuna.hosts import LOOPBACK_HOSTS, AllowedHosts, HostCheck, is_loopback
from kizuna.jsondepth import MAX_JSON_DEPTH, nesting_exceeds

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_deep(body: bytes) -> bool:
    """Whether ``body`` nests deeper than :data:`MAX_JSON_DEPTH` as the JSON decoder would
    read it: bytes are decoded the way ``json.loads`` decodes them (UTF-8, -16 or -32, by
    the first bytes), so no encoding trick hides brackets. Undecodable bytes are left to the
    decoder, which refuses them before it parses anything."""
    if len(body) <= MAX_JSON_DEPTH:
        return False  # each level opens with a bracket, at least one byte in any encoding
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return False
    return nesting_exceeds(text, MAX_JSON_DEPTH)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute of ``routes``, inside included routers too (recent FastAPI keeps an
    included router as one lazy route holding ``original_router``; the app includes its
    routers without a prefix of their own, so the routes' paths are the served paths)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


class BodyLimits:
    """ASGI middleware: bodies of routes that parse JSON bounded in size while they arrive
    (413) and in depth before the route sees them (422); raw-body routes pass through."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._routes = routes  # the app's live list: routers are included after this is built
        self._raw: dict[str, tuple[re.Pattern[str], ...]] | None = None

    def _raw_paths(self) -> dict[str, tuple[re.Pattern[str], ...]]:
        """The path patterns of the raw-body routes, by method (built at the first request)."""
        if self._raw is None:
            by_method: dict[str, list[re.Pattern[str]]] = {}
            for route in _api_routes(self._routes):
                methods = (route.methods or set()) & _BODY_METHODS
                if route.body_field is None:
                    for method in methods:
                        by_method.setdefault(method, []).append(route.path_regex)
            self._raw = {method: tuple(paths) for method, paths in by_method.items()}
        return self._raw

    def _takes_raw_body(self, scope: Scope) -> bool:
        """Whether a raw-body route matches the request fully (path and method), as the
        router will match it: the route's own path pattern (Starlette's ``Route.matches``)."""
        paths = self._raw_paths().get(scope["method"])
        if not paths:
            return False
        path = get_route_path(scope)
        return any(pattern.match(path) for pattern in paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._takes_raw_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except KizunaError as exc:
            await error_response(exc)(scope, receive, send)
            return
        if body is None:
            return  # the client left before its body arrived: nobody to answer
        if body and too_deep(body):
            refused = InputError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            await error_response(refused)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: only the disconnect, for streaming answers

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or ``PayloadTooLarge`` as soon as it is known to pass the limit."""
        check_declared_length(Request(scope), self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(self.max_bytes)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def allowed_hosts(settings: Settings) -> AllowedHosts:
    """The ``Host`` values the API answers: bound to loopback, the loopback names, the SIWE
    domain and ``allowed_hosts``; bound elsewhere, those two when
    ``allowed_hosts`` is set, else any (the operator's load balancer decides)."""
    extra = settings.allowed_host_list()
    if not is_loopback(settings.api_host):
        if not extra:
            return AllowedHosts.of(["*"])
        return AllowedHosts.of([settings.siwe_domain, *extra])
    return AllowedHosts.of([*LOOPBACK_HOSTS, settings.siwe_domain, *extra])


def install(app: FastAPI, settings: Settings) -> None:
    """Add the host check (outermost) and the body limits to ``app``."""
    app.add_middleware(BodyLimits, max_bytes=settings.max_json_body_bytes,
                       routes=app.router.routes)
    app.add_middleware(HostCheck, allowed=allowed_hosts(settings),
                       refuse=lambda host: error_response(UnknownHost(host)))


__all__ = ["BodyLimits", "allowed_hosts", "install", "too_deep"]
