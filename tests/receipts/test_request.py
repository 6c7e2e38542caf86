"""ReadRequest: parsing (field + reason), checksummed addresses, signature checks; the read's
JSON body (parse_signed_read) against the documented ReadIn."""

from __future__ import annotations

import json
import time

import pytest
from eth_account import Account

from kizuna.api.schemas import ReadIn
from kizuna.errors import AccessDenied, InputError
from kizuna.receipts.request import (
    ReadRequest,
    StaleRequest,
    WrongSigner,
    parse_signed_read,
    proxy_domain,
    recover_signer,
    verify_request,
)

DOMAIN = proxy_domain(chain_id=31337, access_log="0x" + "ab" * 20)
ACCOUNT = Account.from_key(b"\x11" * 32)


def _request(**over: object) -> ReadRequest:
    fields: dict[str, object] = {"provider": ACCOUNT.address, "patient": "0x" + "22" * 20,
                                 "record_id": b"\x03" * 32}
    fields.update(over)
    return ReadRequest.new(**fields)  # type: ignore[arg-type]


def test_lowercase_addresses_are_checksummed_and_verify() -> None:
    request = ReadRequest(provider=ACCOUNT.address.lower(), patient="0x" + "22" * 20,  # type: ignore[arg-type]
                          record_id=b"\x03" * 32, request_id=b"\x04" * 32,  # type: ignore[arg-type]
                          issued_at=int(time.time()))
    assert request.provider == ACCOUNT.address
    verify_request(request, request.sign(ACCOUNT.key, DOMAIN), DOMAIN)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("requestId"), "requestId"),
    (lambda d: d.update(provider="0x1234"), "provider"),
    (lambda d: d.update(recordId="0x" + "00" * 31), "recordId"),
    (lambda d: d.update(recordId="zz"), "recordId"),
    (lambda d: d.update(issuedAt="soon"), "issuedAt"),
    (lambda d: d.update(issuedAt=-1), "issuedAt"),
    (lambda d: d.update(issuedAt=2**64), "issuedAt"),
])
def test_malformed_requests_name_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = _request().to_json()
    mutate(data)
    with pytest.raises(InputError) as caught:
        ReadRequest.from_json(data)
    assert caught.value.field == field
    with pytest.raises(InputError, match="request"):
        ReadRequest.from_json(["not", "an", "object"])


def test_signature_checks() -> None:
    request = _request()
    good = request.sign(ACCOUNT.key, DOMAIN)
    assert recover_signer(request, good, DOMAIN) == ACCOUNT.address
    high_s = bytearray(good)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(good[32:64], "big")
    high_s[32:64] = (n - s).to_bytes(32, "big")
    high_s[64] = 27 + ((good[64] - 27) ^ 1)
    with pytest.raises(InputError, match="high-s"):
        verify_request(request, bytes(high_s), DOMAIN)
    with pytest.raises(InputError, match="v must be"):
        verify_request(request, good[:64] + b"\x05", DOMAIN)
    other = _request()  # same signer, another request id: the signature does not transfer
    with pytest.raises(WrongSigner):
        verify_request(other, good, DOMAIN)
    with pytest.raises(StaleRequest):
        verify_request(request, good, DOMAIN, now=request.issued_at + 121)
    verify_request(request, good, DOMAIN, now=request.issued_at + 120)
    assert issubclass(WrongSigner, AccessDenied) and issubclass(StaleRequest, AccessDenied)


def _body(**over: object) -> dict[str, object]:
    request = _request()
    body: dict[str, object] = {"request": request.to_json(),
                               "signature": "0x" + request.sign(ACCOUNT.key, DOMAIN).hex()}
    body.update(over)
    return body


def test_a_read_body_is_parsed_once_into_the_request_and_signature() -> None:
    body = _body()
    raw = json.dumps(body).encode()
    request, signature = parse_signed_read(raw)
    assert request == ReadRequest.from_json(body["request"])
    verify_request(request, signature, DOMAIN)
    ReadIn.model_validate_json(raw)  # the documented model takes what the route takes


@pytest.mark.parametrize(("raw", "field"), [
    (b"{", "body"),
    (b"\xff\xfe{}", "body"),
    (b'{"request": {}, "signature": "0x00", "issuedAt": ' + b"9" * 5000 + b"}", "body"),
    (b"[]", "body"),
    (json.dumps(_body(extra=1)).encode(), "extra"),
    (json.dumps({"signature": "0x00"}).encode(), "request"),
    (json.dumps(_body(signature=None)).encode(), "signature"),
    (json.dumps(_body(signature=65)).encode(), "signature"),
    (json.dumps(_body(signature="0xzz")).encode(), "signature"),
    (json.dumps(_body(request="0x00")).encode(), "request"),
    (json.dumps(_body(request={**_request().to_json(), "issuedAt": 1.5})).encode(), "issuedAt"),
    (json.dumps(_body(request={**_request().to_json(), "patient": [1]})).encode(), "patient"),
])
def test_a_bad_read_body_names_the_field_and_the_documented_model_refuses_it_too(
        raw: bytes, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_signed_read(raw)
    assert caught.value.field == field
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        ReadIn.model_validate_json(raw)
