"""``kizuna.client.http.api_error``: an error answer back into the one exception tree.

Each answer here is what the API itself sends for an exception (``kizuna.api.errors``'s
``error_response``: its status, headers and JSON body), handed to the client's mapping as the
HTTP answer it would receive. The class comes back when the answer's ``kind`` is a class of
``kizuna.errors`` / ``kizuna.wire`` that fits the status; anything else comes back as the
status's own class, never as a crash.
"""

from __future__ import annotations

import httpx
import pytest

from kizuna.api.errors import PayloadTooLarge, UnknownHost, error_response
from kizuna.client.http import api_error
from kizuna.errors import (
    AccessDenied,
    ConflictError,
    ContentNotFound,
    ContractReverted,
    DatabaseUnavailable,
    FhirValidationError,
    GrantExpired,
    GrantRevoked,
    InputError,
    InvalidCid,
    KizunaError,
    NodeUnreachable,
    NoGrant,
    NotFoundError,
    ProviderSuspended,
    QuotaExceeded,
    StorageError,
    StoreProtocolError,
    StoreUnavailable,
    WrongChain,
)
from kizuna.services.read import NoKeyFragments
from kizuna.wire.records import EnvelopeTooLarge


def _answer(exc: KizunaError) -> httpx.Response:
    """The HTTP answer the API gives for ``exc``."""
    sent = error_response(exc)
    return httpx.Response(sent.status_code, headers=dict(sent.headers), content=bytes(sent.body))


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})},
                          content=body)


@pytest.mark.parametrize(("sent", "expected"), [
    # the kind names a class of the tree that fits the status: that class
    (NoGrant("no grant of scope 0x01"), NoGrant),
    (GrantRevoked("revoked at block 7"), GrantRevoked),
    (GrantExpired("expired"), GrantExpired),
    (ProviderSuspended("suspended"), ProviderSuspended),
    (ContentNotFound("bafkreiabc"), ContentNotFound),
    (StoreUnavailable("the IPFS node does not answer"), StoreUnavailable),
    (DatabaseUnavailable("the database is locked"), DatabaseUnavailable),
    (StoreProtocolError("bad answer"), StoreProtocolError),
    (EnvelopeTooLarge(1024), EnvelopeTooLarge),  # a class of kizuna.wire
    # a class defined outside the tree and the seam (the service's, the API's): the status's
    (NoKeyFragments("no fragments for this provider"), AccessDenied),
    (PayloadTooLarge(10), InputError),
    # the kind does not fit the status's meaning: the status decides (exit codes, retries)
    (ContractReverted("ConsentLedgerUnauthorized"), AccessDenied),
    (ContractReverted("ConsentLedgerRecordExists"), ConflictError),
    (WrongChain(1, 2), NodeUnreachable),
    (QuotaExceeded("records", limit=3, used=3, message="3 of 3 records"), AccessDenied),
])
def test_the_kind_comes_back_when_it_fits_the_status(sent: KizunaError,
                                                     expected: type[KizunaError]) -> None:
    back = api_error(_answer(sent))
    assert type(back) is expected
    assert str(back) == str(sent)


def test_an_input_error_keeps_its_field_and_reason() -> None:
    back = api_error(_answer(InputError("scopes", "choose at least one")))
    assert type(back) is InputError
    assert (back.field, back.reason) == ("scopes", "choose at least one")

    host = api_error(_answer(UnknownHost("evil.example")))  # the API's own class: 421
    assert type(host) is InputError and host.field == "Host"

    cid = api_error(_answer(InvalidCid("nope", "not base32")))
    assert type(cid) is InvalidCid and cid.field == "cid" and "nope" in cid.reason
    assert cid.cid == ""  # the answer does not carry it


def test_fhir_issues_and_a_quota_survive() -> None:
    fhir = api_error(_answer(FhirValidationError([("entry[0].status", "required"),
                                                  ("entry[1].code", "required")])))
    assert type(fhir) is FhirValidationError
    assert fhir.issues == (("entry[0].status", "required"), ("entry[1].code", "required"))
    assert (fhir.field, fhir.reason) == ("entry[0].status", "required")

    gas = api_error(_answer(QuotaExceeded("relayer_gas", limit=100, used=120, retry_after=30,
                                          message="daily gas budget used")))
    assert type(gas) is QuotaExceeded
    assert (gas.quota, gas.limit, gas.used, gas.retry_after) == ("relayer_gas", 100, 120, 30)


def test_unknown_kinds_and_bodies_fall_back_to_the_status() -> None:
    made_up = _raw(404, b'{"error":{"kind":"Martian","message":"no such thing"}}')
    back = api_error(made_up)
    assert type(back) is NotFoundError and str(back) == "no such thing"

    # a kind of the tree that is not an error of that status: not trusted to change it
    wrong = _raw(403, b'{"error":{"kind":"ContentNotFound","message":"x"}}')
    assert type(api_error(wrong)) is AccessDenied

    # not Kizuna's error shape at all (a proxy in front of the API)
    html = httpx.Response(502, content=b"<html>Bad Gateway</html>")
    assert type(api_error(html)) is StorageError
    assert type(api_error(_raw(502, b"[]"))) is StorageError
    odd = api_error(_raw(422, b'{"error":"oops"}'))
    assert type(odd) is InputError and odd.field == ""

    unknown_status = api_error(_raw(418, b'{"error":{"kind":"NoGrant","message":"teapot"}}'))
    assert type(unknown_status) is KizunaError and "418" in str(unknown_status)
