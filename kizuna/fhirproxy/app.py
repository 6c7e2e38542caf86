"""The read-only FHIR R4 REST API over a :class:`~kizuna.fhirproxy.cache.GrantedCache`.

Routes (all ``GET``; anything else is 405): ``/metadata`` (CapabilityStatement),
``/{type}`` (search → ``Bundle`` of type ``searchset`` with ``total``, ``self`` / ``next`` /
``previous`` links and a ``fullUrl`` per entry) and ``/{type}/{id}`` (read). Answers are
``application/fhir+json``; errors are ``OperationOutcome`` s: 400 for a search the proxy does
not support, 404 for an unknown type or id, 503 when the Kizuna service cannot confirm the
grants (nothing is served from memory then).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kizuna import __version__
from kizuna.errors import InputError, KizunaError, NodeUnreachable, StoreUnavailable
from kizuna.fhirproxy.cache import GrantedCache
from kizuna.fhirproxy.search import (
    SEARCH_ELEMENTS,
    SearchError,
    parse_query,
    search,
    supported_parameters,
)
from kizuna.hosts import AllowedHosts, HostCheck

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"

_ABSTRACT = frozenset({"Resource", "DomainResource"})
_PARAM_TYPES = {"_id": "token", "identifier": "token", "_count": "number", "_offset": "number",
                "_format": "string", "patient": "reference", "subject": "reference", "date": "date",
                "code": "token", "category": "token"}


def fhir_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    status_code=status, media_type=FHIR_JSON)


def outcome(status: int, code: str, diagnostics: str, *,
            expression: str | None = None) -> Response:
    issue: dict[str, Any] = {"severity": "error" if status < 500 else "fatal", "code": code,
                             "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status)


def is_r4_type(name: str) -> bool:
    """Whether ``name`` is a concrete FHIR R4 resource type (not a data type, not abstract)."""
    if not name[:1].isupper() or not name.isalnum() or name in _ABSTRACT:
        return False
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        return False
    return issubclass(model, Resource)


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for name in sorted(SEARCH_ELEMENTS):
        resources.append({
            "type": name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": p, "type": _PARAM_TYPES[p]}
                            for p in supported_parameters(name)],
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": "instance",
        "software": {"name": "Kizuna FHIR proxy", "version": __version__},
        "implementation": {
            "description": "Read-only FHIR R4 view of the records patients granted this "
                           "provider on the Kizuna consent ledger (decrypted on the provider's "
                           "machine; nothing after a revoke)",
            "url": base,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(cache: GrantedCache, *, allowed_hosts: Iterable[str]) -> Starlette:
    """The proxy's ASGI app over ``cache``, answering only requests whose ``Host`` is one of
    ``allowed_hosts`` (kizuna.hosts: a DNS-rebinding page must not read decrypted records;
    others get 421 and an OperationOutcome)."""
    allowed = AllowedHosts.of(allowed_hosts)

    def wrong_host(host: str) -> Response:
        return outcome(421, "forbidden", f"{host[:200]!r} is not a name this FHIR proxy "
                                         "answers to (127.0.0.1, localhost, [::1] or "
                                         "--allow-host)", expression="Host")

    async def metadata(request: Request) -> Response:
        return fhir_response(capability_statement(_base(request)))

    def snapshot_or_error() -> Any:
        try:
            return cache.snapshot()
        except (NodeUnreachable, StoreUnavailable) as exc:
            log.warning("the Kizuna service cannot be asked: %s", exc)
            return outcome(503, "transient", f"the Kizuna service cannot confirm the grants "
                                             f"now: {exc}")
        except KizunaError as exc:
            log.warning("refresh failed: %s", exc)
            return outcome(503, "exception", f"the grants could not be refreshed: {exc}")

    def search_type(request: Request) -> Response:
        resource_type = request.path_params["type"]
        if not is_r4_type(resource_type):
            return outcome(404, "not-supported", f"{resource_type!r} is not a FHIR R4 "
                                                 "resource type")
        params = list(request.query_params.multi_items())
        try:
            query = parse_query(resource_type, params)
        except SearchError as exc:
            return outcome(400, "not-supported" if "not" in exc.reason else "value",
                           f"{exc.field}: {exc.reason}", expression=exc.field)
        snap = snapshot_or_error()
        if isinstance(snap, Response):
            return snap
        found = search(snap, query)
        base = _base(request)
        page = found[query.offset:query.offset + query.count]
        kept = query.canonical_params(params)

        def link(relation: str, offset: int) -> dict[str, str]:
            qs = urlencode([*kept, ("_count", str(query.count)), ("_offset", str(offset))])
            return {"relation": relation, "url": f"{base}/{resource_type}?{qs}"}

        links = [link("self", query.offset)]
        if query.offset + query.count < len(found):
            links.append(link("next", query.offset + query.count))
        if query.offset > 0:
            links.append(link("previous", max(0, query.offset - query.count)))
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": [{"fullUrl": f"{base}/{item.resource_type}/{item.id}",
                       "resource": item.resource, "search": {"mode": "match"}}
                      for item in page],
        }
        if not bundle["entry"]:
            del bundle["entry"]  # FHIR JSON has no empty arrays
        return fhir_response(bundle)

    def read(request: Request) -> Response:
        resource_type = request.path_params["type"]
        resource_id = request.path_params["id"]
        if not is_r4_type(resource_type):
            return outcome(404, "not-supported", f"{resource_type!r} is not a FHIR R4 "
                                                 "resource type")
        snap = snapshot_or_error()
        if isinstance(snap, Response):
            return snap
        item = snap.by_key.get((resource_type, resource_id))
        if item is None:
            return outcome(404, "not-found", f"{resource_type}/{resource_id} is not known here "
                                             "(never granted, or no longer)")
        return fhir_response(item.resource)

    async def search_route(request: Request) -> Response:
        # the cache reads through blocking clients: off the event loop
        from starlette.concurrency import run_in_threadpool
        return await run_in_threadpool(search_type, request)

    async def read_route(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        return await run_in_threadpool(read, request)

    async def not_found(request: Request, exc: Exception) -> Response:
        return outcome(404, "not-found", f"no such route: {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return outcome(405, "not-supported", "this FHIR server is read-only (GET only)")

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputError)
        return outcome(400, "value", str(exc))

    return Starlette(
        routes=[
            Route("/metadata", metadata, methods=["GET"]),
            Route("/{type}", search_route, methods=["GET"]),
            Route("/{type}/{id}", read_route, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed, InputError: bad_input},
        middleware=[Middleware(HostCheck, allowed=allowed, refuse=wrong_host)],
    )


__all__ = ["FHIR_JSON", "capability_statement", "create_app", "outcome"]
