"""Consent actions on the wire: a grant or revocation confirmed on-chain, and any other action
the service confirmed by its event (guardians, emergency policy, break-glass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kizuna.types import Address, ScopeId


@dataclass(frozen=True, slots=True)
class GrantResult:
    """A grant confirmed on-chain, with the fragments the proxy now holds for it."""

    patient: Address
    provider: Address
    scope_ids: tuple[ScopeId, ...]
    expires_at: int
    tx_hash: bytes
    block_number: int
    kfrags_stored: int


@dataclass(frozen=True, slots=True)
class RevokeResult:
    """A revoke confirmed on-chain and the fragments deleted for it."""

    patient: Address
    provider: Address
    scope_ids: tuple[ScopeId, ...]
    """The revoked scopes; empty for a revokeAll (every scope of the pair)."""
    tx_hash: bytes
    block_number: int
    kfrags_deleted: int


@dataclass(frozen=True, slots=True)
class Confirmed:
    """An action confirmed on-chain: the event that proves it, where it was mined."""

    event: str
    args: dict[str, Any]
    tx_hash: bytes
    block_number: int
