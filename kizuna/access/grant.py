"""``VerifiedGrant``: proof, as a type, that the access check found a live on-chain grant.

Proxy re-encryption (:func:`kizuna.crypto.pre.reencrypt`) accepts nothing else, so "re-encrypt
without checking the chain" is not a call that can be written by accident. The type boundary:

* ``VerifiedGrant`` is a frozen dataclass whose constructor works only inside :func:`_issue`
  (a context variable says "issuing"); any other construction, ``dataclasses.replace`` included,
  raises ``TypeError``. Pickling and copying are refused too (unpickling would rebuild one
  without the constructor).
* :func:`_issue` is called only by the access check module (``kizuna.access.check``, to come),
  after reading the grant from the chain head.
* Until that module exists, :func:`placeholder_verified_grant` is the one documented way to make
  a ``VerifiedGrant`` (tests and benchmarks use it). It is named so that every call site is easy
  to find and to replace with the real check.

Python cannot make a constructor truly private; this is a type boundary that reviewers and
``grep _issue`` enforce, the same way pyUmbral's ``VerifiedKeyFrag`` is one.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from kizuna.types import Address, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.crypto.pre import UmbralPublicKey

_issuing: ContextVar[bool] = ContextVar("kizuna_access_issuing_grant", default=False)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class VerifiedGrant:
    """A grant the access check found live on-chain, for one provider and one record.

    ``grantee_key`` is the provider's Umbral public key from the provider registry: re-encryption
    refuses a key fragment made for any other key. ``expires_at`` (unix seconds) is re-checked
    against the wall clock when the grant is used; ``checked_at_block`` is the chain head the
    decision was made at (evidence for the read receipt).
    """

    patient: Address
    grantee: Address
    grantee_key: UmbralPublicKey
    record_id: RecordId
    scope_id: ScopeId
    expires_at: int
    checked_at_block: int

    def __post_init__(self) -> None:
        if not _issuing.get():
            raise TypeError(
                "a VerifiedGrant is made only by the access check (kizuna.access.check); "
                "it cannot be constructed directly"
            )
        if len(self.record_id) != 32:
            raise ValueError("record_id must be 32 bytes")
        if len(self.scope_id) != 32:
            raise ValueError("scope_id must be 32 bytes")

    def __repr__(self) -> str:
        return (
            f"VerifiedGrant(patient={self.patient}, grantee={self.grantee}, "
            f"record_id=0x{self.record_id.hex()}, scope_id=0x{self.scope_id.hex()}, "
            f"expires_at={self.expires_at}, checked_at_block={self.checked_at_block})"
        )

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a VerifiedGrant cannot be pickled or copied: re-run the access check")


def _issue(
    *,
    patient: Address,
    grantee: Address,
    grantee_key: UmbralPublicKey,
    record_id: RecordId,
    scope_id: ScopeId,
    expires_at: int,
    checked_at_block: int,
) -> VerifiedGrant:
    """Make a ``VerifiedGrant``. Only the access check may call this (after reading the chain)."""
    token = _issuing.set(True)
    try:
        return VerifiedGrant(
            patient=patient,
            grantee=grantee,
            grantee_key=grantee_key,
            record_id=record_id,
            scope_id=scope_id,
            expires_at=expires_at,
            checked_at_block=checked_at_block,
        )
    finally:
        _issuing.reset(token)


def placeholder_verified_grant(
    *,
    patient: Address,
    grantee: Address,
    grantee_key: UmbralPublicKey,
    record_id: RecordId,
    scope_id: ScopeId,
    expires_at: int,
    checked_at_block: int = 0,
) -> VerifiedGrant:
    """PLACEHOLDER until ``kizuna.access.check`` exists: a ``VerifiedGrant`` made WITHOUT
    looking at the chain. For tests, benchmarks and the interop check only; the access check
    replaces every call site of this function."""
    return _issue(
        patient=patient,
        grantee=grantee,
        grantee_key=grantee_key,
        record_id=record_id,
        scope_id=scope_id,
        expires_at=expires_at,
        checked_at_block=checked_at_block,
    )


__all__ = ["VerifiedGrant", "placeholder_verified_grant"]
