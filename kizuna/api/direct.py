"""``served_by``: a route whose requests go straight to one ASGI-style handler.

The signed read routes (the service's ``POST /provider/reads``, a proxy node's ``POST
/node/reads``) are the hottest of all: their body is parsed and checked once, by
:func:`~kizuna.receipts.request.parse_signed_read`, not by pydantic and then again, and no
dependency is solved. The route is still declared with a documenting endpoint (``body: ReadIn``
→ ``ReadOut``): that makes its OpenAPI entry and marks it as a route with a JSON body, so
:class:`kizuna.api.limits.BodyLimits` bounds the body's size and depth before the handler
reads it. The documenting endpoint itself never runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from kizuna.errors import InputError
from kizuna.receipts.request import ReadRequest, parse_signed_read

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def served_by(handler: Handler) -> type[APIRoute]:
    """An :class:`APIRoute` class (for ``route_class_override``) that serves with ``handler``."""

    class DirectRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            return handler

    DirectRoute.__name__ = DirectRoute.__qualname__ = f"DirectRoute[{handler.__name__}]"
    return DirectRoute


async def signed_read(http: Request) -> tuple[ReadRequest, bytes]:
    """The signed read request and its signature from a read route's JSON body (``InputError``
    naming the field; the body's size and depth were bounded before, by ``BodyLimits``)."""
    if not http.headers.get("content-type", "").startswith("application/json"):
        raise InputError("body", "must be JSON (Content-Type: application/json)")
    return parse_signed_read(await http.body())


__all__ = ["Handler", "served_by", "signed_read"]
