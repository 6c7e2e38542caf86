"""Scope key epochs in the event index (docs/keys.md "Epochs"): how many revocations touched a
(patient, scope) -- ``AccessRevoked`` of the scope, and ``AllAccessRevoked`` of a provider that
held a grant in it not ended by an earlier revokeAll -- derived from the chain's events alone,
the same after a replay from raw logs."""

from __future__ import annotations

from chainenv import Env, scope

from kizuna.chain.index import EventIndex, FreshIndex
from kizuna.chain.signers import LocalKeySigner

UMBRAL = b"\x02" + b"\x44" * 32


def _providers(env: Env, count: int) -> list[LocalKeySigner]:
    signers = [env.new_signer() for _ in range(count)]
    for signer in signers:
        env.chain.registry.add_provider(signer.address, UMBRAL, scope(f"licence {signer.address}"),
                                        signer=env.admin)
    return signers


def test_epochs_count_the_revocations_of_each_scope(env: Env) -> None:
    ledger = env.chain.ledger
    patient, other = env.new_signer(), env.new_signer()
    a, b = _providers(env, 2)
    labs, vitals, never = scope("labs"), scope("vitals"), scope("never revoked")
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))
    until = env.now() + 86_400

    ledger.grant_batch(a.address, [labs, vitals, never], until, signer=patient)
    ledger.grant(b.address, labs, until, signer=patient)
    ledger.grant(a.address, labs, until, signer=other)
    assert fresh.scope_epoch(patient.address, labs) == 0  # granted, never revoked

    ledger.revoke(b.address, labs, signer=patient)  # revoke: that scope only
    assert fresh.scope_epoch(patient.address, labs) == 1
    assert fresh.scope_epoch(patient.address, vitals) == 0
    assert fresh.scope_epoch(other.address, labs) == 0  # per patient

    ledger.revoke_all(a.address, signer=patient)  # every scope A held a grant in
    assert fresh.scope_epoch(patient.address, labs) == 2
    assert fresh.scope_epoch(patient.address, vitals) == 1
    assert fresh.scope_epoch(patient.address, never) == 1

    ledger.revoke_all(a.address, signer=patient)  # A holds nothing any more: nothing moves
    assert fresh.scope_epoch(patient.address, labs) == 2
    assert fresh.scope_epoch(patient.address, vitals) == 1

    ledger.grant(a.address, vitals, until, signer=patient)  # a re-grant does not move it...
    assert fresh.scope_epoch(patient.address, vitals) == 1
    ledger.revoke_all(a.address, signer=patient)  # ...its revoke-all does, that scope only
    assert fresh.scope_epoch(patient.address, vitals) == 2
    assert fresh.scope_epoch(patient.address, labs) == 2
    assert fresh.scope_epoch(patient.address, scope("no grant at all")) == 0
    assert fresh.scope_epoch(other.address, labs) == 0

    # Derivable by anyone from the chain: a fresh index of the same chain agrees, and so does
    # the same index rebuilt from its raw logs (what a reorg or a migration does).
    replayed = EventIndex.for_chain(env.chain)
    replayed.sync(to_block=fresh.index.last_block)
    for patient_address, sid in ((patient.address, labs), (patient.address, vitals),
                                 (patient.address, never), (other.address, labs)):
        assert replayed.scope_epoch(patient_address, sid) == fresh.index.scope_epoch(
            patient_address, sid)
    with fresh.index._transaction() as cur:
        fresh.index._rebuild(cur)
    assert fresh.index.dump() == replayed.dump()
    replayed.close()


def test_an_expired_grant_moves_the_epoch_only_when_revoked(env: Env) -> None:
    """Expiry alone does not move the epoch (documented); a revoke-all of the provider does,
    even after the expiry (its fragments may still be somewhere), and so does a revoke."""
    ledger = env.chain.ledger
    patient = env.new_signer()
    (a,) = _providers(env, 1)
    labs = scope("labs")
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))
    ledger.grant(a.address, labs, env.now() + 60, signer=patient)
    env.advance(120)
    assert fresh.scope_epoch(patient.address, labs) == 0
    ledger.revoke_all(a.address, signer=patient)
    assert fresh.scope_epoch(patient.address, labs) == 1
