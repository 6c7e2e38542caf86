"""``VerifiedGrant``: proof, as a type, that the access check found a live on-chain grant.

Proxy re-encryption (:func:`kizuna.crypto.pre.reencrypt`) accepts nothing else, so "re-encrypt
without checking the chain" is not a call that can be written by accident. The type boundary:

* ``VerifiedGrant`` is a frozen dataclass whose constructor works only inside :func:`_issue`
  (a context variable says "issuing"); any other construction, ``dataclasses.replace`` included,
  raises ``TypeError``. Pickling and copying are refused too (unpickling would rebuild one
  without the constructor).
* :func:`_issue` is called only by the access check (:mod:`kizuna.access.check`,
  ``AccessCheck.check_read``), after reading the grant at the chain head.
* :func:`placeholder_verified_grant` is TEST-ONLY: it makes a ``VerifiedGrant`` without looking
  at the chain, for unit tests of the cryptography, benchmarks of the bare re-encryption and the
  interop peer. No production code calls it (``grep placeholder_verified_grant kizuna/`` finds
  only this module); the service's read path gets its grants from the access check.

A ``VerifiedGrant`` is a decision about *now*, not a token to keep: its ``check_usable``
(called by ``reencrypt``) refuses one older than :data:`MAX_GRANT_AGE_S` seconds, or one whose
``expires_at`` has passed in chain time (the chain head's timestamp at the check plus the time
elapsed since, measured on this machine's monotonic clock -- so a node whose clock differs from
ours cannot make a live grant look expired or the reverse).

Python cannot make a constructor truly private; this is a type boundary that reviewers and
``grep _issue`` enforce, the same way pyUmbral's ``VerifiedKeyFrag`` is one.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from kizuna.errors import AccessDenied
from kizuna.types import Address, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.crypto.pre import UmbralPublicKey

MAX_GRANT_AGE_S = 60.0
"""A VerifiedGrant older than this is stale: re-run the access check (trust model, rule 3)."""

_issuing: ContextVar[bool] = ContextVar("kizuna_access_issuing_grant", default=False)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class VerifiedGrant:
    """A grant the access check found live on-chain, for one provider and one record.

    ``grantee_key`` is the provider's Umbral public key from the provider registry: re-encryption
    refuses a key fragment made for any other key. ``expires_at`` (unix seconds, exclusive, as
    the ledger stores it) is re-checked when the grant is used. ``checked_at_block`` and
    ``head_timestamp`` are the chain head the decision was made at (evidence for the receipt).
    """

    patient: Address
    grantee: Address
    grantee_key: UmbralPublicKey
    record_id: RecordId
    scope_id: ScopeId
    expires_at: int
    checked_at_block: int
    head_timestamp: int
    by_emergency: bool = False
    """Only an open emergency access (no live grant of the scope) authorises the read: the
    proxy then serves it with the patient's emergency kit alone (kizuna.services.emergency)."""
    issued_monotonic: float = field(default_factory=time.monotonic, compare=False)

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

    def check_usable(self) -> None:
        """``AccessDenied`` unless this decision is fresh and the grant still live in chain time."""
        elapsed = time.monotonic() - self.issued_monotonic
        if elapsed > MAX_GRANT_AGE_S:
            raise AccessDenied(
                f"the access decision for {self.grantee} is {elapsed:.0f} s old: "
                "re-run the access check"
            )
        if self.head_timestamp + elapsed >= self.expires_at:
            raise AccessDenied(f"the grant to {self.grantee} expired at {self.expires_at}")

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
    head_timestamp: int,
    by_emergency: bool = False,
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
            head_timestamp=head_timestamp,
            by_emergency=by_emergency,
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
    head_timestamp: int | None = None,
) -> VerifiedGrant:
    """TEST-ONLY: a ``VerifiedGrant`` made WITHOUT looking at the chain (``head_timestamp``
    defaults to this machine's clock). For tests, benchmarks and the interop check only;
    production code gets grants from ``kizuna.access.check.AccessCheck.check_read``."""
    return _issue(
        patient=patient,
        grantee=grantee,
        grantee_key=grantee_key,
        record_id=record_id,
        scope_id=scope_id,
        expires_at=expires_at,
        checked_at_block=checked_at_block,
        head_timestamp=int(time.time()) if head_timestamp is None else head_timestamp,
    )


__all__ = ["MAX_GRANT_AGE_S", "VerifiedGrant", "placeholder_verified_grant"]
