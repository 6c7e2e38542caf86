"""KfragStore: only verified fragments bound to the patient's wallet-signed scope keys; the
index follower deletes the fragments of grants revoked or expired on-chain."""

from __future__ import annotations

import time

import pytest
from harness import Stack

from kizuna.crypto import pre
from kizuna.errors import AccessDenied, ConflictError, FragmentError, InputError
from kizuna.proxy.kfrags import sign_scope_keys
from kizuna.services.follower import IndexFollower
from kizuna.services.read import NoKeyFragments, serve_read


def _register(stack: Stack, patient, scope_id, *, signer_key=None, delegating=None):  # type: ignore[no-untyped-def]
    delegating = delegating or patient.keys.scope_delegating_key(scope_id).public_key
    signature = sign_scope_keys(signer_key or patient.private_key, stack.ctx.domain,
                                patient=patient.address, scope_id=scope_id,
                                delegating_key=delegating,
                                verifying_key=patient.keys.verifying_key)
    return stack.ctx.kfrags.register_scope_keys(
        patient=patient.address, scope_id=scope_id, delegating_key=delegating,
        verifying_key=patient.keys.verifying_key, signature=signature)


def test_a_stranger_cannot_register_keys_in_a_patients_name(stack: Stack) -> None:
    patient, stranger = stack.party(), stack.party()
    scope_id = stack.scope(patient)
    with pytest.raises(AccessDenied, match="not by the patient"):
        _register(stack, patient, scope_id, signer_key=stranger.private_key)
    assert stack.ctx.kfrags.scope_keys(patient.address, scope_id) is None


def test_scope_keys_once_bound_do_not_change(stack: Stack) -> None:
    patient = stack.party()
    scope_id = stack.scope(patient)
    first = _register(stack, patient, scope_id)
    assert _register(stack, patient, scope_id) == first  # idempotent
    with pytest.raises(ConflictError, match="other keys"):
        _register(stack, patient, scope_id, delegating=pre.UmbralSecretKey.random().public_key)


def test_forged_kfrags_are_refused(stack: Stack) -> None:
    patient, provider, stranger = stack.party(), stack.provider(), stack.party()
    scope_id = stack.scope(patient)
    _register(stack, patient, scope_id)
    receiving = stack.ctx.access.provider_keys.key_of(provider.address)
    # A stranger's own delegation "for" the patient's scope: signed by the wrong keys.
    forged = pre.generate_kfrags(stranger.keys.scope_delegating_key(scope_id),
                                 provider.keys.public_key, stranger.keys.signer(),
                                 threshold=1, shares=1)
    with pytest.raises(FragmentError):
        stack.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[forged[0].to_bytes()])
    # The patient's real delegation, but made for another key than the registry's.
    wrong_key = pre.generate_kfrags(patient.keys.scope_delegating_key(scope_id),
                                    stranger.keys.public_key, patient.keys.signer(),
                                    threshold=1, shares=1)
    with pytest.raises(FragmentError):
        stack.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[wrong_key[0].to_bytes()])
    with pytest.raises(InputError, match=r"kfrags\[0\]"):
        stack.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[b"\x00" * 40])
    with pytest.raises(InputError, match="kfrags"):
        stack.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving, kfrags=[])
    assert stack.ctx.kfrags.count(patient=patient.address) == 0


def test_kfrags_need_registered_scope_keys(stack: Stack) -> None:
    patient, provider = stack.party(), stack.provider()
    scope_id = stack.scope(patient)
    kfrags = pre.generate_kfrags(patient.keys.scope_delegating_key(scope_id),
                                 provider.keys.public_key, patient.keys.signer(),
                                 threshold=1, shares=1)
    with pytest.raises(AccessDenied, match="register_scope_keys"):
        stack.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address,
                             receiving_key=provider.keys.public_key,
                             kfrags=[kfrags[0].to_bytes()])


def test_put_replaces_get_verifies_delete_and_delete_all(stack: Stack) -> None:
    patient, p1, p2 = stack.party(), stack.provider(), stack.provider()
    s1, s2 = stack.scope(patient, "Observation"), stack.scope(patient, "Condition")
    assert stack.hand_kfrags(patient, p1, s1, shares=3, threshold=2) == 3
    assert stack.hand_kfrags(patient, p1, s1, shares=2, threshold=2) == 2  # replaced
    stack.hand_kfrags(patient, p1, s2)
    stack.hand_kfrags(patient, p2, s1)
    got = stack.ctx.kfrags.get(patient=patient.address, scope_id=s1, provider=p1.address)
    assert got is not None and len(got.kfrags) == 2
    assert got.receiving_key == p1.keys.public_key
    assert got.delegating_key == patient.keys.scope_delegating_key(s1).public_key
    assert stack.ctx.kfrags.delete(patient=patient.address, scope_id=s1,
                                   provider=p1.address) == 2
    assert stack.ctx.kfrags.get(patient=patient.address, scope_id=s1,
                                provider=p1.address) is None
    assert stack.ctx.kfrags.delete_all(patient=patient.address, provider=p1.address) == 1
    assert stack.ctx.kfrags.count(patient=patient.address) == 1  # p2's remain


def test_follower_deletes_kfrags_of_grants_revoked_on_chain(stack: Stack) -> None:
    patient, provider, other = stack.party(), stack.provider(), stack.provider()
    record = stack.add_record(patient)
    s1 = stack.grant(patient, provider, label="Observation")
    s2 = stack.grant(patient, provider, label="Condition")
    stack.grant(patient, other, label="Observation")
    follower = IndexFollower(stack.ctx)
    assert follower.tick().deleted == ()
    # Revoked directly on-chain (not through the service):
    stack.chain.ledger.revoke(provider.address, s1, signer=patient.signer)
    result = follower.tick()
    assert result.deleted == ((patient.address, s1, provider.address),)
    assert stack.ctx.kfrags.get(patient=patient.address, scope_id=s2,
                                provider=provider.address) is not None
    # Even with a fresh grant, the deleted kfrags are gone: the read is refused.
    stack.chain.ledger.grant(provider.address, s1, stack.env.now() + 3600,
                             signer=patient.signer)
    request, signature = stack.request(provider, patient, record)
    with pytest.raises(NoKeyFragments):
        serve_read(stack.ctx, request=request, signature=signature)
    # revokeAll removes every fragment of the pair, not the other provider's.
    stack.chain.ledger.revoke_all(provider.address, signer=patient.signer)
    follower.tick()
    assert stack.ctx.kfrags.count(patient=patient.address, provider=provider.address) == 0
    assert stack.ctx.kfrags.count(patient=patient.address, provider=other.address) == 1


def test_follower_deletes_kfrags_of_expired_grants(stack: Stack) -> None:
    patient, provider = stack.party(), stack.provider()
    stack.grant(patient, provider, expires_in=100)
    follower = IndexFollower(stack.ctx)
    assert follower.tick().deleted == ()
    stack.env.advance(200)
    assert len(follower.tick().deleted) == 1
    assert stack.ctx.kfrags.count(patient=patient.address) == 0


def test_follower_keeps_kfrags_of_a_grant_the_index_has_not_seen(stack: Stack) -> None:
    patient, provider = stack.party(), stack.provider()
    follower = IndexFollower(stack.ctx)
    follower.tick()
    scope_id = stack.scope(patient)
    stack.chain.ledger.grant(provider.address, scope_id, stack.env.now() + 3600,
                             signer=patient.signer)
    stack.hand_kfrags(patient, provider, scope_id)
    # The index is behind the grant: pretend so by judging at the old head.
    stack.ctx.index.index.sync = lambda **_: stack.ctx.index.index.head  # type: ignore[method-assign]
    assert follower.tick().deleted == ()
    assert stack.ctx.kfrags.count(patient=patient.address) == 1


def test_follower_runs_in_the_background_and_stops(stack: Stack) -> None:
    patient, provider = stack.party(), stack.provider()
    scope_id = stack.grant(patient, provider)
    follower = IndexFollower(stack.ctx, interval_s=0.05)
    with follower:
        stack.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
        deadline = time.monotonic() + 20
        while stack.ctx.kfrags.count(patient=patient.address) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert follower._thread is None
    assert stack.ctx.kfrags.count(patient=patient.address) == 0
