"""The ONE place where Kizuna's exception tree becomes HTTP.

Every error answer has the same JSON body, :class:`ErrorBody`::

    {"error": {"kind": "InputError", "message": "...", "field": "scopes", "reason": "..."}}

The status comes from :func:`status_for` (most specific class first):

=============================================  ======  =============================================
error                                          status  why
=============================================  ======  =============================================
``PayloadTooLarge``                             413     body over ``max_upload_bytes`` (streamed) or
                                                        ``max_json_body_bytes`` (JSON)
``UnknownHost``                                 421     a ``Host`` the service does not answer to
``InputError`` (incl. FHIR, ``InvalidCid``)     422     field + reason
``CryptoError`` / ``SignerError``               422     a bad envelope, fragment or signature sent
``NotAuthenticated``                            401     no / bad / expired session or SIWE login
``AccessDenied``                                403
``QuotaExceeded`` with ``retry_after``          429     relayer gas budget; Retry-After: its reset
``QuotaExceeded`` (storage: records, bytes)     403     waiting never helps: no Retry-After
``NotFoundError`` (incl. ``ContentNotFound``)   404
``ConflictError``                               409
``ContractReverted``                            403 / 409 / 422 by the custom error's name
``ContentIntegrityError``, ``StoreProtocol…``   502     the store returned bytes that fail their CID
``NodeUnreachable``, ``StoreUnavailable``,      503     a dependency is down: retry later
other ``ChainError``, ``ConfigError``
any other ``KizunaError`` / unexpected          500     a generic message, never a stack trace
=============================================  ======  =============================================

FastAPI's own request validation errors and Starlette's HTTP errors (unknown route, wrong method)
are answered in the same shape, so a client parses one error format.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kizuna.errors import (
    AccessDenied,
    ChainError,
    ConfigError,
    ConflictError,
    ContractReverted,
    CryptoError,
    FhirValidationError,
    InputError,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
    QuotaExceeded,
    SignerError,
    StorageError,
    StoreProtocolError,
    StoreUnavailable,
)
from kizuna.storage.unixfs import ContentIntegrityError

log = logging.getLogger("kizuna.api")


class PayloadTooLarge(InputError):
    """A request body is larger than the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__("body", f"is larger than the limit of {limit} bytes")
        self.limit = limit


class UnknownHost(InputError):
    """The ``Host`` header names no host this service answers to (421): a DNS-rebinding page,
    or a client that must be configured (``allowed_hosts``; kizuna.hosts)."""

    def __init__(self, host: str) -> None:
        super().__init__("Host", f"{host[:200]!r} is not a name this service answers to "
                                 "(see allowed_hosts)")


class NotAuthenticated(AccessDenied):
    """No valid session: missing, unknown or expired token, or a failed SIWE login (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Issue(BaseModel):
    """One problem in the input: where (a dotted path) and why."""

    field: str
    reason: str


class ErrorDetail(BaseModel):
    kind: str = Field(description="the Kizuna error class (e.g. InputError, AccessDenied)")
    message: str
    field: str | None = Field(default=None, description="the offending input field, for 413/422")
    reason: str | None = None
    issues: list[Issue] | None = Field(default=None, description="every problem found, for 422")
    name: str | None = Field(default=None, description="a contract's custom error name, on reverts")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


_DESCRIPTIONS = {
    401: "Not signed in: missing, unknown or expired session token",
    403: "Not allowed: no live grant, not the owner, or not the right role",
    404: "Not found",
    409: "Conflict: the thing exists already, or the chain refused the action",
    413: "Body larger than the configured limit",
    421: "The Host header names no host this service answers to",
    422: "Invalid input: the field and the reason",
    429: "A daily budget (relayer gas) is used up: retry after Retry-After seconds",
    502: "The content store returned bytes that do not match their CID",
    503: "The Ethereum node or the content store cannot be reached; retry later",
}


ERROR_BODY_REF = "#/components/schemas/ErrorBody"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given statuses (routes list what they can answer).

    The body is named by reference, not as ``"model": ErrorBody``: FastAPI builds a pydantic
    validator for every such model, per status and per route (about 350 at start-up, a third
    of the routes' start-up CPU), only to write the document. The app's ``openapi()``
    (kizuna.api.app) adds ErrorBody's schema to the document's components."""
    return {status: {"description": _DESCRIPTIONS[status],
                     "content": {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}}}
            for status in sorted(set(statuses))}


COMMON = (422, 503)
"""Every route may answer these (bad input, a dependency down)."""

_FORBIDDEN_REVERTS = ("Unauthorized", "NotRecordOwner", "NotGuardian", "NotAllowed",
                      "NotVerified", "AccessControlUnauthorizedAccount")
_INPUT_REVERTS = ("Invalid", "Expired", "Empty", "TimeRange")


def revert_status(name: str) -> int:
    """403 for an authorisation revert, 422 for an input revert, 409 for a state conflict."""
    if any(part in name for part in _FORBIDDEN_REVERTS):
        return 403
    if any(part in name for part in _INPUT_REVERTS):
        return 422
    return 409


def status_for(exc: KizunaError) -> int:
    """The HTTP status of a Kizuna error (see the module table)."""
    if isinstance(exc, PayloadTooLarge) or type(exc).__name__ == "EnvelopeTooLarge":
        return 413  # records.EnvelopeTooLarge: the service's own limit check
    if isinstance(exc, UnknownHost):
        return 421
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, NotAuthenticated):
        return 401
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, QuotaExceeded):
        return 429 if exc.retry_after is not None else 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, ContractReverted):
        return revert_status(exc.name)
    if isinstance(exc, ContentIntegrityError | StoreProtocolError):
        return 502
    if isinstance(exc, NodeUnreachable | StoreUnavailable | ChainError | StorageError
                  | ConfigError):
        return 503
    if isinstance(exc, CryptoError | SignerError):
        return 422
    return 500


def body_for(exc: KizunaError, status: int) -> ErrorBody:
    """The JSON body of a Kizuna error; 5xx messages say what failed, never how (no trace)."""
    kind = type(exc).__name__
    if status == 500:
        return ErrorBody(error=ErrorDetail(kind="InternalError",
                                           message="the service failed; see its log"))
    detail = ErrorDetail(kind=kind, message=str(exc) or kind)
    if isinstance(exc, InputError):
        detail.field = exc.field
        detail.reason = exc.reason
        if isinstance(exc, FhirValidationError):
            detail.issues = [Issue(field=p, reason=r) for p, r in exc.issues]
    elif isinstance(exc, NotAuthenticated):
        detail.reason = exc.reason
    elif isinstance(exc, ContractReverted):
        detail.name = exc.name
    elif isinstance(exc, QuotaExceeded):
        detail.field = exc.quota
        detail.reason = f"{exc.used} of {exc.limit} used"
    return ErrorBody(error=detail)


def error_response(exc: KizunaError) -> JSONResponse:
    """The response for a Kizuna error (also used by streaming routes before they start)."""
    status = status_for(exc)
    if status >= 500:
        log.warning("%s answered %d: %s", type(exc).__name__, status, exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    elif status == 503:
        headers["Retry-After"] = "5"
    elif isinstance(exc, QuotaExceeded) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, exc.retry_after))
    return JSONResponse(body_for(exc, status).model_dump(exclude_none=True),
                        status_code=status, headers=headers)


def _validation_issues(exc: RequestValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:] or loc
        issues.append(Issue(field=".".join(loc) or "body", reason=str(error.get("msg", "invalid"))))
    return issues or [Issue(field="body", reason="invalid request")]


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def kizuna_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KizunaError)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        issues = _validation_issues(exc)
        first = issues[0]
        body = ErrorBody(error=ErrorDetail(
            kind="InputError", message=f"{first.field}: {first.reason}", field=first.field,
            reason=first.reason, issues=issues))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        body = ErrorBody(error=ErrorDetail(kind=kind, message=str(exc.detail)))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        body = ErrorBody(error=ErrorDetail(kind="InternalError",
                                           message="the service failed; see its log"))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=500)

    app.add_exception_handler(KizunaError, kizuna_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


__all__ = [
    "COMMON",
    "ERROR_BODY_REF",
    "ErrorBody",
    "ErrorDetail",
    "Issue",
    "NotAuthenticated",
    "PayloadTooLarge",
    "UnknownHost",
    "body_for",
    "error_response",
    "error_responses",
    "install",
    "revert_status",
    "status_for",
]
