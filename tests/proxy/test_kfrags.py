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


def _register(core: Stack, patient, scope_id, *, signer_key=None, delegating=None):  # type: ignore[no-untyped-def]
    delegating = delegating or patient.keys.scope_delegating_key(scope_id).public_key
    signature = sign_scope_keys(signer_key or patient.private_key, core.ctx.domain,
                                patient=patient.address, scope_id=scope_id,
                                delegating_key=delegating,
                                verifying_key=patient.keys.verifying_key)
    return core.ctx.kfrags.register_scope_keys(
        patient=patient.address, scope_id=scope_id, delegating_key=delegating,
        verifying_key=patient.keys.verifying_key, signature=signature)


def test_a_stranger_cannot_register_keys_in_a_patients_name(core: Stack) -> None:
    patient, stranger = core.party(), core.party()
    scope_id = core.scope(patient)
    with pytest.raises(AccessDenied, match="not by the patient"):
        _register(core, patient, scope_id, signer_key=stranger.private_key)
    assert core.ctx.kfrags.scope_keys(patient.address, scope_id) is None


def test_scope_keys_once_bound_do_not_change(core: Stack) -> None:
    patient = core.party()
    scope_id = core.scope(patient)
    first = _register(core, patient, scope_id)
    assert _register(core, patient, scope_id) == first  # idempotent
    with pytest.raises(ConflictError, match="other keys"):
        _register(core, patient, scope_id, delegating=pre.UmbralSecretKey.random().public_key)


def test_forged_kfrags_are_refused(core: Stack) -> None:
    patient, provider, stranger = core.party(), core.provider(), core.party()
    scope_id = core.scope(patient)
    _register(core, patient, scope_id)
    receiving = core.ctx.access.provider_keys.key_of(provider.address)
    # A stranger's own delegation "for" the patient's scope: signed by the wrong keys.
    forged = pre.generate_kfrags(stranger.keys.scope_delegating_key(scope_id),
                                 provider.keys.public_key, stranger.keys.signer(),
                                 threshold=1, shares=1)
    with pytest.raises(FragmentError):
        core.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[forged[0].to_bytes()])
    # The patient's real delegation, but made for another key than the registry's.
    wrong_key = pre.generate_kfrags(patient.keys.scope_delegating_key(scope_id),
                                    stranger.keys.public_key, patient.keys.signer(),
                                    threshold=1, shares=1)
    with pytest.raises(FragmentError):
        core.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[wrong_key[0].to_bytes()])
    with pytest.raises(InputError, match=r"kfrags\[0\]"):
        core.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving,
                             kfrags=[b"\x00" * 40])
    with pytest.raises(InputError, match="kfrags"):
        core.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address, receiving_key=receiving, kfrags=[])
    assert core.ctx.kfrags.count(patient=patient.address) == 0


def test_kfrags_need_registered_scope_keys(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    scope_id = core.scope(patient)
    kfrags = pre.generate_kfrags(patient.keys.scope_delegating_key(scope_id),
                                 provider.keys.public_key, patient.keys.signer(),
                                 threshold=1, shares=1)
    with pytest.raises(AccessDenied, match="register_scope_keys"):
        core.ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                             provider=provider.address,
                             receiving_key=provider.keys.public_key,
                             kfrags=[kfrags[0].to_bytes()])


def test_put_replaces_get_verifies_delete_and_delete_all(core: Stack) -> None:
    patient, p1, p2 = core.party(), core.provider(), core.provider()
    s1, s2 = core.scope(patient, "Observation"), core.scope(patient, "Condition")
    assert core.hand_kfrags(patient, p1, s1, shares=3, threshold=2) == 3
    assert core.hand_kfrags(patient, p1, s1, shares=2, threshold=2) == 2  # replaced
    core.hand_kfrags(patient, p1, s2)
    core.hand_kfrags(patient, p2, s1)
    got = core.ctx.kfrags.get(patient=patient.address, scope_id=s1, provider=p1.address)
    assert got is not None and len(got.kfrags) == 2
    assert got.receiving_key == p1.keys.public_key
    assert got.delegating_key == patient.keys.scope_delegating_key(s1).public_key
    assert core.ctx.kfrags.delete(patient=patient.address, scope_id=s1,
                                   provider=p1.address) == 2
    assert core.ctx.kfrags.get(patient=patient.address, scope_id=s1,
                                provider=p1.address) is None
    assert core.ctx.kfrags.delete_all(patient=patient.address, provider=p1.address) == 1
    assert core.ctx.kfrags.count(patient=patient.address) == 1  # p2's remain


def test_follower_deletes_kfrags_of_grants_revoked_on_chain(core: Stack) -> None:
    patient, provider, other = core.party(), core.provider(), core.provider()
    record = core.add_record(patient)
    s1 = core.grant(patient, provider, label="Observation")
    s2 = core.grant(patient, provider, label="Condition")
    core.grant(patient, other, label="Observation")
    follower = IndexFollower(core.ctx)
    assert follower.tick().deleted == ()
    # Revoked directly on-chain (not through the service):
    core.chain.ledger.revoke(provider.address, s1, signer=patient.signer)
    result = follower.tick()
    assert result.deleted == ((patient.address, s1, provider.address),)
    assert core.ctx.kfrags.get(patient=patient.address, scope_id=s2,
                                provider=provider.address) is not None
    # Even with a fresh grant, the deleted kfrags are gone: the read is refused.
    core.chain.ledger.grant(provider.address, s1, core.env.now() + 3600,
                             signer=patient.signer)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(NoKeyFragments):
        serve_read(core.ctx, request=request, signature=signature)
    # revokeAll removes every fragment of the pair, not the other provider's.
    core.chain.ledger.revoke_all(provider.address, signer=patient.signer)
    follower.tick()
    assert core.ctx.kfrags.count(patient=patient.address, provider=provider.address) == 0
    assert core.ctx.kfrags.count(patient=patient.address, provider=other.address) == 1


def test_follower_deletes_kfrags_of_expired_grants(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    core.grant(patient, provider, expires_in=100)
    follower = IndexFollower(core.ctx)
    assert follower.tick().deleted == ()
    core.env.advance(200)
    assert len(follower.tick().deleted) == 1
    assert core.ctx.kfrags.count(patient=patient.address) == 0


def test_follower_keeps_kfrags_of_a_grant_the_index_has_not_seen(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    follower = IndexFollower(core.ctx)
    follower.tick()
    scope_id = core.scope(patient)
    core.chain.ledger.grant(provider.address, scope_id, core.env.now() + 3600,
                             signer=patient.signer)
    core.hand_kfrags(patient, provider, scope_id)
    # The index is behind the grant: pretend so by judging at the old head.
    core.ctx.index.index.sync = lambda **_: core.ctx.index.index.head  # type: ignore[method-assign]
    assert follower.tick().deleted == ()
    assert core.ctx.kfrags.count(patient=patient.address) == 1


def test_follower_runs_in_the_background_and_stops(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    scope_id = core.grant(patient, provider)
    follower = IndexFollower(core.ctx, interval_s=0.05)
    with follower:
        core.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
        deadline = time.monotonic() + 20
        while core.ctx.kfrags.count(patient=patient.address) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert follower._thread is None
    assert core.ctx.kfrags.count(patient=patient.address) == 0
