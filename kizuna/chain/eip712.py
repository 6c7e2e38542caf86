"""EIP-712 typed data: the domain, a frozen :class:`TypedData`, and a builder per signed action.

A :class:`TypedData` holds exactly what a wallet's ``eth_signTypedData_v4`` receives (its
:meth:`TypedData.to_json` *is* that JSON, ``EIP712Domain`` included) and computes the digest the
contracts recompute with OpenZeppelin's ``_hashTypedDataV4``. Values are kept in their JSON
form — addresses as checksummed strings, ``bytes32`` as ``0x`` hex, integers as decimal strings
(JSON numbers lose precision past 2**53) — so Python, ethers v6 and MetaMask all hash the very
same document. The action builders below mirror the Solidity structs field by field; the shared
vectors in ``tests/vectors/eip712.json`` are checked by pytest, by a Solidity test and by ethers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from kizuna.errors import InputError
from kizuna.types import Address

DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
"""The EIP712Domain fields OpenZeppelin's ``EIP712`` uses (no salt)."""


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The signing domain of one Kizuna contract: binds a signature to a chain and contract."""

    name: str
    version: str
    chain_id: int
    verifying_contract: Address

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def separator(self) -> bytes:
        """The domain separator (``_domainSeparatorV4()`` in the contract)."""
        type_hash = keccak(
            text="EIP712Domain(" + ",".join(f"{t} {n}" for n, t in DOMAIN_FIELDS) + ")"
        )
        return bytes(
            keccak(
                abi_encode(
                    ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                    [
                        type_hash,
                        keccak(text=self.name),
                        keccak(text=self.version),
                        self.chain_id,
                        self.verifying_contract,
                    ],
                )
            )
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Eip712Domain:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                chain_id=int(data["chainId"]),
                verifying_contract=_address("domain.verifyingContract",
                                            data["verifyingContract"]),
            )
        except KeyError as missing:
            raise InputError(f"domain.{missing.args[0]}", "missing") from None


StructFields = tuple[tuple[str, str], ...]
"""A struct's fields as ``((name, solidity type), ...)`` in declaration order."""


@dataclass(frozen=True, slots=True)
class TypedData:
    """One EIP-712 document, ready for ``eth_signTypedData_v4``.

    ``types`` excludes ``EIP712Domain`` (added by :meth:`to_json`); ``message`` holds
    JSON-form values (see the module docstring).
    """

    domain: Eip712Domain
    primary_type: str
    types: Mapping[str, StructFields]
    message: Mapping[str, Any] = field(default_factory=dict)

    def type_string(self) -> str:
        """``encodeType`` of the primary type, e.g. ``Grant(address patient,...)``."""
        deps = sorted(self._dependencies(self.primary_type) - {self.primary_type})
        return "".join(
            f"{name}(" + ",".join(f"{t} {n}" for n, t in self.types[name]) + ")"
            for name in [self.primary_type, *deps]
        )

    def type_hash(self) -> bytes:
        """``keccak256(encodeType)``: the contract's ``*_TYPEHASH`` constant."""
        return bytes(keccak(text=self.type_string()))

    def _dependencies(self, name: str, found: set[str] | None = None) -> set[str]:
        found = set() if found is None else found
        if name in found or name not in self.types:
            return found
        found.add(name)
        for _, kind in self.types[name]:
            self._dependencies(kind.split("[", 1)[0], found)
        return found

    def to_json(self) -> dict[str, Any]:
        """The ``eth_signTypedData_v4`` document (``EIP712Domain`` included in ``types``)."""
        types: dict[str, list[dict[str, str]]] = {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS]
        }
        for name, fields in self.types.items():
            types[name] = [{"name": n, "type": t} for n, t in fields]
        return {
            "types": types,
            "primaryType": self.primary_type,
            "domain": self.domain.to_json(),
            "message": _plain(self.message),
        }

    def to_json_string(self) -> str:
        """The JSON text a wallet receives as the second ``eth_signTypedData_v4`` parameter."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.to_json())

    def struct_hash(self) -> bytes:
        """``hashStruct(message)``: what the contract passes to ``_hashTypedDataV4``."""
        return bytes(self.signable().body)

    def digest(self) -> bytes:
        """The 32 bytes actually signed: ``keccak256(0x1901 ‖ domainSeparator ‖ structHash)``."""
        signable = self.signable()
        return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TypedData:
        """Parse an ``eth_signTypedData_v4`` document (as produced by :meth:`to_json`)."""
        try:
            raw_types = data["types"]
            types = {
                name: tuple((str(f["name"]), str(f["type"])) for f in fields)
                for name, fields in raw_types.items()
                if name != "EIP712Domain"
            }
            return cls(
                domain=Eip712Domain.from_json(data["domain"]),
                primary_type=str(data["primaryType"]),
                types=types,
                message=dict(data["message"]),
            )
        except KeyError as missing:
            raise InputError(str(missing.args[0]), "missing from the typed data") from None


def _plain(value: Any) -> Any:
    """JSON-safe copy: bytes to 0x hex, ints to decimal strings, containers recursively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _address(field_name: str, value: Any) -> Address:
    if not isinstance(value, str) or not is_address(value):
        raise InputError(field_name, f"{value!r} is not an Ethereum address")
    return to_checksum_address(value)


def _bytes32(field_name: str, value: bytes) -> str:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InputError(field_name, "must be exactly 32 bytes")
    return "0x" + bytes(value).hex()


def _uint(field_name: str, value: int, bits: int = 256) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(field_name, f"{value!r} is not an integer")
    if not 0 <= value < 2**bits:
        raise InputError(field_name, f"{value} does not fit in uint{bits}")
    return str(value)


def _bytes32_list(field_name: str, values: Sequence[bytes]) -> list[str]:
    return [_bytes32(f"{field_name}[{i}]", v) for i, v in enumerate(values)]




# --- the consent ledger's signed actions -------------------------------------------------------
# Mirrors contracts/interfaces/IConsentLedger.sol (the *_TYPEHASH constants) field by field.

LEDGER_DOMAIN_NAME = "Kizuna ConsentLedger"
LEDGER_DOMAIN_VERSION = "1"

GRANT_FIELDS: StructFields = (
    ("patient", "address"),
    ("provider", "address"),
    ("scopeId", "bytes32"),
    ("expiresAt", "uint64"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
GRANT_BATCH_FIELDS: StructFields = (
    ("patient", "address"),
    ("provider", "address"),
    ("scopeIds", "bytes32[]"),
    ("expiresAt", "uint64"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
REVOKE_FIELDS: StructFields = (
    ("patient", "address"),
    ("provider", "address"),
    ("scopeId", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
REGISTER_RECORD_FIELDS: StructFields = (
    ("patient", "address"),
    ("recordId", "bytes32"),
    ("commitment", "bytes32"),
    ("scopeId", "bytes32"),
    ("supersedes", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)

SIGNED_ACTIONS: Mapping[str, StructFields] = {
    "Grant": GRANT_FIELDS,
    "GrantBatch": GRANT_BATCH_FIELDS,
    "Revoke": REVOKE_FIELDS,
    "RegisterRecord": REGISTER_RECORD_FIELDS,
}
"""Every EIP-712 primary type the consent ledger accepts, by name."""

ZERO32 = bytes(32)


def ledger_domain(*, chain_id: int, ledger: Address) -> Eip712Domain:
    """The consent ledger's EIP-712 domain on ``chain_id`` at address ``ledger``."""
    return Eip712Domain(
        name=LEDGER_DOMAIN_NAME,
        version=LEDGER_DOMAIN_VERSION,
        chain_id=chain_id,
        verifying_contract=_address("ledger", ledger),
    )


def _typed(domain: Eip712Domain, primary: str, message: dict[str, Any]) -> TypedData:
    return TypedData(domain=domain, primary_type=primary,
                     types={primary: SIGNED_ACTIONS[primary]}, message=message)


def grant_typed_data(
    domain: Eip712Domain, *, patient: Address, provider: Address, scope_id: bytes,
    expires_at: int, nonce: int, deadline: int,
) -> TypedData:
    """``Grant``: the patient grants ``provider`` access to ``scope_id`` until ``expires_at``."""
    return _typed(domain, "Grant", {
        "patient": _address("patient", patient),
        "provider": _address("provider", provider),
        "scopeId": _bytes32("scopeId", scope_id),
        "expiresAt": _uint("expiresAt", expires_at, 64),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


def grant_batch_typed_data(
    domain: Eip712Domain, *, patient: Address, provider: Address, scope_ids: Sequence[bytes],
    expires_at: int, nonce: int, deadline: int,
) -> TypedData:
    """``GrantBatch``: one signature for a grant of several scopes with one expiry."""
    if not scope_ids:
        raise InputError("scopeIds", "a batch grant needs at least one scope")
    return _typed(domain, "GrantBatch", {
        "patient": _address("patient", patient),
        "provider": _address("provider", provider),
        "scopeIds": _bytes32_list("scopeIds", scope_ids),
        "expiresAt": _uint("expiresAt", expires_at, 64),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


def revoke_typed_data(
    domain: Eip712Domain, *, patient: Address, provider: Address, scope_id: bytes,
    nonce: int, deadline: int,
) -> TypedData:
    """``Revoke``: the patient revokes ``provider``'s grant on ``scope_id``."""
    return _typed(domain, "Revoke", {
        "patient": _address("patient", patient),
        "provider": _address("provider", provider),
        "scopeId": _bytes32("scopeId", scope_id),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


def register_record_typed_data(
    domain: Eip712Domain, *, patient: Address, record_id: bytes, commitment: bytes,
    scope_id: bytes, nonce: int, deadline: int, supersedes: bytes | None = None,
) -> TypedData:
    """``RegisterRecord``: a new record, or a new version of ``supersedes`` when given."""
    return _typed(domain, "RegisterRecord", {
        "patient": _address("patient", patient),
        "recordId": _bytes32("recordId", record_id),
        "commitment": _bytes32("commitment", commitment),
        "scopeId": _bytes32("scopeId", scope_id),
        "supersedes": _bytes32("supersedes", supersedes if supersedes is not None else ZERO32),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


@dataclass(frozen=True, slots=True)
class SignedAction:
    """A patient's signed action: the typed data and the 65-byte signature over it."""

    typed: TypedData
    signature: bytes

    def __post_init__(self) -> None:
        if self.typed.primary_type not in SIGNED_ACTIONS:
            raise InputError("primaryType", f"{self.typed.primary_type!r} is no ledger action")
        if len(self.signature) != 65:
            raise InputError("signature", f"must be 65 bytes, got {len(self.signature)}")

    @property
    def kind(self) -> str:
        return self.typed.primary_type

    @property
    def patient(self) -> Address:
        return _address("patient", self.typed.message["patient"])


__all__ = [
    "DOMAIN_FIELDS",
    "GRANT_BATCH_FIELDS",
    "GRANT_FIELDS",
    "LEDGER_DOMAIN_NAME",
    "LEDGER_DOMAIN_VERSION",
    "REGISTER_RECORD_FIELDS",
    "REVOKE_FIELDS",
    "SIGNED_ACTIONS",
    "Eip712Domain",
    "SignedAction",
    "StructFields",
    "TypedData",
    "grant_batch_typed_data",
    "grant_typed_data",
    "ledger_domain",
    "register_record_typed_data",
    "revoke_typed_data",
]
