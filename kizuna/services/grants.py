"""Grants on the service side: a patient shares scopes with a provider, and takes them back.

A grant has two halves that must agree: the on-chain grant (the authority) and the key fragments
the proxy needs to re-encrypt for the provider (``kizuna.proxy.kfrags``). The order makes a
failure harmless::

    1. check the fragments *before* anything is sent: they must verify against the patient's
       registered scope keys and the provider's Umbral key from the provider registry;
    2. the chain: the patient's signed Grant / GrantBatch relayed, or the wallet's transaction
       awaited, and its AccessGranted(Batch) event checked;
    3. only then store the fragments.

So a failure at 1 or 2 leaves no fragments for a grant that is not on chain; a failure at 3
leaves an on-chain grant the proxy cannot serve yet (reads are refused, nothing leaks) and the
same call can be repeated with a fresh authorization. A revoke goes the other way round: the
chain first (the authority), then the fragments are deleted (the index follower deletes them
too when it sees the event, so a revoke sent from any wallet is honoured).

Before a scope's first grant the patient binds their public scope keys to their address by a
signed statement (:func:`register_scope_keys`); see ``kizuna.proxy.kfrags`` for why.

Key epochs (docs/keys.md "Epochs"): every revocation of a scope moves its delegating key to a
new epoch (:func:`scope_epoch`, counted by the event index from the chain), so fragments someone
kept open nothing written afterwards. A revoke deletes the revoked grantee's fragments of every
epoch; the patient's side then registers the new epoch's keys and re-issues fragments of it to
the grantees that remain (:func:`reissue_kfrags`), which keep their fragments of the old epochs
for the old records. A grant's fragments are of the scope's current epoch; fragments of earlier
epochs (to open older records) are re-issued the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.chain.models import Grant, Provider, TxReceipt
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.errors import AccessDenied, InputError, NotFoundError
from kizuna.services.onchain import (
    checked_address,
    checked_bytes32,
    prepare,
    require_event,
    signed_field,
    submit,
)
from kizuna.types import Address, ScopeId
from kizuna.wire.consent import GrantResult, RevokeResult
from kizuna.wire.onchain import PreparedAction, SentTransaction
from kizuna.wire.scopes import ScopeKeys, scope_keys_typed_data

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext

MAX_SCOPES_PER_GRANT = 64


# --- scope keys -------------------------------------------------------------------------------


def scope_epoch(ctx: ServiceContext, *, patient: str, scope_id: bytes) -> int:
    """The scope's key epoch at the chain head (the event index's count of its revocations):
    new records of the scope are encrypted to that epoch's key."""
    return ctx.index.scope_epoch(checked_address("patient", patient),
                                 ScopeId(checked_bytes32("scope_id", scope_id)))


def scope_keys_statement(ctx: ServiceContext, *, patient: str, scope_id: bytes,
                         delegating_key: bytes, verifying_key: bytes,
                         epoch: int = 0) -> TypedData:
    """The ``ScopeKeys`` document the patient's wallet signs (``eth_signTypedData_v4``)."""
    return scope_keys_typed_data(
        ctx.domain, patient=checked_address("patient", patient),
        scope_id=checked_bytes32("scope_id", scope_id),
        delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key, field="delegating_key"),
        verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key, field="verifying_key"),
        epoch=checked_epoch("epoch", epoch))


def register_scope_keys(ctx: ServiceContext, *, patient: str, scope_id: bytes,
                        delegating_key: bytes, verifying_key: bytes,
                        signature: bytes, epoch: int = 0) -> ScopeKeys:
    """Bind a scope's public keys of one epoch to the patient (their wallet's signature;
    idempotent). Only the current epoch or an earlier one (``InputError`` for a later one:
    nothing may be encrypted to it yet)."""
    owner = checked_address("patient", patient)
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    wanted = checked_epoch("epoch", epoch)
    current = ctx.index.scope_epoch(owner, sid) if wanted else 0
    if wanted > current:
        raise InputError("epoch", f"scope 0x{sid.hex()[:16]}... is in key epoch {current}, "
                                  f"not {wanted}")
    return ctx.kfrags.register_scope_keys(
        patient=owner, scope_id=sid,
        delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key, field="delegating_key"),
        verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key, field="verifying_key"),
        signature=signature, epoch=wanted)


def scope_keys(ctx: ServiceContext, *, patient: str, scope_id: bytes,
               epoch: int | None = None) -> ScopeKeys:
    """A patient's registered keys of one scope in ``epoch`` (default: the current one, what a
    guardian encrypts a new record to)."""
    owner = checked_address("patient", patient)
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    wanted = (ctx.index.scope_epoch(owner, sid) if epoch is None
              else checked_epoch("epoch", epoch))
    keys = ctx.kfrags.scope_keys(owner, sid, wanted)
    if keys is None:
        raise NotFoundError(f"{owner} has registered no keys for scope 0x{sid.hex()} in key "
                            f"epoch {wanted}")
    return keys


def provider_key(ctx: ServiceContext, provider: str) -> pre.UmbralPublicKey:
    """The provider's Umbral key from the provider registry (``AccessDenied`` if not active)."""
    return registry_key(ctx.chain, provider)


def registry_key(chain: Chain, provider: str) -> pre.UmbralPublicKey:
    """:func:`provider_key` from any connection to the chain (a participant's own node too):
    ``NotFoundError`` when not registered, ``AccessDenied`` when suspended."""
    address = checked_address("provider", provider)
    entry = chain.registry.provider_of(address)
    if entry is None:
        raise NotFoundError(f"{address} is not a provider in the registry")
    if not entry.active:
        raise AccessDenied(f"provider {address} is suspended")
    return pre.UmbralPublicKey.from_bytes(entry.umbral_public_key, field="provider key")


# --- grant ------------------------------------------------------------------------------------


def _scope_list(scope_ids: Sequence[bytes]) -> tuple[ScopeId, ...]:
    if not scope_ids:
        raise InputError("scope_ids", "at least one scope is needed")
    if len(scope_ids) > MAX_SCOPES_PER_GRANT:
        raise InputError("scope_ids", f"at most {MAX_SCOPES_PER_GRANT} scopes per grant")
    ids = tuple(ScopeId(checked_bytes32(f"scope_ids[{i}]", s)) for i, s in enumerate(scope_ids))
    if len(set(ids)) != len(ids):
        raise InputError("scope_ids", "a scope is named twice")
    return ids


def grant_access(
    ctx: ServiceContext,
    *,
    patient: str,
    provider: str,
    scope_ids: Sequence[bytes],
    expires_at: int,
    kfrags: Mapping[bytes, Sequence[bytes]],
    authorization: SignedAction | SentTransaction,
    relayer: Relayer | None = None,
) -> GrantResult:
    """Grant ``provider`` the scopes until ``expires_at``: fragments checked, chain, fragments
    stored (see the module docstring for why in that order).

    ``kfrags`` maps each scope id to its serialized fragments for the provider's registry key,
    made from the scope's key of its *current* epoch (:func:`scope_epoch`); fragments of earlier
    epochs, for older records, follow with :func:`reissue_kfrags` once the grant is on chain.
    ``authorization``: the patient's signed ``Grant`` (one scope) / ``GrantBatch``, or the hash
    of a ``grant`` / ``grantBatch`` (or guardian ``...For``) transaction.
    """
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    ids = _scope_list(scope_ids)
    if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= 0:
        raise InputError("expires_at", "must be a positive unix time")
    given = {checked_bytes32("kfrags", k): list(v) for k, v in kfrags.items()}
    missing = [s for s in ids if s not in given]
    if missing:
        raise InputError("kfrags", f"no key fragments for scope 0x{missing[0].hex()}")
    extra = [s for s in given if s not in ids]
    if extra:
        raise InputError("kfrags", f"key fragments for scope 0x{extra[0].hex()}, not granted")
    receiving = provider_key(ctx, grantee)
    epochs = {sid: ctx.index.scope_epoch(owner, sid) for sid in ids}
    for sid in ids:  # 1. everything verifiable is verified before the chain sees anything
        keys = ctx.kfrags.scope_keys(owner, sid, epochs[sid])
        if keys is None:
            raise AccessDenied(f"{owner} has not registered keys for scope 0x{sid.hex()} in its "
                               f"key epoch {epochs[sid]}: register them (a signed statement) "
                               "before granting it")
        pre.verify_kfrags(given[sid], verifying_key=keys.verifying_key,
                          delegating_key=keys.delegating_key, receiving_key=receiving)
    if isinstance(authorization, SignedAction):
        _check_signed_grant(authorization, owner, grantee, ids, expires_at)
    receipt = submit(ctx.chain, relayer, authorization)  # 2. the chain
    _check_grant_event(ctx, receipt, owner, grantee, ids, expires_at)
    stored = 0
    for sid in ids:  # 3. the fragments, now that the grant is on chain
        stored += ctx.kfrags.put(patient=owner, scope_id=sid, provider=grantee,
                                 receiving_key=receiving, kfrags=given[sid], epoch=epochs[sid])
    return GrantResult(patient=owner, provider=grantee, scope_ids=ids, expires_at=expires_at,
                       tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                       kfrags_stored=stored)


def _check_signed_grant(action: SignedAction, patient: Address, provider: Address,
                        ids: tuple[ScopeId, ...], expires_at: int) -> None:
    if action.kind not in ("Grant", "GrantBatch"):
        raise InputError("signature", f"a {action.kind} signature cannot grant access")
    if (signed_field(action, "patient", "address") != patient
            or signed_field(action, "provider", "address") != provider):
        raise InputError("signature", "signed for another patient or provider")
    signed = ([signed_field(action, "scopeId", "bytes32")] if action.kind == "Grant"
              else signed_field(action, "scopeIds", "bytes32[]"))
    if signed != list(ids):
        raise InputError("signature", "signed for other scopes")
    if signed_field(action, "expiresAt", "uint") != expires_at:
        raise InputError("signature", "signed with another expiry")
    signed_field(action, "deadline", "uint")


def _check_grant_event(ctx: ServiceContext, receipt: TxReceipt, patient: Address,
                       provider: Address, ids: tuple[ScopeId, ...], expires_at: int) -> None:
    if len(ids) == 1 and ctx.chain.ledger.events(receipt, "AccessGranted"):
        require_event(ctx.chain, receipt, "AccessGranted", expected={
            "patient": patient, "provider": provider, "scopeId": ids[0],
            "expiresAt": expires_at})
        return
    require_event(ctx.chain, receipt, "AccessGrantedBatch", expected={
        "patient": patient, "provider": provider, "scopeIds": list(ids),
        "expiresAt": expires_at})


def prepare_grant(ctx: ServiceContext, *, patient: str, provider: str,
                  scope_ids: Sequence[bytes], expires_at: int, deadline: int,
                  sender: str | None = None) -> PreparedAction:
    """For a wallet: the grant transaction (``grantBatch`` for several scopes; ``...For`` when
    ``sender`` is a guardian) and the ``Grant`` / ``GrantBatch`` typed data (patient only)."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    ids = _scope_list(scope_ids)
    from_ = checked_address("sender", sender) if sender is not None else owner
    ledger = ctx.chain.ledger
    if len(ids) == 1:
        call = ledger.grant_call(grantee, ids[0], expires_at, patient=owner, sender=from_)
        typed = ledger.grant_typed_data(patient=owner, provider=grantee, scope_id=ids[0],
                                        expires_at=expires_at, deadline=deadline)
    else:
        call = ledger.grant_batch_call(grantee, ids, expires_at, patient=owner, sender=from_)
        typed = ledger.grant_batch_typed_data(patient=owner, provider=grantee, scope_ids=ids,
                                              expires_at=expires_at, deadline=deadline)
    return prepare(ctx.chain, call, sender=from_, typed=typed if from_ == owner else None)


def reissue_kfrags(ctx: ServiceContext, *, patient: str, provider: str, scope_id: bytes,
                   epoch: int, kfrags: Sequence[bytes]) -> int:
    """Store fragments of one key epoch for a grant that is live on chain now (no chain
    action): after a revocation moved the scope's epoch, for the grantees that remain; after a
    grant, for the epochs before the current one. ``AccessDenied`` without a live grant,
    ``InputError`` for an epoch later than the current one; the fragments must verify against
    the patient's registered keys of that epoch and the provider's registry key. How many were
    stored (they replace the grant's earlier fragments of that epoch)."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    wanted = checked_epoch("epoch", epoch)
    if not any(g.provider == grantee and g.scope_id == sid and g.live
               for g in ctx.index.grants_of(owner)):
        raise AccessDenied(f"{grantee} holds no live grant of scope 0x{sid.hex()} from {owner}")
    current = ctx.index.scope_epoch(owner, sid)
    if wanted > current:
        raise InputError("epoch", f"scope 0x{sid.hex()[:16]}... is in key epoch {current}, "
                                  f"not {wanted}")
    return ctx.kfrags.put(patient=owner, scope_id=sid, provider=grantee,
                          receiving_key=provider_key(ctx, grantee), kfrags=list(kfrags),
                          epoch=wanted)


# --- revoke -----------------------------------------------------------------------------------


def revoke_access(ctx: ServiceContext, *, patient: str, provider: str, scope_id: bytes,
                  authorization: SignedAction | SentTransaction,
                  relayer: Relayer | None = None) -> RevokeResult:
    """Revoke one scope: the chain first (signed ``Revoke`` relayed or the wallet's
    transaction awaited, ``AccessRevoked`` checked), then the fragments deleted (of every key
    epoch). The scope's key epoch has moved: the patient's side re-issues fragments of the new
    epoch to the remaining grantees (:func:`reissue_kfrags`)."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    if isinstance(authorization, SignedAction):
        if authorization.kind != "Revoke":
            raise InputError("signature", f"a {authorization.kind} signature cannot revoke")
        if (signed_field(authorization, "patient", "address") != owner
                or signed_field(authorization, "provider", "address") != grantee
                or signed_field(authorization, "scopeId", "bytes32") != sid):
            raise InputError("signature", "signed for another patient, provider or scope")
        signed_field(authorization, "deadline", "uint")
    receipt = submit(ctx.chain, relayer, authorization)
    require_event(ctx.chain, receipt, "AccessRevoked",
                  expected={"patient": owner, "provider": grantee, "scopeId": sid})
    deleted = ctx.kfrags.delete(patient=owner, scope_id=sid, provider=grantee)
    return RevokeResult(patient=owner, provider=grantee, scope_ids=(sid,),
                        tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                        kfrags_deleted=deleted)


def revoke_all(ctx: ServiceContext, *, patient: str, provider: str,
               authorization: SentTransaction) -> RevokeResult:
    """Revoke everything ``provider`` holds from ``patient`` (grants, open request, emergency
    access): the wallet's ``revokeAll`` transaction awaited, then every fragment deleted."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    if not isinstance(authorization, SentTransaction):
        raise InputError("signature", "revokeAll has no signed form: send the transaction")
    receipt = submit(ctx.chain, None, authorization)
    require_event(ctx.chain, receipt, "AllAccessRevoked",
                  expected={"patient": owner, "provider": grantee})
    deleted = ctx.kfrags.delete_all(patient=owner, provider=grantee)
    return RevokeResult(patient=owner, provider=grantee, scope_ids=(),
                        tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                        kfrags_deleted=deleted)


def prepare_revoke(ctx: ServiceContext, *, patient: str, provider: str, scope_id: bytes,
                   deadline: int, sender: str | None = None) -> PreparedAction:
    """For a wallet: the ``revoke`` transaction and the ``Revoke`` typed data."""
    owner = checked_address("patient", patient)
    grantee = checked_address("provider", provider)
    sid = ScopeId(checked_bytes32("scope_id", scope_id))
    from_ = checked_address("sender", sender) if sender is not None else owner
    ledger = ctx.chain.ledger
    call = ledger.revoke_call(grantee, sid, patient=owner, sender=from_)
    typed = ledger.revoke_typed_data(patient=owner, provider=grantee, scope_id=sid,
                                     deadline=deadline)
    return prepare(ctx.chain, call, sender=from_, typed=typed if from_ == owner else None)


def prepare_revoke_all(ctx: ServiceContext, *, patient: str, provider: str,
                       sender: str | None = None) -> PreparedAction:
    """For a wallet: the ``revokeAll`` transaction (it has no signed form)."""
    owner = checked_address("patient", patient)
    from_ = checked_address("sender", sender) if sender is not None else owner
    call = ctx.chain.ledger.revoke_all_call(checked_address("provider", provider),
                                            patient=owner, sender=from_)
    return prepare(ctx.chain, call, sender=from_)


# --- break-glass ------------------------------------------------------------------------------


def active_providers(ctx: ServiceContext) -> list[Provider]:
    """Every active provider of the registry (as of the chain head), with its Umbral key."""
    fresh = ctx.index
    fresh.head()
    return fresh.index.providers(active_only=True)


# --- who may read what ------------------------------------------------------------------------


def grants_of(ctx: ServiceContext, *, patient: str) -> list[Grant]:
    """The patient's live grants, as of the chain head."""
    return ctx.index.grants_of(checked_address("patient", patient))


def grants_to(ctx: ServiceContext, *, provider: str) -> list[Grant]:
    """The live grants a provider holds, as of the chain head."""
    return ctx.index.grants_to(checked_address("provider", provider))


def patients_of(ctx: ServiceContext, *, provider: str) -> list[Address]:
    """Patients with at least one live grant to ``provider``, as of the chain head."""
    return ctx.index.grantees(checked_address("provider", provider))


__all__ = [
    "active_providers",
    "grant_access",
    "grants_of",
    "grants_to",
    "patients_of",
    "prepare_grant",
    "prepare_revoke",
    "prepare_revoke_all",
    "provider_key",
    "register_scope_keys",
    "registry_key",
    "reissue_kfrags",
    "revoke_access",
    "revoke_all",
    "scope_epoch",
    "scope_keys",
    "scope_keys_statement",
]
