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
from eth_utils.crypto import keccak

from kizuna.errors import InputError
from kizuna.types import Address, checked_address, checked_bytes32

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
    def from_json(cls, data: object, *, where: str = "typed_data.domain") -> Eip712Domain:
        """Parse an ``EIP712Domain`` object; ``InputError`` naming the field (``where.name``)."""
        if not isinstance(data, Mapping):
            raise InputError(where, "must be a JSON object")
        for key in ("name", "version", "chainId", "verifyingContract"):
            if key not in data:
                raise InputError(f"{where}.{key}", "missing")
        for key in ("name", "version"):
            if not isinstance(data[key], str):
                raise InputError(f"{where}.{key}", "must be a string")
        return cls(
            name=data["name"],
            version=data["version"],
            chain_id=parse_uint(f"{where}.chainId", data["chainId"]),
            verifying_contract=_address(f"{where}.verifyingContract", data["verifyingContract"]),
        )


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
    def from_json(cls, data: object, *, where: str = "typed_data") -> TypedData:
        """Parse an ``eth_signTypedData_v4`` document (as produced by :meth:`to_json`).

        It arrives from outside (a wallet, an API body): every part is checked for its JSON
        shape here — ``types`` an object of ``[{name, type}]`` lists naming the primary type,
        the domain's fields (``chainId`` a uint256), ``message`` an object — so that hashing
        or reading it later cannot fail; ``InputError`` names the part (``where.types``, ...).
        The message's values are checked against their types where the ledger's actions are
        known (:class:`SignedAction`)."""
        if not isinstance(data, Mapping):
            raise InputError(where, "must be a JSON object (eth_signTypedData_v4)")
        for key in ("types", "primaryType", "domain", "message"):
            if key not in data:
                raise InputError(f"{where}.{key}", "missing from the typed data")
        raw_types = data["types"]
        if not isinstance(raw_types, Mapping):
            raise InputError(f"{where}.types", "must be an object of struct name → fields")
        types = {
            str(name): _struct_fields(f"{where}.types.{name}", fields)
            for name, fields in raw_types.items()
            if name != "EIP712Domain"
        }
        primary = data["primaryType"]
        if not isinstance(primary, str) or primary not in types:
            raise InputError(f"{where}.primaryType", f"{str(primary)[:80]!r} is not one of the "
                                                     "document's types")
        message = data["message"]
        if not isinstance(message, Mapping):
            raise InputError(f"{where}.message", "must be a JSON object")
        return cls(
            domain=Eip712Domain.from_json(data["domain"], where=f"{where}.domain"),
            primary_type=primary,
            types=types,
            message=dict(message),
        )


def _struct_fields(where: str, fields: object) -> StructFields:
    if not isinstance(fields, list | tuple):
        raise InputError(where, "must be a list of {name, type}")
    parsed: list[tuple[str, str]] = []
    for i, item in enumerate(fields):
        if (not isinstance(item, Mapping) or not isinstance(item.get("name"), str)
                or not isinstance(item.get("type"), str)):
            raise InputError(f"{where}[{i}]", "must be an object with string name and type")
        parsed.append((item["name"], item["type"]))
    return tuple(parsed)


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
    return checked_address(field_name, value)


def _bytes32(field_name: str, value: bytes) -> str:
    return "0x" + checked_bytes32(field_name, value).hex()


def _uint(field_name: str, value: int, bits: int = 256) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(field_name, f"{value!r} is not an integer")
    if not 0 <= value < 2**bits:
        raise InputError(field_name, f"{value} does not fit in uint{bits}")
    return str(value)


def _bytes32_list(field_name: str, values: Sequence[bytes]) -> list[str]:
    return [_bytes32(f"{field_name}[{i}]", v) for i, v in enumerate(values)]


def parse_uint(field_name: str, value: object, bits: int = 256) -> int:
    """A ``uint<bits>`` as typed data carries it — a JSON integer, a decimal string or a
    ``0x`` hex string — or ``InputError`` naming the field (a value that does not fit would
    fail the ABI encoding of the digest later)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(field_name, f"{str(value)[:80]!r} is not an integer")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 80:  # 2**256 has 78 decimal digits
            raise InputError(field_name, f"does not fit in uint{bits}")
        try:
            number = int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)
        except ValueError:
            raise InputError(field_name, f"{text!r} is not an integer") from None
    else:
        number = value
    if not 0 <= number < 2**bits:
        raise InputError(field_name, f"does not fit in uint{bits}")
    return number


def parse_bytes32(field_name: str, value: object) -> bytes:
    """A ``bytes32`` as typed data carries it (``0x`` + 64 hex digits; raw bytes too)."""
    if isinstance(value, bytes | bytearray):
        return checked_bytes32(field_name, value)
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or len(value) != 66:
        raise InputError(field_name, "must be 0x + 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(field_name, "is not hex") from None


def parse_ledger_value(field_name: str, solidity_type: str, value: object) -> Any:
    """One field of a ledger action's message, parsed by its Solidity type: ``address`` →
    checksummed address, ``bytes32`` → bytes, ``uint<N>`` → int in range, ``bytes32[]`` →
    list of bytes; ``InputError`` naming the field otherwise. The one home of these rules
    (:func:`kizuna.services.onchain.signed_field` reads fields through it)."""
    if solidity_type == "address":
        return _address(field_name, value)
    if solidity_type == "bytes32":
        return parse_bytes32(field_name, value)
    if solidity_type == "bytes32[]":
        if not isinstance(value, list | tuple):
            raise InputError(field_name, "must be a list")
        return [parse_bytes32(f"{field_name}[{i}]", v) for i, v in enumerate(value)]
    if solidity_type.startswith("uint") and solidity_type[4:].isdigit():
        return parse_uint(field_name, value, int(solidity_type[4:]))
    raise ValueError(f"no parser for the Solidity type {solidity_type!r}")




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
REGISTER_BATCH_FIELDS: StructFields = (
    ("patient", "address"),
    ("root", "bytes32"),
    ("count", "uint32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)

# --- the study registry's signed actions -------------------------------------------------------
# Mirrors contracts/interfaces/IStudyRegistry.sol (STUDY_CONSENT_TYPEHASH,
# STUDY_WITHDRAWAL_TYPEHASH), in its own domain, with one nonce sequence for both.

STUDY_DOMAIN_NAME = "Kizuna StudyRegistry"
STUDY_DOMAIN_VERSION = "1"

STUDY_CONSENT_FIELDS: StructFields = (
    ("patient", "address"),
    ("studyId", "bytes32"),
    ("scopeId", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
STUDY_WITHDRAWAL_FIELDS: StructFields = (
    ("patient", "address"),
    ("studyId", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)

SIGNED_ACTIONS: Mapping[str, StructFields] = {
    "Grant": GRANT_FIELDS,
    "GrantBatch": GRANT_BATCH_FIELDS,
    "Revoke": REVOKE_FIELDS,
    "RegisterRecord": REGISTER_RECORD_FIELDS,
    "RegisterBatch": REGISTER_BATCH_FIELDS,
    "StudyConsent": STUDY_CONSENT_FIELDS,
    "StudyWithdrawal": STUDY_WITHDRAWAL_FIELDS,
}
"""Every EIP-712 primary type a patient signs for the relayer, by name (the consent ledger's,
and the study registry's ``StudyConsent`` and ``StudyWithdrawal``: see
:data:`STUDY_ACTIONS`)."""

STUDY_ACTIONS = frozenset({"StudyConsent", "StudyWithdrawal"})
"""The signed actions submitted to the study registry (in its domain); the others go to the
consent ledger."""

ZERO32 = bytes(32)


def ledger_domain(*, chain_id: int, ledger: Address) -> Eip712Domain:
    """The consent ledger's EIP-712 domain on ``chain_id`` at address ``ledger``."""
    return Eip712Domain(
        name=LEDGER_DOMAIN_NAME,
        version=LEDGER_DOMAIN_VERSION,
        chain_id=chain_id,
        verifying_contract=_address("ledger", ledger),
    )


def studies_domain(*, chain_id: int, studies: Address) -> Eip712Domain:
    """The study registry's EIP-712 domain on ``chain_id`` at address ``studies``."""
    return Eip712Domain(
        name=STUDY_DOMAIN_NAME,
        version=STUDY_DOMAIN_VERSION,
        chain_id=chain_id,
        verifying_contract=_address("studies", studies),
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


def register_batch_typed_data(
    domain: Eip712Domain, *, patient: Address, root: bytes, count: int, nonce: int,
    deadline: int,
) -> TypedData:
    """``RegisterBatch``: ``count`` records at once under the Merkle ``root`` of their leaves
    (:mod:`kizuna.batch`). The contract refuses a zero root or count; so does this, naming
    the field, before anyone is asked to sign."""
    if not any(checked_bytes32("root", root)):
        raise InputError("root", "a batch's Merkle root must not be zero")
    if isinstance(count, int) and not isinstance(count, bool) and count == 0:
        raise InputError("count", "a batch holds at least one record")
    return _typed(domain, "RegisterBatch", {
        "patient": _address("patient", patient),
        "root": _bytes32("root", root),
        "count": _uint("count", count, 32),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


def study_consent_typed_data(
    domain: Eip712Domain, *, patient: Address, study_id: bytes, scope_id: bytes, nonce: int,
    deadline: int,
) -> TypedData:
    """``StudyConsent``: the patient consents to study ``study_id`` for its copy's scope
    ``scope_id`` (the registry checks the researcher's live grant of it)."""
    return _typed(domain, "StudyConsent", {
        "patient": _address("patient", patient),
        "studyId": _bytes32("studyId", study_id),
        "scopeId": _bytes32("scopeId", scope_id),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


def study_withdrawal_typed_data(
    domain: Eip712Domain, *, patient: Address, study_id: bytes, nonce: int, deadline: int,
) -> TypedData:
    """``StudyWithdrawal``: the patient withdraws the consent to study ``study_id`` (its nonce
    is the registry's one sequence, shared with ``StudyConsent``)."""
    return _typed(domain, "StudyWithdrawal", {
        "patient": _address("patient", patient),
        "studyId": _bytes32("studyId", study_id),
        "nonce": _uint("nonce", nonce),
        "deadline": _uint("deadline", deadline),
    })


@dataclass(frozen=True, slots=True)
class SignedAction:
    """A patient's signed action: the typed data and the 65-byte signature over it."""

    typed: TypedData
    signature: bytes

    def __post_init__(self) -> None:
        kind = self.typed.primary_type
        if kind not in SIGNED_ACTIONS:
            raise InputError("typed_data.primaryType", f"{kind[:80]!r} is no Kizuna signed "
                                                       "action")
        if len(self.signature) != 65:
            raise InputError("signature", f"must be 65 bytes, got {len(self.signature)}")
        # Every part checked now, so that relaying, hashing or reading the action later
        # cannot fail on what a client sent: the ledger's own struct, each field present and
        # valid for its Solidity type, nothing else.
        fields = SIGNED_ACTIONS[kind]
        if {name: tuple(f) for name, f in self.typed.types.items()} != {kind: fields}:
            raise InputError("typed_data.types", f"are not Kizuna's {kind} type")
        message = self.typed.message
        for name, solidity_type in fields:
            if name not in message:
                raise InputError(f"typed_data.message.{name}", "missing")
            parse_ledger_value(f"typed_data.message.{name}", solidity_type, message[name])
        extra = sorted(set(message) - {name for name, _ in fields})
        if extra:
            raise InputError(f"typed_data.message.{str(extra[0])[:80]}",
                             f"is not a field of {kind}")

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
    "REGISTER_BATCH_FIELDS",
    "REGISTER_RECORD_FIELDS",
    "REVOKE_FIELDS",
    "SIGNED_ACTIONS",
    "STUDY_ACTIONS",
    "STUDY_CONSENT_FIELDS",
    "STUDY_DOMAIN_NAME",
    "STUDY_DOMAIN_VERSION",
    "STUDY_WITHDRAWAL_FIELDS",
    "Eip712Domain",
    "SignedAction",
    "StructFields",
    "TypedData",
    "grant_batch_typed_data",
    "grant_typed_data",
    "ledger_domain",
    "parse_bytes32",
    "parse_ledger_value",
    "parse_uint",
    "register_batch_typed_data",
    "register_record_typed_data",
    "revoke_typed_data",
    "studies_domain",
    "study_consent_typed_data",
    "study_withdrawal_typed_data",
]
