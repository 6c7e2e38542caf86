"""The read-only FHIR R4 REST API over a :class:`~kizuna.fhirproxy.cache.GrantedCache`.

Routes (R4 http.html): ``GET /metadata`` (CapabilityStatement), ``GET /{type}`` and
``POST /{type}/_search`` (form-encoded body, joined with the URL's parameters: the same search)
→ ``Bundle`` of type ``searchset`` with ``total``, ``self`` / ``next`` / ``previous`` links, a
``fullUrl`` and ``search.mode`` per entry; ``GET /{type}/{id}`` (read, with ``ETag:
W/"<versionId>"`` and ``Last-Modified``; ``If-None-Match`` → 304) and ``GET
/Patient/{id}/$everything``. Any other method is 405 with ``Allow``. Answers are
``application/fhir+json`` only: a request that accepts only something else (``Accept:
application/fhir+xml``, ``_format=xml``) is 406. Errors are ``OperationOutcome`` s: 400 for a
search the proxy does not support (unless ``Prefer: handling=lenient``), 404 for an unknown type
or id, 503 when the Kizuna service cannot confirm the grants (nothing is served from memory
then).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kizuna import __version__
from kizuna.errors import InputError, KizunaError, NodeUnreachable, StoreUnavailable
from kizuna.fhirproxy.cache import CachedResource, GrantedCache, Snapshot
from kizuna.fhirproxy.dates import DateCondition, date_range
from kizuna.fhirproxy.search import (
    MAX_COUNT,
    RESULT_PARAMETERS,
    SEARCH_ELEMENTS,
    Query,
    SearchError,
    included,
    iter_pages,
    parameters,
    parse_int,
    parse_query,
    reference_parameters,
    search,
    shaped,
)
from kizuna.hosts import AllowedHosts, HostCheck

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
FORM = "application/x-www-form-urlencoded"

_ABSTRACT = frozenset({"Resource", "DomainResource"})
_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir",
                         "application/*", "*/*"})
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json",
                           "application/json+fhir"})
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
_GENERAL = ("_format", "_pretty", "_summary", "_elements")
"""The parameters of every interaction (R4 http.html#parameters)."""


def fhir_response(body: dict[str, Any], status: int = 200, *, pretty: bool = False,
                  headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, indent=2 if pretty else None,
                      separators=None if pretty else (",", ":"))
    return Response(text, status_code=status, media_type=FHIR_JSON, headers=headers)


def outcome(status: int, code: str, diagnostics: str, *,
            expression: str | None = None, headers: dict[str, str] | None = None) -> Response:
    issue: dict[str, Any] = {"severity": "error" if status < 500 else "fatal", "code": code,
                             "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status,
                         headers=headers)


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
    """What this server does, and nothing it does not (R4 capabilitystatement.html)."""
    resources = []
    for name in sorted(SEARCH_ELEMENTS):
        search_params = [*parameters(name).values(),
                         *(p for p in RESULT_PARAMETERS.values()
                           if p.name != "_include" or reference_parameters(name))]
        resource: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "versioned",
            "readHistory": False,
            "conditionalRead": "not-match",
            "searchInclude": [f"{name}:{p}" for p in reference_parameters(name)],
            "searchParam": [
                {"name": p.name, "type": p.type,
                 **({"documentation": "; ".join(filter(None, [
                     p.documentation,
                     "modifiers: " + ", ".join(f":{m}" for m in p.modifiers)
                     if p.modifiers else ""]))}
                    if p.documentation or p.modifiers else {})}
                for p in search_params],
        }
        if not resource["searchInclude"]:
            del resource["searchInclude"]
        if name == "Patient":
            resource["operation"] = [{"name": "everything", "definition": EVERYTHING}]
        resources.append(resource)
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
        "rest": [{
            "mode": "server",
            "documentation": "Search: GET [type] or POST [type]/_search (form-encoded). "
                             "Unknown or unsupported parameters are refused (400) unless "
                             "the request says Prefer: handling=lenient (then ignored and "
                             "left out of the self link). Any other R4 type a patient granted "
                             "is served with the common parameters (_id, _lastUpdated, "
                             "identifier).",
            "resource": resources,
        }],
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def acceptable(params: Sequence[tuple[str, str]], accept: str | None) -> str | None:
    """Why the answer (JSON) is not acceptable to the request, or ``None`` if it is:
    ``_format`` decides when given (R4 http.html#mime-type), else ``Accept``."""
    formats = [v for k, v in params if k == "_format"]
    if formats:
        value = formats[-1].split(";")[0].strip().lower()
        return None if value in _JSON_FORMATS else f"_format={formats[-1]!r}: this server " \
                                                   "answers application/fhir+json only"
    if not accept or not accept.strip():
        return None
    for part in accept.split(","):
        media, *options = (x.strip() for x in part.split(";"))
        q = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media.lower() in _JSON_TYPES:
            return None
    return f"Accept: {accept[:200]!r}: this server answers application/fhir+json only"


def strict_handling(request: Request) -> bool:
    """``Prefer: handling=lenient`` asks to ignore unknown parameters; strict otherwise (this
    proxy's default: a client is told rather than silently given a wider answer)."""
    prefer = request.headers.get("prefer", "")
    options = {p.strip().lower().replace(" ", "") for p in prefer.split(",")}
    return "handling=lenient" not in options


def _pretty(params: Sequence[tuple[str, str]]) -> bool:
    values = [v for k, v in params if k == "_pretty"]
    if values and values[-1] not in ("true", "false"):
        raise SearchError("_pretty", f"{values[-1]!r}: true or false")
    return bool(values) and values[-1] == "true"


def weak_etag(version_id: str) -> str:
    return f'W/"{version_id}"'


def _etag_matches(header: str, version_id: str) -> bool:
    """``If-None-Match`` (a list of entity tags, or ``*``) against the resource's version
    (weak comparison, RFC 9110 §13.1.2)."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.removeprefix("W/").strip('"') == version_id:
            return True
    return False


def create_app(cache: GrantedCache, *, allowed_hosts: Iterable[str]) -> Starlette:
    """The proxy's ASGI app over ``cache``, answering only requests whose ``Host`` is one of
    ``allowed_hosts`` (kizuna.hosts: a DNS-rebinding page must not read decrypted records;
    others get 421 and an OperationOutcome)."""
    proxy = _FhirProxy(cache)
    return Starlette(
        routes=[
            Route("/metadata", proxy.metadata, methods=["GET"]),
            Route("/Patient/{id}/$everything", proxy.everything_route, methods=["GET"]),
            Route("/{type}/_search", proxy.post_search_route, methods=["POST"]),
            Route("/{type}", proxy.search_route, methods=["GET"]),
            Route("/{type}/{id}", proxy.read_route, methods=["GET"]),
        ],
        exception_handlers={404: proxy.not_found, 405: proxy.not_allowed,
                            InputError: proxy.bad_input},
        middleware=[Middleware(HostCheck, allowed=AllowedHosts.of(allowed_hosts),
                               refuse=proxy.wrong_host)],
    )


class _FhirProxy:
    """The routes of :func:`create_app` over one cache; the blocking ones (the cache reads
    through blocking clients) run off the event loop."""

    def __init__(self, cache: GrantedCache) -> None:
        self.cache = cache

    def wrong_host(self, host: str) -> Response:
        return outcome(421, "forbidden", f"{host[:200]!r} is not a name this FHIR proxy "
                                         "answers to (127.0.0.1, localhost, [::1] or "
                                         "--allow-host)", expression="Host")

    def not_acceptable(self, request: Request,
                       params: Sequence[tuple[str, str]]) -> Response | None:
        reason = acceptable(params, request.headers.get("accept"))
        if reason is None:
            return None
        return outcome(406, "not-supported", reason,
                       expression="_format" if reason.startswith("_format") else "Accept")

    def bad_search(self, exc: SearchError) -> Response:
        return outcome(400, "not-supported" if "not" in exc.reason else "value",
                       f"{exc.field}: {exc.reason}", expression=exc.field)

    async def metadata(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        refused = self.not_acceptable(request, params)
        if refused is not None:
            return refused
        try:
            pretty = _pretty(params)
        except SearchError as exc:
            return self.bad_search(exc)
        return fhir_response(capability_statement(_base(request)), pretty=pretty)

    def snapshot_or_error(self) -> Snapshot | Response:
        try:
            return self.cache.snapshot()
        except (NodeUnreachable, StoreUnavailable) as exc:
            log.warning("the Kizuna service cannot be asked: %s", exc)
            return outcome(503, "transient", f"the Kizuna service cannot confirm the grants "
                                             f"now: {exc}")
        except KizunaError as exc:
            log.warning("refresh failed: %s", exc)
            return outcome(503, "exception", f"the grants could not be refreshed: {exc}")

    def bundle(self, request: Request, path: str, query: Query, found: list[CachedResource],
               snap: Snapshot, pretty: bool) -> Response:
        base = _base(request)
        count = 0 if query.summary == "count" else query.count
        page = found[query.offset:query.offset + count]
        kept = query.link_params()

        def link(relation: str, offset: int) -> dict[str, str]:
            qs = urlencode([*kept, ("_count", str(query.count)), ("_offset", str(offset))])
            return {"relation": relation, "url": f"{base}/{path}?{qs}"}

        links = [link("self", query.offset)]
        links += [link(relation, offset)
                  for relation, offset in iter_pages(len(found), query.offset, count)]

        def entry(item: CachedResource, mode: str, elements: bool) -> dict[str, Any]:
            resource = shaped(item.resource, summary=query.summary,
                              elements=query.elements if elements else None)
            return {"fullUrl": f"{base}/{item.resource_type}/{item.id}", "resource": resource,
                    "search": {"mode": mode}}

        entries = [entry(item, "match", True) for item in page]
        # _elements names the matches' elements; included resources come whole (_summary
        # applies to every entry)
        entries += [entry(item, "include", False) for item in included(snap, query, page)]
        body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                "total": len(found), "link": links}
        if entries:  # FHIR JSON has no empty arrays
            body["entry"] = entries
        return fhir_response(body, pretty=pretty)

    def search_type(self, request: Request, params: list[tuple[str, str]]) -> Response:
        resource_type = request.path_params["type"]
        if not is_r4_type(resource_type):
            return outcome(404, "not-supported", f"{resource_type!r} is not a FHIR R4 "
                                                 "resource type")
        refused = self.not_acceptable(request, params)
        if refused is not None:
            return refused
        try:
            pretty = _pretty(params)
            query = parse_query(resource_type, [(k, v) for k, v in params if k != "_pretty"],
                                strict=strict_handling(request))
        except SearchError as exc:
            return self.bad_search(exc)
        snap = self.snapshot_or_error()
        if isinstance(snap, Response):
            return snap
        return self.bundle(request, resource_type, query, search(snap, query), snap, pretty)

    def read(self, request: Request) -> Response:
        resource_type = request.path_params["type"]
        resource_id = request.path_params["id"]
        if resource_id == "_search":
            return outcome(405, "not-supported", "a search by _search is a POST (form-encoded "
                                                 f"body); or GET /{resource_type}?...",
                           headers={"Allow": "POST"})
        if not is_r4_type(resource_type):
            return outcome(404, "not-supported", f"{resource_type!r} is not a FHIR R4 "
                                                 "resource type")
        params = list(request.query_params.multi_items())
        refused = self.not_acceptable(request, params)
        if refused is not None:
            return refused
        try:
            pretty = _pretty(params)
            shaping = _general_only(params, strict=strict_handling(request),
                                    resource_type=resource_type)
        except SearchError as exc:
            return self.bad_search(exc)
        snap = self.snapshot_or_error()
        if isinstance(snap, Response):
            return snap
        item = snap.by_key.get((resource_type, resource_id))
        if item is None:
            return outcome(404, "not-found", f"{resource_type}/{resource_id} is not known here "
                                             "(never granted, or no longer)")
        headers = {"ETag": weak_etag(item.version_id)}
        if item.last_updated:
            found = date_range(item.last_updated)
            if found is not None:
                headers["Last-Modified"] = format_datetime(found.start, usegmt=True)
        match = request.headers.get("if-none-match")
        if match is not None and _etag_matches(match, item.version_id):
            return Response(status_code=304, headers=headers)
        resource = shaped(item.resource, summary=shaping.summary, elements=shaping.elements)
        return fhir_response(resource, pretty=pretty, headers=headers)

    def everything(self, request: Request) -> Response:
        """``Patient/[id]/$everything`` (R4 patient-operation-everything): the Patient and
        every resource of their compartment served here — here, every record the patient owns.
        ``_type`` (comma-separated types), ``_since`` (meta.lastUpdated at or after), ``_count``
        / ``_offset`` paging; ``start`` / ``end`` are not supported."""
        params = list(request.query_params.multi_items())
        refused = self.not_acceptable(request, params)
        if refused is not None:
            return refused
        try:
            pretty, query, types, since = _everything_params(params,
                                                             strict=strict_handling(request))
        except InputError as exc:
            return self.bad_search(SearchError(exc.field, exc.reason))
        snap = self.snapshot_or_error()
        if isinstance(snap, Response):
            return snap
        patient = snap.by_key.get(("Patient", request.path_params["id"]))
        if patient is None:
            return outcome(404, "not-found", f"Patient/{request.path_params['id']} is not "
                                             "known here (never granted, or no longer)")
        owned = snap.of_patient(patient.patient)
        found = [patient, *(r for r in owned if r is not patient)]
        if types is not None:
            found = [r for r in found if r.resource_type in types]
        if since is not None:
            condition = since
            found = [r for r in found if r.last_updated and
                     (moment := date_range(r.last_updated)) is not None and
                     condition.matches(moment)]
        return self.bundle(request, f"Patient/{patient.id}/$everything", query, found, snap, pretty)

    async def search_route(self, request: Request) -> Response:
        # the cache reads through blocking clients: off the event loop
        return await run_in_threadpool(self.search_type, request,
                                       list(request.query_params.multi_items()))

    async def post_search_route(self, request: Request) -> Response:
        media = request.headers.get("content-type", FORM).split(";")[0].strip().lower()
        if media != FORM:
            return outcome(415, "not-supported", f"POST _search takes a {FORM} body, not "
                                                 f"{media!r}", expression="Content-Type")
        body = (await request.body()).decode("utf-8", errors="replace")
        try:
            form = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body),
                             max_num_fields=1000)
        except ValueError as exc:
            return outcome(400, "structure", f"the form-encoded body does not parse: {exc}")
        params = [*request.query_params.multi_items(), *form]
        return await run_in_threadpool(self.search_type, request, params)

    async def read_route(self, request: Request) -> Response:
        return await run_in_threadpool(self.read, request)

    async def everything_route(self, request: Request) -> Response:
        return await run_in_threadpool(self.everything, request)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return outcome(404, "not-found", f"no such route: {request.url.path}")

    async def not_allowed(self, request: Request, exc: Exception) -> Response:
        allow = "GET, HEAD"
        if isinstance(exc, HTTPException) and exc.headers and "Allow" in exc.headers:
            allow = ", ".join(sorted(m.strip() for m in exc.headers["Allow"].split(",")))
        return outcome(405, "not-supported", f"{request.method} is not supported here: this "
                                             f"FHIR server is read-only (allowed: {allow})",
                       headers={"Allow": allow})

    async def bad_input(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputError)
        return outcome(400, "value", str(exc))


def _everything_params(params: Sequence[tuple[str, str]], *, strict: bool
                       ) -> tuple[bool, Query, set[str] | None, DateCondition | None]:
    """``$everything``'s parameters: pretty, paging, ``_type`` and ``_since``."""
    types: set[str] | None = None
    since: DateCondition | None = None
    query = Query("Patient")
    pretty = _pretty(params)
    for name, value in params:
        if name == "_type":
            types = {t.strip() for t in value.split(",")}
            unknown = [t for t in types if not is_r4_type(t)]
            if unknown:
                raise SearchError(name, f"{', '.join(sorted(unknown))}: not a FHIR "
                                        "R4 resource type")
        elif name == "_since":
            since = DateCondition.parse("ge" + value, field=name)
        elif name == "_count":
            query.count = parse_int(name, value, low=0, high=MAX_COUNT)
        elif name == "_offset":
            query.offset = parse_int(name, value, low=0, high=10**9)
        elif name in ("_format", "_pretty"):
            pass
        elif strict:
            raise SearchError(name, "not a parameter of $everything here (supported: "
                                    "_type, _since, _count, _offset, _format)")
        else:
            continue
        query.applied.append((name, value))
    return pretty, query, types, since


def _general_only(params: Sequence[tuple[str, str]], *, strict: bool,
                  resource_type: str) -> Query:
    """A read's parameters: only those of every interaction (``_format``, ``_pretty``,
    ``_summary``, ``_elements``); anything else is refused, or ignored when lenient."""
    kept: list[tuple[str, str]] = []
    for name, value in params:
        if name in _GENERAL:
            if name in ("_summary", "_elements"):
                kept.append((name, value))
        elif strict:
            raise SearchError(name, "a read takes only " + ", ".join(_GENERAL))
    query = parse_query(resource_type, kept)
    if query.summary == "count":
        raise SearchError("_summary", "count is for searches")
    return query


__all__ = ["FHIR_JSON", "acceptable", "capability_statement", "create_app", "outcome",
           "weak_etag"]
