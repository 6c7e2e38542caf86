"""Revert decoding: raw revert data from any node becomes one :class:`ContractReverted`.

Nodes report a revert in different shapes:

* **anvil / Hardhat / geth** answer JSON-RPC error ``3`` with the revert bytes in ``error.data``
  (Hardhat sometimes nests them as ``error.data.data``); web3.py turns that into
  ``ContractCustomError`` / ``ContractPanicError`` / ``ContractLogicError`` with ``.data``.
* **eth-tester (py-evm)** raises ``TransactionFailed("execution reverted: b'...'")`` whose text
  holds the Python ``repr`` of the revert bytes, or the already decoded reason string for
  ``Error(string)``.

:func:`revert_data_from` digs the revert bytes out of any of these, and :class:`RevertDecoder`
turns them into ``ContractReverted(name, {arg: value, ...})`` using the custom errors of any set
of ABIs (plus OpenZeppelin's and Solidity's built-in ``Error(string)`` / ``Panic(uint256)``),
so the same revert reads the same on every node.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from kizuna.errors import ContractReverted

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
"""Selector of Solidity's ``Error(string)`` (``require(cond, "message")``)."""

PANIC_SELECTOR = bytes.fromhex("4e487b71")
"""Selector of Solidity's ``Panic(uint256)`` (assert, overflow, bad index, ...)."""

UNKNOWN_ERROR = "UnknownError"
"""Name given to revert data whose selector no known ABI declares."""

EMPTY_REVERT = "EmptyRevert"
"""Name given to a revert without data (``revert()``, out of gas, invalid opcode)."""

PANIC_REASONS: Mapping[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "malformed storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}

_OPENZEPPELIN_ERRORS: Sequence[Mapping[str, Any]] = (
    # OpenZeppelin Contracts 5.x errors the Kizuna contracts may raise through inherited code
    # or libraries; solc only lists in a contract's ABI the errors it can see being used, so
    # these are always known as a fallback.
    {"name": "AccessControlUnauthorizedAccount", "inputs": [("account", "address"),
                                                            ("neededRole", "bytes32")]},
    {"name": "AccessControlBadConfirmation", "inputs": []},
    {"name": "ECDSAInvalidSignature", "inputs": []},
    {"name": "ECDSAInvalidSignatureLength", "inputs": [("length", "uint256")]},
    {"name": "ECDSAInvalidSignatureS", "inputs": [("s", "bytes32")]},
    {"name": "InvalidAccountNonce", "inputs": [("account", "address"),
                                               ("currentNonce", "uint256")]},
    {"name": "InvalidShortString", "inputs": []},
    {"name": "StringTooLong", "inputs": [("str", "string")]},
    {"name": "MerkleProofInvalidMultiproof", "inputs": []},
    {"name": "SafeCastOverflowedUintDowncast", "inputs": [("bits", "uint8"),
                                                          ("value", "uint256")]},
)


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One custom error: its name, argument names and ABI types, and its 4-byte selector."""

    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.arg_types)})"

    @property
    def selector(self) -> bytes:
        return bytes(function_signature_to_4byte_selector(self.signature))


def abi_type_string(entry: Mapping[str, Any]) -> str:
    """The canonical type of an ABI input, expanding tuples (structs) recursively."""
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type_string(c) for c in entry.get("components", []))
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def error_specs(abi: Iterable[Mapping[str, Any]]) -> list[ErrorSpec]:
    """Every ``"type": "error"`` entry of an ABI as an :class:`ErrorSpec`."""
    specs: list[ErrorSpec] = []
    for entry in abi:
        if entry.get("type") != "error":
            continue
        inputs = entry.get("inputs", [])
        names = tuple(str(i.get("name") or f"arg{n}") for n, i in enumerate(inputs))
        types = tuple(abi_type_string(i) for i in inputs)
        specs.append(ErrorSpec(str(entry["name"]), names, types))
    return specs


def _normalise(value: Any, abi_type: str) -> Any:
    """ABI-decoded values in Kizuna's shapes: checksummed addresses, tuples to lists."""
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class RevertDecoder:
    """Decodes revert data with the custom errors of the given ABIs.

    Build one per connection from every Kizuna contract's ABI; :meth:`decode` never raises,
    unknown data becomes ``ContractReverted("UnknownError", {"selector": "0x..."})``.
    """

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]] = ()) -> None:
        self._by_selector: dict[bytes, ErrorSpec] = {}
        builtins = [
            ErrorSpec(str(e["name"]), tuple(n for n, _ in e["inputs"]),
                      tuple(t for _, t in e["inputs"]))
            for e in _OPENZEPPELIN_ERRORS
        ]
        for spec in builtins:
            self._by_selector[spec.selector] = spec
        for abi in abis:
            for spec in error_specs(abi):
                # The contracts' own declarations win over the built-in fallback table.
                self._by_selector[spec.selector] = spec

    @property
    def known_errors(self) -> list[str]:
        """Names of every custom error this decoder can decode, sorted."""
        return sorted(spec.name for spec in self._by_selector.values())

    def spec(self, name: str) -> ErrorSpec:
        """The :class:`ErrorSpec` of a named error (``KeyError`` when unknown)."""
        for spec in self._by_selector.values():
            if spec.name == name:
                return spec
        raise KeyError(name)

    def decode(self, data: bytes) -> ContractReverted:
        """``ContractReverted`` for raw revert bytes (selector + ABI-encoded arguments)."""
        if not data:
            return ContractReverted(EMPTY_REVERT, {}, data=b"")
        selector, body = data[:4], data[4:]
        if selector == ERROR_STRING_SELECTOR:
            try:
                (message,) = abi_decode(["string"], body)
            except (DecodingError, ValueError, OverflowError):
                return ContractReverted(UNKNOWN_ERROR, {"selector": "0x" + selector.hex()},
                                        data=data)
            return ContractReverted("Error", {"message": message}, data=data)
        if selector == PANIC_SELECTOR:
            try:
                (code,) = abi_decode(["uint256"], body)
            except (DecodingError, ValueError, OverflowError):
                code = -1
            return ContractReverted(
                "Panic", {"code": code, "reason": PANIC_REASONS.get(code, "unknown panic")},
                data=data,
            )
        spec = self._by_selector.get(selector)
        if spec is None:
            return ContractReverted(UNKNOWN_ERROR, {"selector": "0x" + selector.hex()},
                                    data=data)
        try:
            values = abi_decode(list(spec.arg_types), body)
        except (DecodingError, ValueError, OverflowError):
            return ContractReverted(UNKNOWN_ERROR, {"selector": "0x" + selector.hex()},
                                    data=data)
        args = {
            name: _normalise(value, abi_type)
            for name, abi_type, value in zip(spec.arg_names, spec.arg_types, values, strict=True)
        }
        return ContractReverted(spec.name, args, data=data)

    def from_exception(self, exc: BaseException) -> ContractReverted | None:
        """The decoded revert inside a provider's exception, or ``None`` if it is no revert."""
        found = revert_data_from(exc)
        if found is None:
            return None
        if isinstance(found, str):  # eth-tester already decoded an Error(string) reason
            return ContractReverted("Error", {"message": found}, data=b"")
        return self.decode(found)


_HEX_RE = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
_REVERTED_PREFIX = "execution reverted"


def _hex_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and _HEX_RE.match(value):
        return bytes.fromhex(value[2:])
    return None


def _data_in_rpc_error(error: Any) -> bytes | None:
    """Revert bytes inside a JSON-RPC ``error`` object (flat or nested ``data``)."""
    if not isinstance(error, Mapping):
        return None
    data = error.get("data")
    found = _hex_bytes(data)
    if found is not None:
        return found
    if isinstance(data, Mapping):  # Hardhat: {"message": ..., "data": "0x..."}
        return _data_in_rpc_error(data)
    return None


def _eth_tester_reason(message: str) -> bytes | str | None:
    """Parse eth-tester's ``execution reverted: b'...'`` (bytes repr) or ``: reason``."""
    text = message.strip()
    if text.startswith(_REVERTED_PREFIX):
        text = text[len(_REVERTED_PREFIX):].lstrip(": ")
        if not text:
            return b""
    if text[:2] in ("b'", 'b"'):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        return bytes(value) if isinstance(value, bytes) else None
    if message.strip().startswith(_REVERTED_PREFIX):
        return text  # a reason string eth-tester already decoded from Error(string)
    return None


def revert_data_from(exc: BaseException) -> bytes | str | None:
    """Revert bytes carried by an exception from web3.py, eth-tester, anvil or Hardhat.

    Returns the raw bytes, a plain reason string (eth-tester's decoded ``Error(string)``), or
    ``None`` when the exception is not a revert (connection error, nonce error, ...).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = getattr(current, "data", None)
        found = _hex_bytes(data)
        if found is not None:
            return found
        if isinstance(data, Mapping):
            nested = _data_in_rpc_error({"data": data})
            if nested is not None:
                return nested
        response = getattr(current, "rpc_response", None)
        if isinstance(response, Mapping):
            nested = _data_in_rpc_error(response.get("error"))
            if nested is not None:
                return nested
        if type(current).__name__ == "TransactionFailed" and current.args:
            parsed = _eth_tester_reason(str(current.args[0]))
            if parsed is not None:
                return parsed
        current = current.__cause__ or current.__context__
    return None


__all__ = [
    "EMPTY_REVERT",
    "ERROR_STRING_SELECTOR",
    "PANIC_REASONS",
    "PANIC_SELECTOR",
    "UNKNOWN_ERROR",
    "ErrorSpec",
    "RevertDecoder",
    "abi_type_string",
    "error_specs",
    "revert_data_from",
]
