"""Typed ids shared by every layer, and the one parser of addresses and 32-byte ids at a boundary.

A wrong kind of id is a type error, not a silent bug; a malformed one is an ``InputError``
naming the field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NewType

from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address

from kizuna.errors import InputError

Address = ChecksumAddress
"""An EIP-55 checksummed Ethereum address."""

RecordId = NewType("RecordId", bytes)
"""32 random bytes naming one record on-chain (never derived from its content)."""

ScopeId = NewType("ScopeId", bytes)
"""32 bytes: a scope label blinded per patient (keyed hash), opaque to the chain."""

Commitment = NewType("Commitment", bytes)
"""32 bytes: a hash of a record's ciphertext (envelope), registered on-chain."""

Cid = NewType("Cid", str)
"""A CIDv1 (base32 multibase string) of content in a content store."""

ScopeLabel = NewType("ScopeLabel", str)
"""A human scope label following FHIR, e.g. ``Observation:laboratory`` (never on-chain)."""


@lru_cache(maxsize=65_536)
def checksum_address(value: str) -> Address:
    """``to_checksum_address`` with a cache (each costs a keccak; a read path makes ~10)."""
    return to_checksum_address(value)


def checked_address(field: str, value: object) -> Address:
    """An EIP-55 address, or ``InputError`` naming ``field``."""
    if not isinstance(value, str) or not is_address(value):
        raise InputError(field, f"{value!r} is not an Ethereum address")
    return checksum_address(value)


def checked_bytes32(field: str, value: object) -> bytes:
    """Exactly 32 bytes, or ``InputError`` naming ``field``."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InputError(field, "must be exactly 32 bytes")
    return bytes(value)


__all__ = [
    "Address",
    "Cid",
    "Commitment",
    "RecordId",
    "ScopeId",
    "ScopeLabel",
    "checked_address",
    "checked_bytes32",
    "checksum_address",
]
