"""Break-glass that the proxy can actually serve: the patient's *emergency kit*.

An emergency access (``openEmergencyAccess``, allowed by the patient's policy, always flagged for
review) is a permission on chain; but the proxy re-encrypts only with key fragments, and Umbral
fragments are made on the patient's side for a *known* receiving key. So a patient who allows
break-glass leaves, in advance, fragments of the scopes an emergency may need (allergies,
medications, conditions, ...) for the providers of the registry: the kit.

The kit lives in this module's own table, apart from the proxy's ``kfrags`` (which hold only
what a live grant or an open emergency access allows, and which the index follower prunes).
When a provider's break-glass access is confirmed (:func:`open_kit`, called by
``guardians.confirm_break_glass``), its part of the kit is verified again and handed to the
proxy's ``KfragStore``; every read is still decided by the access check on chain state, so the
fragments serve only while the emergency access is open, and the follower deletes them once
it has ended. Nothing in the kit opens anything by itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from kizuna.crypto import pre
from kizuna.db.schema import emergency_kits
from kizuna.errors import AccessDenied, InputError
from kizuna.services.grants import provider_key
from kizuna.services.onchain import checked_address, checked_bytes32
from kizuna.types import ScopeId

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext

def leave_kit(ctx: ServiceContext, *, patient: str, provider: str,
              kfrags: Mapping[bytes, Sequence[bytes]]) -> int:
    """Keep the patient's fragments of some scopes for ``provider``'s break-glass (replacing
    its earlier kit); how many. They must verify against the patient's registered scope keys
    (only the patient can make such fragments) and the provider's registry key."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    receiving = provider_key(ctx, grantee)
    rows = []
    now = int(time.time())
    for raw, frags in kfrags.items():
        sid = ScopeId(checked_bytes32("kfrags", raw))
        keys = ctx.kfrags.scope_keys(owner, sid)
        if keys is None:
            raise AccessDenied(f"{owner} has not registered keys for scope 0x{sid.hex()}")
        if not frags:
            raise InputError("kfrags", f"no fragments for scope 0x{sid.hex()}")
        verified = pre.verify_kfrags(list(frags), verifying_key=keys.verifying_key,
                                     delegating_key=keys.delegating_key,
                                     receiving_key=receiving)
        rows += [{"patient": owner, "provider": grantee, "scope_id": bytes(sid),
                  "share_index": i, "kfrag": k.to_bytes(), "created_at": now}
                 for i, k in enumerate(verified)]
    with ctx.db.write() as conn:
        conn.execute(emergency_kits.delete().where(emergency_kits.c.patient == owner,
                                                   emergency_kits.c.provider == grantee))
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


def open_kit(ctx: ServiceContext, *, patient: str, provider: str) -> int:
    """Hand ``provider``'s part of the kit to the proxy — only while the chain shows an open
    emergency access of ``provider`` to ``patient`` (``AccessDenied`` otherwise); how many
    fragments the proxy now holds from it."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    until = ctx.chain.ledger.emergency_access_until(owner, grantee)
    if until <= ctx.chain.head().timestamp:
        raise AccessDenied(f"{grantee} has no open emergency access to {owner}")
    with ctx.db.read() as conn:
        rows = conn.execute(select(emergency_kits.c.scope_id, emergency_kits.c.kfrag).where(
            emergency_kits.c.patient == owner, emergency_kits.c.provider == grantee)
            .order_by(emergency_kits.c.scope_id, emergency_kits.c.share_index)).all()
    by_scope: dict[bytes, list[bytes]] = {}
    for scope, kfrag in rows:
        by_scope.setdefault(bytes(scope), []).append(bytes(kfrag))
    receiving = provider_key(ctx, grantee)
    handed = 0
    for scope, frags in by_scope.items():
        handed += ctx.kfrags.put(patient=owner, scope_id=ScopeId(scope), provider=grantee,
                                 receiving_key=receiving, kfrags=frags)
    return handed


__all__ = ["emergency_kits", "kit_scopes", "leave_kit", "open_kit"]
