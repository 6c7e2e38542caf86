"""Break-glass that the proxy can actually serve: the patient's *emergency kit*.

An emergency access (``openEmergencyAccess``, allowed by the patient's policy, always flagged for
review) is a permission on chain; but the proxy re-encrypts only with key fragments, and Umbral
fragments are made on the patient's side for a *known* receiving key. So a patient who allows
break-glass leaves, in advance, fragments of the scopes an emergency may need (allergies,
medications, conditions, ...) for the providers of the registry: the kit.

The kit lives in this module's own table, apart from the proxy's ``kfrags`` (which hold only
fragments of grants, and which the index follower prunes the moment a grant ends). A read that
only an open emergency access authorises (``VerifiedGrant.by_emergency``) is served with the
kit's fragments and nothing else (:func:`kit_kfrags`): never with fragments a grant left behind,
so a scope the patient kept out of the kit stays closed during an emergency even if an expired
or revoked grant of it once handed fragments to the proxy. The kit is never copied into
``kfrags``: when the emergency access ends, nothing of it is left to delete, and the access
check (chain state at the head) refuses every further break-glass read. Nothing in the kit
opens anything by itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from kizuna.access.grant import VerifiedGrant
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db.schema import emergency_kits
from kizuna.errors import AccessDenied, InputError
from kizuna.proxy.kfrags import StoredKfrags
from kizuna.services.grants import provider_key
from kizuna.services.onchain import checked_address, checked_bytes32
from kizuna.types import Address, ScopeId

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext


class NotInEmergencyKit(AccessDenied):
    """Only an emergency access authorises this read, and the patient's emergency kit for the
    provider holds no fragments of the record's scope: the proxy serves nothing else."""


def leave_kit(ctx: ServiceContext, *, patient: str, provider: str,
              kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int:
    """Keep the patient's fragments of some scopes for ``provider``'s break-glass (replacing
    its earlier kit); how many. They must verify against the patient's registered scope keys
    (only the patient can make such fragments) and the provider's registry key.

    The fragments are of one scope key ``epoch`` (docs/keys.md "Epochs") and replace the kit's
    fragments of that epoch only: a kit opens the records of every epoch it holds fragments
    of, so a patient re-leaves it (for the new epoch) when a revocation moves a scope's epoch."""
    epoch = checked_epoch("epoch", epoch)
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    receiving = provider_key(ctx, grantee)
    rows = []
    now = int(time.time())
    for raw, frags in kfrags.items():
        sid = ScopeId(checked_bytes32("kfrags", raw))
        keys = ctx.kfrags.scope_keys(owner, sid, epoch)
        if keys is None:
            raise AccessDenied(f"{owner} has not registered keys for scope 0x{sid.hex()} in "
                               f"epoch {epoch}")
        if not frags:
            raise InputError("kfrags", f"no fragments for scope 0x{sid.hex()}")
        verified = pre.verify_kfrags(list(frags), verifying_key=keys.verifying_key,
                                     delegating_key=keys.delegating_key,
                                     receiving_key=receiving)
        rows += [{"patient": owner, "provider": grantee, "scope_id": bytes(sid),
                  "epoch": epoch, "share_index": i, "kfrag": k.to_bytes(), "created_at": now}
                 for i, k in enumerate(verified)]
    with ctx.db.write() as conn:
        conn.execute(emergency_kits.delete().where(emergency_kits.c.patient == owner,
                                                   emergency_kits.c.provider == grantee,
                                                   emergency_kits.c.epoch == epoch))
        if rows:
            conn.execute(emergency_kits.insert(), rows)
    return len(rows)


def kit_scopes(ctx: ServiceContext, *, patient: str, provider: str) -> list[ScopeId]:
    """The scopes of ``patient``'s kit for ``provider`` (ids only)."""
    with ctx.db.read() as conn:
        rows = conn.execute(select(emergency_kits.c.scope_id).distinct().where(
            emergency_kits.c.patient == checked_address("patient", patient),
            emergency_kits.c.provider == checked_address("provider", provider))).all()
    return sorted(ScopeId(bytes(r[0])) for r in rows)


def kits_of(ctx: ServiceContext, *, patient: str) -> list[tuple[Address, list[ScopeId], int]]:
    """Every provider's part of ``patient``'s kit: the provider, its scopes (ids only) and how
    many fragments it holds, by provider. What the patient's page shows; the fragments stay
    here."""
    owner = checked_address("patient", patient)
    with ctx.db.read() as conn:
        rows = conn.execute(select(emergency_kits.c.provider, emergency_kits.c.scope_id).where(
            emergency_kits.c.patient == owner)).all()
    held: dict[str, list[bytes]] = {}
    for provider, scope in rows:
        held.setdefault(str(provider), []).append(bytes(scope))
    return [(checked_address("provider", provider), sorted({ScopeId(s) for s in scopes}),
             len(scopes)) for provider, scopes in sorted(held.items())]


def open_kit(ctx: ServiceContext, *, patient: str, provider: str) -> int:
    """Check that ``provider``'s part of the kit can serve now -- only while the chain shows an
    open emergency access of ``provider`` to ``patient`` (``AccessDenied`` otherwise) -- and
    that it verifies against the provider's current registry key; how many fragments it holds.
    Nothing is copied: break-glass reads take their fragments from the kit (:func:`kit_kfrags`)."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    until = ctx.chain.ledger.emergency_access_until(owner, grantee)
    if until <= ctx.chain.head().timestamp:
        raise AccessDenied(f"{grantee} has no open emergency access to {owner}")
    receiving = provider_key(ctx, grantee)
    with ctx.db.read() as conn:  # every (scope, key epoch) the kit holds fragments of
        held = conn.execute(select(emergency_kits.c.scope_id, emergency_kits.c.epoch).distinct()
                            .where(emergency_kits.c.patient == owner,
                                   emergency_kits.c.provider == grantee)).all()
    return sum(len(_verified(ctx, owner, grantee, ScopeId(bytes(scope)), receiving,
                             int(epoch)).kfrags)
               for scope, epoch in held)


def kit_kfrags(ctx: ServiceContext, grant: VerifiedGrant, *, epoch: int = 0) -> StoredKfrags:
    """The fragments a break-glass read (``grant.by_emergency``) is served with: the patient's
    kit for the grant's provider and scope, verified against the patient's registered scope keys
    and the provider's registry key the access check read. ``NotInEmergencyKit`` when the kit
    has none of that scope, whatever else the proxy holds."""
    return _verified(ctx, grant.patient, grant.grantee, grant.scope_id, grant.grantee_key,
                     epoch)


def _verified(ctx: ServiceContext, patient: Address, provider: Address, scope: ScopeId,
              receiving: pre.UmbralPublicKey, epoch: int = 0) -> StoredKfrags:
    with ctx.db.read() as conn:
        rows = conn.execute(select(emergency_kits.c.kfrag).where(
            emergency_kits.c.patient == patient, emergency_kits.c.provider == provider,
            emergency_kits.c.scope_id == bytes(scope), emergency_kits.c.epoch == epoch)
            .order_by(emergency_kits.c.share_index)).all()
    keys = ctx.kfrags.scope_keys(patient, scope, epoch) if rows else None
    if keys is None:
        raise NotInEmergencyKit(f"{patient}'s emergency kit for {provider} does not hold scope "
                                f"0x{bytes(scope).hex()}: break-glass opens only the kit's scopes")
    verified = pre.verify_kfrags([bytes(r[0]) for r in rows], verifying_key=keys.verifying_key,
                                 delegating_key=keys.delegating_key, receiving_key=receiving)
    return StoredKfrags(patient=patient, scope_id=scope, provider=provider, kfrags=verified,
                        delegating_key=keys.delegating_key, receiving_key=receiving,
                        verifying_key=keys.verifying_key, epoch=epoch)


__all__ = ["NotInEmergencyKit", "emergency_kits", "kit_kfrags", "kit_scopes", "kits_of",
           "leave_kit", "open_kit"]
