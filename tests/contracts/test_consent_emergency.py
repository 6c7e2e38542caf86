"""ConsentLedger break-glass access and access requests: setEmergencyPolicy(For),
openEmergencyAccess, closeEmergencyAccess, requestAccess, closeRequest and their views."""

from __future__ import annotations

import pytest
from ledger_harness import Actors, Bench, b32, scope_ids, selector

DAY = 86_400
HOUR = 3_600
LABS, MEDS = scope_ids("labs", "meds")
REF = b32("request-payload")
REASON = 7


def _allow(bench: Bench, patient: str, max_duration: int = DAY) -> None:
    bench.tx(bench.ledger.functions.setEmergencyPolicy(True, max_duration), patient)


def _open(bench: Bench, actors: Actors, duration: int = HOUR) -> int:
    until = bench.next_time() + duration
    bench.tx(bench.ledger.functions.openEmergencyAccess(actors.patient, duration, REASON),
             actors.provider)
    return until


# --- policy ---------------------------------------------------------------------------------


def test_emergencyPolicy_defaultsToNotAllowed(bench: Bench, actors: Actors) -> None:
    assert bench.ledger.functions.emergencyPolicy(actors.patient).call() == [False, 0]


def test_setEmergencyPolicy_storesAndEmits(bench: Bench, actors: Actors) -> None:
    receipt = bench.tx(bench.ledger.functions.setEmergencyPolicy(True, DAY), actors.patient)
    assert bench.event_list(receipt) == [
        ("EmergencyPolicySet", {"patient": actors.patient, "allowed": True, "maxDuration": DAY}),
    ]
    assert bench.ledger.functions.emergencyPolicy(actors.patient).call() == [True, DAY]
    bench.tx(bench.ledger.functions.setEmergencyPolicy(False, 0), actors.patient)
    assert bench.ledger.functions.emergencyPolicy(actors.patient).call() == [False, 0]


def test_setEmergencyPolicy_revertsWhenAllowedWithZeroDuration(bench: Bench,
                                                               actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.setEmergencyPolicy(True, 0), actors.patient,
                  "ConsentLedgerInvalidEmergencyDuration", duration=0, maxDuration=0)


def test_setEmergencyPolicyFor_byGuardianAndNotByStranger(bench: Bench, actors: Actors) -> None:
    fn = bench.ledger.functions.setEmergencyPolicyFor(actors.patient, True, HOUR)
    bench.reverts(fn, actors.stranger, "ConsentLedgerUnauthorized", patient=actors.patient,
                  caller=actors.stranger)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("EmergencyPolicySet", {"patient": actors.patient, "allowed": True,
                                "maxDuration": HOUR}),
    ]
    assert bench.ledger.functions.emergencyPolicy(actors.patient).call() == [True, HOUR]
    bench.reverts(bench.ledger.functions.setEmergencyPolicyFor(actors.patient, True, 0),
                  actors.guardian, "ConsentLedgerInvalidEmergencyDuration", duration=0,
                  maxDuration=0)


# --- break-glass ------------------------------------------------------------------------------


def test_openEmergencyAccess_coversEveryScopeAndIsFlagged(bench: Bench, actors: Actors) -> None:
    _allow(bench, actors.patient)
    until = bench.next_time() + HOUR
    receipt = bench.tx(
        bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, REASON), actors.provider)
    assert bench.event_list(receipt) == [
        ("EmergencyAccessOpened", {"patient": actors.patient, "provider": actors.provider,
                                   "until": until, "reasonCode": REASON,
                                   "flaggedForReview": True}),
    ]
    views = bench.ledger.functions
    assert views.emergencyAccessUntil(actors.patient, actors.provider).call() == until
    for scope in (LABS, MEDS, b32("any scope at all")):
        assert views.hasAccess(actors.patient, actors.provider, scope).call() is True
        assert views.accessExpiry(actors.patient, actors.provider, scope).call() == until
        assert views.grantOf(actors.patient, actors.provider, scope).call() == [0, 0, False]
    assert views.hasAccess(actors.patient, actors.provider2, LABS).call() is False
    assert views.hasAccess(actors.patient2, actors.provider, LABS).call() is False


def test_openEmergencyAccess_expiresByItself(bench: Bench, actors: Actors) -> None:
    _allow(bench, actors.patient)
    until = _open(bench, actors)
    bench.travel_to(until - 1)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
    bench.travel_to(until)
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
    assert bench.ledger.functions.accessExpiry(actors.patient, actors.provider, LABS).call() == 0
    # The raw view keeps the past end ("0 or past: closed").
    assert bench.ledger.functions.emergencyAccessUntil(actors.patient,
                                                       actors.provider).call() == until


def test_accessExpiry_isTheLaterOfGrantAndEmergency(bench: Bench, actors: Actors) -> None:
    _allow(bench, actors.patient)
    grant_until = bench.now() + 2 * HOUR
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, grant_until), actors.patient)
    emergency_until = _open(bench, actors, HOUR)
    views = bench.ledger.functions
    assert views.accessExpiry(actors.patient, actors.provider, LABS).call() == grant_until
    assert views.accessExpiry(actors.patient, actors.provider, MEDS).call() == emergency_until
    longer = _open(bench, actors, 3 * HOUR)
    assert views.accessExpiry(actors.patient, actors.provider, LABS).call() == longer


def test_openEmergencyAccess_revertsWithoutPolicy(bench: Bench, actors: Actors) -> None:
    fn = bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, REASON)
    bench.reverts(fn, actors.provider, "ConsentLedgerEmergencyNotAllowed", patient=actors.patient)
    _allow(bench, actors.patient)
    bench.tx(bench.ledger.functions.setEmergencyPolicy(False, DAY), actors.patient)
    bench.reverts(fn, actors.provider, "ConsentLedgerEmergencyNotAllowed", patient=actors.patient)
    # Another patient's policy does not count.
    _allow(bench, actors.patient2)
    bench.reverts(fn, actors.provider, "ConsentLedgerEmergencyNotAllowed", patient=actors.patient)


@pytest.mark.parametrize("who", ["unverified", "stranger", "patient2"])
def test_openEmergencyAccess_revertsForUnverifiedCaller(bench: Bench, actors: Actors,
                                                        who: str) -> None:
    _allow(bench, actors.patient)
    caller = getattr(actors, who)
    bench.reverts(bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, REASON),
                  caller, "ConsentLedgerProviderNotVerified", provider=caller)


def test_openEmergencyAccess_revertsForSuspendedProviderUntilReinstated(bench: Bench,
                                                                        actors: Actors) -> None:
    _allow(bench, actors.patient)
    bench.tx(bench.registry.functions.suspendProvider(actors.provider2), actors.registrar)
    fn = bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, REASON)
    bench.reverts(fn, actors.provider2, "ConsentLedgerProviderNotVerified",
                  provider=actors.provider2)
    bench.tx(bench.registry.functions.reinstateProvider(actors.provider2), actors.registrar)
    bench.tx(fn, actors.provider2)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider2, LABS).call()


def test_openEmergencyAccess_checksVerificationBeforePolicy(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, REASON),
                  actors.unverified, "ConsentLedgerProviderNotVerified",
                  provider=actors.unverified)


def test_openEmergencyAccess_revertsForZeroOrTooLongDuration(bench: Bench,
                                                             actors: Actors) -> None:
    _allow(bench, actors.patient, HOUR)
    for duration in (0, HOUR + 1, 2**64 - 1):
        bench.reverts(bench.ledger.functions.openEmergencyAccess(actors.patient, duration, 1),
                      actors.provider, "ConsentLedgerInvalidEmergencyDuration",
                      duration=duration, maxDuration=HOUR)
    bench.tx(bench.ledger.functions.openEmergencyAccess(actors.patient, HOUR, 1), actors.provider)


def test_openEmergencyAccess_endSaturatesForAnUnboundedPolicy(bench: Bench,
                                                               actors: Actors) -> None:
    forever = 2**64 - 1
    _allow(bench, actors.patient, forever)
    receipt = bench.tx(bench.ledger.functions.openEmergencyAccess(actors.patient, forever, 1),
                       actors.provider)
    assert bench.events(receipt)[0].args["until"] == forever
    assert bench.ledger.functions.accessExpiry(actors.patient, actors.provider, LABS).call() == (
        forever)
    bench.advance(10 * 365 * DAY)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


def test_closeEmergencyAccess_byPatientGuardianOrProvider(bench: Bench, actors: Actors) -> None:
    _allow(bench, actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    fn = bench.ledger.functions.closeEmergencyAccess(actors.patient, actors.provider)
    for closer in (actors.patient, actors.guardian, actors.provider):
        _open(bench, actors)
        receipt = bench.tx(fn, closer)
        expected = [("EmergencyAccessClosed", {"patient": actors.patient,
                                               "provider": actors.provider, "closedBy": closer,
                                               "flaggedForReview": True})]
        if closer == actors.guardian:
            expected.insert(0, ("GuardianActed", {"patient": actors.patient,
                                                  "guardian": actors.guardian,
                                                  "action": selector(fn)}))
        assert bench.event_list(receipt) == expected
        assert bench.ledger.functions.emergencyAccessUntil(actors.patient,
                                                           actors.provider).call() == 0
        assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


def test_closeEmergencyAccess_revertsForStrangerOrOtherProvider(bench: Bench,
                                                                actors: Actors) -> None:
    _allow(bench, actors.patient)
    _open(bench, actors)
    fn = bench.ledger.functions.closeEmergencyAccess(actors.patient, actors.provider)
    for caller in (actors.stranger, actors.provider2):
        bench.reverts(fn, caller, "ConsentLedgerUnauthorized", patient=actors.patient,
                      caller=caller)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


def test_closeEmergencyAccess_revertsWhenNoneOpen(bench: Bench, actors: Actors) -> None:
    fn = bench.ledger.functions.closeEmergencyAccess(actors.patient, actors.provider)
    bench.reverts(fn, actors.patient, "ConsentLedgerNoEmergencyAccess", patient=actors.patient,
                  provider=actors.provider)
    _allow(bench, actors.patient)
    until = _open(bench, actors)
    bench.travel_to(until)  # expired by itself: nothing left to close
    bench.reverts(fn, actors.provider, "ConsentLedgerNoEmergencyAccess", patient=actors.patient,
                  provider=actors.provider)


def test_revokeAll_closesEmergencyAccessAndRequest(bench: Bench, actors: Actors) -> None:
    _allow(bench, actors.patient)
    _open(bench, actors)
    bench.tx(bench.ledger.functions.requestAccess(actors.patient, REF), actors.provider)
    bench.tx(bench.ledger.functions.revokeAll(actors.provider), actors.patient)
    views = bench.ledger.functions
    assert views.emergencyAccessUntil(actors.patient, actors.provider).call() == 0
    assert views.requestOpenUntil(actors.patient, actors.provider).call() == 0
    assert not views.hasAccess(actors.patient, actors.provider, LABS).call()
    # The policy stays: the provider may break the glass again later.
    _open(bench, actors)
    assert views.hasAccess(actors.patient, actors.provider, LABS).call()


# --- access requests --------------------------------------------------------------------------


def test_requestTtl_isFourteenDays(bench: Bench) -> None:
    assert bench.ledger.functions.REQUEST_TTL().call() == 14 * DAY


def test_providerRegistry_isTheDeployedRegistry(bench: Bench) -> None:
    assert bench.ledger.functions.providerRegistry().call() == bench.registry.address


def test_requestAccess_opensARequestWithoutGrantingAccess(bench: Bench, actors: Actors) -> None:
    open_until = bench.next_time() + 14 * DAY
    receipt = bench.tx(bench.ledger.functions.requestAccess(actors.patient, REF), actors.provider)
    assert bench.event_list(receipt) == [
        ("AccessRequested", {"patient": actors.patient, "provider": actors.provider,
                             "openUntil": open_until, "ref": REF}),
    ]
    views = bench.ledger.functions
    assert views.requestOpenUntil(actors.patient, actors.provider).call() == open_until
    assert views.hasAccess(actors.patient, actors.provider, LABS).call() is False
    assert views.accessExpiry(actors.patient, actors.provider, LABS).call() == 0


@pytest.mark.parametrize("who", ["unverified", "stranger"])
def test_requestAccess_revertsForUnverifiedCaller(bench: Bench, actors: Actors, who: str) -> None:
    caller = getattr(actors, who)
    bench.reverts(bench.ledger.functions.requestAccess(actors.patient, REF), caller,
                  "ConsentLedgerProviderNotVerified", provider=caller)


def test_requestAccess_revertsForSuspendedProvider(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.registry.functions.suspendProvider(actors.provider2), actors.registrar)
    bench.reverts(bench.ledger.functions.requestAccess(actors.patient, REF), actors.provider2,
                  "ConsentLedgerProviderNotVerified", provider=actors.provider2)


def test_closeRequest_byPatientGuardianOrProvider(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    fn = bench.ledger.functions.closeRequest(actors.patient, actors.provider)
    for closer in (actors.patient, actors.guardian, actors.provider):
        bench.tx(bench.ledger.functions.requestAccess(actors.patient, REF), actors.provider)
        receipt = bench.tx(fn, closer)
        names = [e.name for e in bench.events(receipt)]
        assert names == (["GuardianActed", "AccessRequestClosed"] if closer == actors.guardian
                         else ["AccessRequestClosed"])
        assert bench.events(receipt)[-1].args == {"patient": actors.patient,
                                                  "provider": actors.provider,
                                                  "closedBy": closer}
        assert bench.ledger.functions.requestOpenUntil(actors.patient,
                                                       actors.provider).call() == 0


def test_closeRequest_revertsForStrangerOrWhenNoneOpen(bench: Bench, actors: Actors) -> None:
    fn = bench.ledger.functions.closeRequest(actors.patient, actors.provider)
    bench.reverts(fn, actors.patient, "ConsentLedgerNoOpenRequest", patient=actors.patient,
                  provider=actors.provider)
    bench.tx(bench.ledger.functions.requestAccess(actors.patient, REF), actors.provider)
    bench.reverts(fn, actors.stranger, "ConsentLedgerUnauthorized", patient=actors.patient,
                  caller=actors.stranger)
    bench.travel_to(bench.now() + 14 * DAY)  # expired: nothing left to close
    bench.reverts(fn, actors.provider, "ConsentLedgerNoOpenRequest", patient=actors.patient,
                  provider=actors.provider)
