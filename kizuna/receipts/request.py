"""The provider's signed read request (EIP-712) and the receipt leaf it becomes.

Domain and type (mirrored by the provider's client, the web page and docs/service.md)::

    domain = {name: "Kizuna Proxy", version: "1", chainId, verifyingContract: <AccessLog>}
    ReadRequest(address provider,address patient,bytes32 recordId,bytes32 requestId,
                uint64 issuedAt)

``requestId`` is 32 random bytes chosen by the provider: the service keeps each one at most
once (``receipts.request_id`` is UNIQUE), so a replayed request is refused with
:class:`ReplayedRequest` (an ``AccessDenied``: a replay is an attempt to read without a fresh
consent-checked request, not a benign duplicate). ``issuedAt`` must be within
:data:`MAX_CLOCK_SKEW_S` of the service's clock (:class:`StaleRequest`).

The receipt leaf, verifiable on-chain with ``AccessLog.verifyReceipt`` (OpenZeppelin
``MerkleProof``, double-hashed leaf)::

    receipt = abi.encode(READ_RECEIPT_TYPEHASH, provider, patient, recordId, requestId,
                         uint64 issuedAt, keccak256(signature), uint64 servedAt,
                         uint64 headBlock)
    leaf    = keccak256(bytes.concat(keccak256(receipt)))
    READ_RECEIPT_TYPEHASH = keccak256("KizunaReadReceipt(address provider,address patient,
        bytes32 recordId,bytes32 requestId,uint64 issuedAt,bytes32 signatureHash,
        uint64 servedAt,uint64 headBlock)")

A threshold proxy node's receipt also names the node: ``abi.encode(NODE_READ_RECEIPT_TYPEHASH,
<the same fields>, address node)`` with ``NODE_READ_RECEIPT_TYPEHASH =
keccak256("KizunaNodeReadReceipt(<the same fields>,address node)")`` (docs/proxies.md).

The hot path does not go through ``eth_account.encode_typed_data`` (about 1 ms): the digest is
computed from the cached domain separator and a fixed-layout struct hash (keccak from
:mod:`kizuna.merkle`, C when safe-pysha3 is there), and the signer is recovered with
:func:`kizuna.signatures.recover_address` (coincurve). :meth:`ReadRequest.typed_data`
gives the same digest the slow, general way (a test pins that they agree) and the document a
wallet signs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address

from kizuna.chain.eip712 import Eip712Domain, TypedData
from kizuna.errors import AccessDenied, InputError
from kizuna.merkle import keccak, leaf_hash
from kizuna.signatures import UnrecoverableSignature, recover_address
from kizuna.types import Address, RecordId, checked_address, checked_bytes32

PROXY_DOMAIN_NAME = "Kizuna Proxy"
PROXY_DOMAIN_VERSION = "1"
MAX_CLOCK_SKEW_S = 120
"""``issuedAt`` must be within this many seconds of the service's clock, either way."""

READ_REQUEST_FIELDS: tuple[tuple[str, str], ...] = (
    ("provider", "address"),
    ("patient", "address"),
    ("recordId", "bytes32"),
    ("requestId", "bytes32"),
    ("issuedAt", "uint64"),
)
READ_REQUEST_TYPE = "ReadRequest(" + ",".join(f"{t} {n}" for n, t in READ_REQUEST_FIELDS) + ")"
READ_REQUEST_TYPEHASH = keccak(READ_REQUEST_TYPE.encode())

READ_RECEIPT_TYPE = (
    "KizunaReadReceipt(address provider,address patient,bytes32 recordId,bytes32 requestId,"
    "uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,uint64 headBlock)"
)
READ_RECEIPT_TYPEHASH = keccak(READ_RECEIPT_TYPE.encode())

NODE_READ_RECEIPT_TYPE = (
    "KizunaNodeReadReceipt(address provider,address patient,bytes32 recordId,bytes32 requestId,"
    "uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,uint64 headBlock,address node)"
)
NODE_READ_RECEIPT_TYPEHASH = keccak(NODE_READ_RECEIPT_TYPE.encode())
"""A threshold proxy node's receipt names the node (docs/proxies.md): two nodes serving the
same read in the same second and block keep different leaves, so their batches never make the
same root, and a node's receipt can never pass for the service's (another type hash)."""


class StaleRequest(AccessDenied):
    """``issuedAt`` is too far from the service's clock (a stale or post-dated request)."""


class ReplayedRequest(AccessDenied):
    """This ``requestId`` was served already: each request is answered at most once."""


class WrongSigner(AccessDenied):
    """The signature is not the named provider's (or not over this request)."""


def proxy_domain(*, chain_id: int, access_log: Address) -> Eip712Domain:
    """The read requests' EIP-712 domain on ``chain_id`` (bound to the AccessLog contract)."""
    return Eip712Domain(name=PROXY_DOMAIN_NAME, version=PROXY_DOMAIN_VERSION,
                        chain_id=chain_id, verifying_contract=to_checksum_address(access_log))


@lru_cache(maxsize=16)
def _separator(domain: Eip712Domain) -> bytes:
    return domain.separator()


def _word_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _word_uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(field: str, value: Any) -> Address:
    return checked_address(field, value)


def _bytes32(field: str, value: Any) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise InputError(field, "is not hex") from None
    return checked_bytes32(field, value)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """What a provider signs to read one record. Build with :meth:`new` or :meth:`from_json`."""

    provider: Address
    patient: Address
    record_id: RecordId
    request_id: bytes
    issued_at: int

    def __post_init__(self) -> None:
        # Addresses are kept checksummed (the signer check compares checksummed forms).
        object.__setattr__(self, "provider", _address("provider", self.provider))
        object.__setattr__(self, "patient", _address("patient", self.patient))
        _bytes32("recordId", self.record_id)
        _bytes32("requestId", self.request_id)
        if (isinstance(self.issued_at, bool) or not isinstance(self.issued_at, int)
                or not 0 <= self.issued_at < 2**64):
            raise InputError("issuedAt", f"{self.issued_at!r} is not a uint64")

    @classmethod
    def new(cls, *, provider: str, patient: str, record_id: bytes,
            issued_at: int | None = None, request_id: bytes | None = None) -> ReadRequest:
        """A fresh request: random ``requestId``, ``issuedAt`` = now unless given."""
        return cls(provider=_address("provider", provider), patient=_address("patient", patient),
                   record_id=RecordId(_bytes32("recordId", record_id)),
                   request_id=os.urandom(32) if request_id is None else request_id,
                   issued_at=int(time.time()) if issued_at is None else issued_at)

    # -- wire form ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The EIP-712 message in JSON form (ints as decimal strings, bytes as 0x hex)."""
        return {
            "provider": self.provider,
            "patient": self.patient,
            "recordId": "0x" + self.record_id.hex(),
            "requestId": "0x" + self.request_id.hex(),
            "issuedAt": str(self.issued_at),
        }

    def to_json_string(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> ReadRequest:
        """Parse the JSON message (``InputError`` names the field)."""
        if not isinstance(data, dict):
            raise InputError("request", "must be a JSON object")
        missing = [n for n, _ in READ_REQUEST_FIELDS if n not in data]
        if missing:
            raise InputError(missing[0], "missing from the read request")
        issued = data["issuedAt"]
        if isinstance(issued, str) and issued.isdigit():
            issued = int(issued)
        if isinstance(issued, bool) or not isinstance(issued, int):
            raise InputError("issuedAt", f"{data['issuedAt']!r} is not an integer")
        return cls(provider=_address("provider", data["provider"]),
                   patient=_address("patient", data["patient"]),
                   record_id=RecordId(_bytes32("recordId", data["recordId"])),
                   request_id=_bytes32("requestId", data["requestId"]),
                   issued_at=issued)

    # -- EIP-712 ------------------------------------------------------------------------------

    def typed_data(self, domain: Eip712Domain) -> TypedData:
        """The ``eth_signTypedData_v4`` document for a wallet."""
        return TypedData(domain=domain, primary_type="ReadRequest",
                         types={"ReadRequest": READ_REQUEST_FIELDS}, message=self.to_json())

    def struct_hash(self) -> bytes:
        return keccak(
            READ_REQUEST_TYPEHASH + _word_address(self.provider) + _word_address(self.patient)
            + self.record_id + self.request_id + _word_uint(self.issued_at))

    def digest(self, domain: Eip712Domain) -> bytes:
        """``keccak256(0x1901 ‖ domainSeparator ‖ structHash)`` (fast path, cached separator)."""
        return keccak(b"\x19\x01" + _separator(domain) + self.struct_hash())

    def sign(self, private_key: bytes | str, domain: Eip712Domain) -> bytes:
        """Sign as the provider with a local key (the CLI's and the tests' way)."""
        signed = Account.unsafe_sign_hash(self.digest(domain), private_key)
        return bytes(signed.signature)


def parse_signed_read(body: bytes) -> tuple[ReadRequest, bytes]:
    """A read's JSON body, ``{"request": <ReadRequest JSON>, "signature": "0x…"}`` (the API's
    ``ReadIn``), parsed and checked once: the request by :meth:`ReadRequest.from_json`, the
    signature as hex (its length and form are :func:`verify_request`'s). ``InputError`` names
    the field: ``body`` for bytes that are not one JSON object, an unknown or missing member,
    a field of the request."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # not JSON, bad UTF-8, a 5,000-digit number
        raise InputError("body", f"is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError("body", "must be a JSON object with request and signature")
    for name in data:
        if name not in ("request", "signature"):
            raise InputError(str(name), "is not a field of a read (request, signature)")
    if "request" not in data:
        raise InputError("request", "missing from the read")
    signature = data.get("signature")
    if not isinstance(signature, str):
        raise InputError("signature", "missing from the read" if signature is None
                         else "must be a hex string")
    request = ReadRequest.from_json(data["request"])
    try:
        return request, bytes.fromhex(signature[2:] if signature.startswith("0x") else signature)
    except ValueError:
        raise InputError("signature", "is not hex") from None


def recover_signer(request: ReadRequest, signature: bytes, domain: Eip712Domain) -> Address:
    """The address that signed ``request`` (``InputError`` for a malformed signature)."""
    try:
        return recover_address(request.digest(domain), signature)
    except UnrecoverableSignature:
        raise WrongSigner("the signature does not recover to any address") from None


def verify_request(request: ReadRequest, signature: bytes, domain: Eip712Domain, *,
                   now: int | None = None, max_skew: int = MAX_CLOCK_SKEW_S) -> None:
    """Check the signer is ``request.provider`` and ``issuedAt`` is fresh (not replay: that is
    the receipt store's UNIQUE ``request_id``). ``WrongSigner`` / ``StaleRequest``."""
    signer = recover_signer(request, signature, domain)
    if signer != request.provider:
        raise WrongSigner(f"the read request is signed by {signer}, not by the provider "
                          f"{request.provider}")
    current = int(time.time()) if now is None else now
    if abs(current - request.issued_at) > max_skew:
        raise StaleRequest(f"issuedAt {request.issued_at} is {current - request.issued_at:+d} s "
                           f"from the service's clock (allowed: ±{max_skew} s)")


def receipt_encoding(request: ReadRequest, signature: bytes, *, served_at: int,
                     head_block: int, node: str | None = None) -> bytes:
    """``abi.encode`` of the receipt (see the module docstring); with ``node``, a threshold
    proxy node's receipt: :data:`NODE_READ_RECEIPT_TYPEHASH` and the node's address last."""
    fields = (_word_address(request.provider) + _word_address(request.patient)
              + request.record_id + request.request_id + _word_uint(request.issued_at)
              + keccak(bytes(signature)) + _word_uint(served_at) + _word_uint(head_block))
    if node is None:
        return READ_RECEIPT_TYPEHASH + fields
    return NODE_READ_RECEIPT_TYPEHASH + fields + _word_address(node)


def receipt_leaf(request: ReadRequest, signature: bytes, *, served_at: int,
                 head_block: int, node: str | None = None) -> bytes:
    """The receipt's Merkle leaf: ``keccak256(bytes.concat(keccak256(receipt)))`` (``node``:
    the serving proxy node's, :func:`receipt_encoding`)."""
    return leaf_hash(receipt_encoding(request, signature, served_at=served_at,
                                      head_block=head_block, node=node))


__all__ = [
    "MAX_CLOCK_SKEW_S",
    "NODE_READ_RECEIPT_TYPEHASH",
    "PROXY_DOMAIN_NAME",
    "PROXY_DOMAIN_VERSION",
    "READ_RECEIPT_TYPEHASH",
    "READ_REQUEST_TYPEHASH",
    "ReadRequest",
    "ReplayedRequest",
    "StaleRequest",
    "WrongSigner",
    "parse_signed_read",
    "proxy_domain",
    "receipt_encoding",
    "receipt_leaf",
    "recover_signer",
    "verify_request",
]
