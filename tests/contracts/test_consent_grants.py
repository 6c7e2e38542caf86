"""ConsentLedger grants: grant(For), grantBatch(For), revoke(For), revokeAll(For) and the views
hasAccess, accessExpiry, grantOf and revokedAllBlock, including the documented same-block rule."""

from __future__ import annotations

import pytest
from ledger_harness import Actors, Bench, scope_ids, selector

from kizuna.chain.eip712 import grant_typed_data

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
LABS, MEDS, NOTES = scope_ids("labs", "meds", "notes")
DAY = 86_400


def _views(bench: Bench, patient: str, provider: str,
           scope: bytes) -> tuple[bool, int, list[int | bool]]:
    ledger = bench.ledger.functions
    return (ledger.hasAccess(patient, provider, scope).call(),
            ledger.accessExpiry(patient, provider, scope).call(),
            ledger.grantOf(patient, provider, scope).call())


def test_grant_storesGrantAndEmitsAccessGranted(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    block = bench.next_block()
    receipt = bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient)
    assert bench.event_list(receipt) == [
        ("AccessGranted", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS, "expiresAt": expires}),
    ]
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        True, expires, [expires, block, True])
    # Nothing else is granted: other scope, other provider, other patient, reversed roles.
    assert _views(bench, actors.patient, actors.provider, MEDS) == (False, 0, [0, 0, False])
    assert _views(bench, actors.patient, actors.provider2, LABS) == (False, 0, [0, 0, False])
    assert _views(bench, actors.patient2, actors.provider, LABS) == (False, 0, [0, 0, False])
    assert _views(bench, actors.provider, actors.patient, LABS) == (False, 0, [0, 0, False])


def test_grant_toUnverifiedAddressIsAllowed(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    bench.tx(bench.ledger.functions.grant(actors.unverified, LABS, expires), actors.patient)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.unverified, LABS).call()


def test_grant_expiresAtItsExpiryExclusive(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + 100
    block = bench.next_block()
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient)
    bench.travel_to(expires - 1)
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        True, expires, [expires, block, True])
    bench.travel_to(expires)
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        False, 0, [expires, block, False])


def test_grant_revertsWhenExpiryInPast(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    for expires in (0, now - 1000, now - 1, now):  # `expiresAt > block.timestamp` required
        bench.reverts(bench.ledger.functions.grant(actors.provider, LABS, expires),
                      actors.patient, "ConsentLedgerInvalidExpiry",
                      expiresAt=expires, currentTime=now)
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, now + 1), actors.patient)


def test_grant_revertsForZeroProvider(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.grant(ZERO_ADDRESS, LABS, bench.now() + DAY),
                  actors.patient, "ConsentLedgerInvalidProvider", provider=ZERO_ADDRESS)


def test_grant_replacesEarlierGrantOnSameScope(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + 10 * DAY),
             actors.patient)
    shorter = bench.now() + DAY
    block = bench.next_block()
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, shorter), actors.patient)
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        True, shorter, [shorter, block, True])


def test_grantFor_byLiveGuardianGrantsForPatient(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    expires = bench.now() + 500
    fn = bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, expires)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("AccessGranted", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS, "expiresAt": expires}),
    ]
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
    # The guardian granted nothing of its own.
    assert not bench.ledger.functions.hasAccess(actors.guardian, actors.provider, LABS).call()


def test_grantFor_byPatientItself(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + 500
    receipt = bench.tx(
        bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, expires),
        actors.patient)
    assert [e.name for e in bench.events(receipt)] == ["AccessGranted"]


@pytest.mark.parametrize("who", ["stranger", "provider", "patient2"])
def test_grantFor_revertsForAnyoneButPatientOrGuardian(bench: Bench, actors: Actors,
                                                        who: str) -> None:
    caller = getattr(actors, who)
    bench.reverts(
        bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, bench.now() + DAY),
        caller, "ConsentLedgerUnauthorized", patient=actors.patient, caller=caller)
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


def test_grantFor_revertsForGuardianOfAnotherPatient(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient2)
    bench.reverts(
        bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, bench.now() + DAY),
        actors.guardian, "ConsentLedgerUnauthorized", patient=actors.patient,
        caller=actors.guardian)


def test_grantFor_revertsForGuardianAfterEndDateOrRemoval(bench: Bench, actors: Actors) -> None:
    until = bench.now() + 100
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, until), actors.patient)
    bench.travel_to(until - 1)  # the next transaction is at `until`: the end date, exclusive
    fn = bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, until + DAY)
    bench.reverts(fn, actors.guardian, "ConsentLedgerUnauthorized",
                  patient=actors.patient, caller=actors.guardian)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    bench.tx(fn, actors.guardian)
    bench.tx(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient)
    bench.reverts(fn, actors.guardian, "ConsentLedgerUnauthorized",
                  patient=actors.patient, caller=actors.guardian)


def test_grantFor_revertsWhenExpiryInPastOrProviderZero(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    now = bench.next_time()
    bench.reverts(bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS, now),
                  actors.guardian, "ConsentLedgerInvalidExpiry", expiresAt=now, currentTime=now)
    bench.reverts(bench.ledger.functions.grantFor(actors.patient, ZERO_ADDRESS, LABS, now + 5),
                  actors.guardian, "ConsentLedgerInvalidProvider", provider=ZERO_ADDRESS)


def test_grantBatch_grantsEveryScopeWithOneEvent(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    block = bench.next_block()
    scopes = [LABS, MEDS, NOTES]
    receipt = bench.tx(bench.ledger.functions.grantBatch(actors.provider, scopes, expires),
                       actors.patient)
    assert bench.event_list(receipt) == [
        ("AccessGrantedBatch", {"patient": actors.patient, "provider": actors.provider,
                                "scopeIds": scopes, "expiresAt": expires}),
    ]
    for scope in scopes:
        assert _views(bench, actors.patient, actors.provider, scope) == (
            True, expires, [expires, block, True])


def test_grantBatch_duplicateScopesAreHarmless(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    bench.tx(bench.ledger.functions.grantBatch(actors.provider, [LABS, LABS], expires),
             actors.patient)
    assert bench.ledger.functions.accessExpiry(actors.patient, actors.provider, LABS).call() == (
        expires)


def test_grantBatch_revertsWhenEmpty(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.grantBatch(actors.provider, [], bench.now() + DAY),
                  actors.patient, "ConsentLedgerEmptyBatch")


def test_grantBatch_revertsWhenExpiryInPastOrProviderZero(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    bench.reverts(bench.ledger.functions.grantBatch(actors.provider, [LABS], now - 1),
                  actors.patient, "ConsentLedgerInvalidExpiry", expiresAt=now - 1, currentTime=now)
    bench.reverts(bench.ledger.functions.grantBatch(ZERO_ADDRESS, [LABS], now + 10),
                  actors.patient, "ConsentLedgerInvalidProvider", provider=ZERO_ADDRESS)


def test_grantBatchFor_byGuardianAndNotByStranger(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    fn = bench.ledger.functions.grantBatchFor(actors.patient, actors.provider, [LABS, MEDS],
                                              expires)
    bench.reverts(fn, actors.guardian, "ConsentLedgerUnauthorized",
                  patient=actors.patient, caller=actors.guardian)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("AccessGrantedBatch", {"patient": actors.patient, "provider": actors.provider,
                                "scopeIds": [LABS, MEDS], "expiresAt": expires}),
    ]
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, MEDS).call()
    bench.reverts(
        bench.ledger.functions.grantBatchFor(actors.patient, actors.provider, [], expires),
        actors.guardian, "ConsentLedgerEmptyBatch")


def test_revoke_clearsGrantAndEmitsAccessRevoked(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    bench.tx(bench.ledger.functions.grantBatch(actors.provider, [LABS, MEDS], expires),
             actors.patient)
    receipt = bench.tx(bench.ledger.functions.revoke(actors.provider, LABS), actors.patient)
    assert bench.event_list(receipt) == [
        ("AccessRevoked", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS}),
    ]
    assert _views(bench, actors.patient, actors.provider, LABS) == (False, 0, [0, 0, False])
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, MEDS).call()


def test_revoke_revertsWhenNoGrantStored(bench: Bench, actors: Actors) -> None:
    fn = bench.ledger.functions.revoke(actors.provider, LABS)
    bench.reverts(fn, actors.patient, "ConsentLedgerNoGrant",
                  patient=actors.patient, provider=actors.provider, scopeId=LABS)
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    # Another patient has no grant to that provider: revoking "theirs" is not revoking ours.
    bench.reverts(fn, actors.patient2, "ConsentLedgerNoGrant",
                  patient=actors.patient2, provider=actors.provider, scopeId=LABS)
    bench.tx(fn, actors.patient)
    bench.reverts(fn, actors.patient, "ConsentLedgerNoGrant",
                  patient=actors.patient, provider=actors.provider, scopeId=LABS)


def test_revoke_clearsAnExpiredGrant(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + 10
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient)
    bench.travel_to(expires + 5)
    bench.tx(bench.ledger.functions.revoke(actors.provider, LABS), actors.patient)
    assert bench.ledger.functions.grantOf(actors.patient, actors.provider, LABS).call() == [
        0, 0, False]


def test_revoke_clearsAGrantKilledByRevokeAll(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    bench.tx(bench.ledger.functions.revokeAll(actors.provider), actors.patient)
    assert bench.ledger.functions.grantOf(actors.patient, actors.provider, LABS).call()[2] is False
    bench.tx(bench.ledger.functions.revoke(actors.provider, LABS), actors.patient)
    assert bench.ledger.functions.grantOf(actors.patient, actors.provider, LABS).call() == [
        0, 0, False]


def test_revokeFor_byGuardianAndNotByStranger(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    fn = bench.ledger.functions.revokeFor(actors.patient, actors.provider, LABS)
    for caller in (actors.stranger, actors.provider):  # not even the provider itself
        bench.reverts(fn, caller, "ConsentLedgerUnauthorized",
                      patient=actors.patient, caller=caller)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("AccessRevoked", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS}),
    ]
    bench.reverts(fn, actors.guardian, "ConsentLedgerNoGrant",
                  patient=actors.patient, provider=actors.provider, scopeId=LABS)


def test_revokeAll_endsEveryGrantOfThatProviderOnly(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    bench.tx(bench.ledger.functions.grantBatch(actors.provider, [LABS, MEDS, NOTES], expires),
             actors.patient)
    bench.tx(bench.ledger.functions.grant(actors.provider2, LABS, expires), actors.patient)
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient2)
    block = bench.next_block()
    receipt = bench.tx(bench.ledger.functions.revokeAll(actors.provider), actors.patient)
    assert bench.event_list(receipt) == [
        ("AllAccessRevoked", {"patient": actors.patient, "provider": actors.provider}),
    ]
    assert bench.ledger.functions.revokedAllBlock(actors.patient, actors.provider).call() == block
    for scope in (LABS, MEDS, NOTES):
        has, until, (stored_expiry, _, live) = _views(bench, actors.patient, actors.provider,
                                                      scope)
        assert (has, until, stored_expiry, live) == (False, 0, expires, False)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider2, LABS).call()
    assert bench.ledger.functions.hasAccess(actors.patient2, actors.provider, LABS).call()
    assert bench.ledger.functions.revokedAllBlock(actors.patient2, actors.provider).call() == 0


def test_revokeAll_withoutGrantsStillRecordsTheBlock(bench: Bench, actors: Actors) -> None:
    block = bench.next_block()
    bench.tx(bench.ledger.functions.revokeAll(actors.unverified), actors.patient)
    assert bench.ledger.functions.revokedAllBlock(actors.patient, actors.unverified).call() == (
        block)


def test_revokeAll_revertsForZeroProvider(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.revokeAll(ZERO_ADDRESS), actors.patient,
                  "ConsentLedgerInvalidProvider", provider=ZERO_ADDRESS)


def test_grant_afterRevokeAllInALaterBlockIsLive(bench: Bench, actors: Actors) -> None:
    expires = bench.now() + DAY
    bench.tx(bench.ledger.functions.grantBatch(actors.provider, [LABS, MEDS], expires),
             actors.patient)
    bench.tx(bench.ledger.functions.revokeAll(actors.provider), actors.patient)
    block = bench.next_block()
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient)
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        True, expires, [expires, block, True])
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, MEDS).call()


def _same_block_grant(bench: Bench, actors: Actors, kind: str, expires: int) -> tuple[object, str]:
    """A grant of LABS for the patient that is not sent by the patient (eth-tester's pending
    block holds one transaction per sender): by the guardian, or relayed by a stranger."""
    ledger = bench.ledger.functions
    if kind == "grantFor":
        return ledger.grantFor(actors.patient, actors.provider, LABS, expires), actors.guardian
    if kind == "grantBatchFor":
        return (ledger.grantBatchFor(actors.patient, actors.provider, [LABS], expires),
                actors.guardian)
    typed = grant_typed_data(bench.domain(), patient=actors.patient, provider=actors.provider,
                             scope_id=LABS, expires_at=expires, nonce=0, deadline=expires)
    signature = bench.sign(typed, actors.patient)
    return (ledger.grantBySig(actors.patient, actors.provider, LABS, expires, expires, signature),
            actors.stranger)


@pytest.mark.parametrize("order", ["grant_then_revokeAll", "revokeAll_then_grant"])
@pytest.mark.parametrize("kind", ["grantFor", "grantBatchFor", "grantBySig"])
def test_revokeAll_winsOverAGrantInTheSameBlock(bench: Bench, actors: Actors, order: str,
                                                kind: str) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    expires = bench.now() + DAY
    ledger = bench.ledger.functions
    grant, granter = _same_block_grant(bench, actors, kind, expires)
    revoke_all = (ledger.revokeAll(actors.provider), actors.patient)
    steps = [(grant, granter), revoke_all]
    if order == "revokeAll_then_grant":
        steps.reverse()
    block = bench.next_block()
    with bench.one_block() as hashes:
        for fn, sender in steps:
            bench.send(fn, sender)  # type: ignore[arg-type]
    receipts = [bench.receipt(h) for h in hashes]
    assert [r["blockNumber"] for r in receipts] == [block, block]
    assert [r["status"] for r in receipts] == [1, 1]
    names = [e.name for r in receipts for e in bench.events(r)]
    assert "AllAccessRevoked" in names and any(n.startswith("AccessGranted") for n in names)
    if order == "grant_then_revokeAll":
        assert names[-1] == "AllAccessRevoked"
    else:
        assert names[0] == "AllAccessRevoked"
    assert ledger.revokedAllBlock(actors.patient, actors.provider).call() == block
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        False, 0, [expires, block, False])
    # One block later a grant is live again.
    block = bench.next_block()
    bench.tx(ledger.grant(actors.provider, LABS, expires), actors.patient)
    assert _views(bench, actors.patient, actors.provider, LABS) == (
        True, expires, [expires, block, True])


def test_revokeAllFor_byGuardianAndNotByStranger(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    fn = bench.ledger.functions.revokeAllFor(actors.patient, actors.provider)
    for caller in (actors.stranger, actors.provider):
        bench.reverts(fn, caller, "ConsentLedgerUnauthorized",
                      patient=actors.patient, caller=caller)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    block = bench.next_block()
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("AllAccessRevoked", {"patient": actors.patient, "provider": actors.provider}),
    ]
    assert bench.ledger.functions.revokedAllBlock(actors.patient, actors.provider).call() == block
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
    bench.reverts(bench.ledger.functions.revokeAllFor(actors.patient, ZERO_ADDRESS),
                  actors.guardian, "ConsentLedgerInvalidProvider", provider=ZERO_ADDRESS)
