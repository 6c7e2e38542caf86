"""Typed ids shared by every layer. A wrong kind of id is a type error, not a silent bug."""

from __future__ import annotations

from typing import NewType

from eth_typing import ChecksumAddress

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

__all__ = ["Address", "Cid", "Commitment", "RecordId", "ScopeId", "ScopeLabel"]
