"""ConsentLedger guardians: appointGuardian, removeGuardian, guardianUntil, isGuardian."""

from __future__ import annotations

from ledger_harness import Actors, Bench, scope_ids

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DAY = 86_400
(LABS,) = scope_ids("labs")


def test_appointGuardian_emitsAndIsLiveUntilItsEndDateExclusive(bench: Bench,
                                                                actors: Actors) -> None:
    until = bench.now() + 100
    receipt = bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, until),
                       actors.patient)
    assert bench.event_list(receipt) == [
        ("GuardianAppointed", {"patient": actors.patient, "guardian": actors.guardian,
                               "until": until}),
    ]
    views = bench.ledger.functions
    assert views.guardianUntil(actors.patient, actors.guardian).call() == until
    assert views.isGuardian(actors.patient, actors.guardian).call() is True
    assert views.isGuardian(actors.patient2, actors.guardian).call() is False
    assert views.isGuardian(actors.guardian, actors.patient).call() is False
    bench.travel_to(until - 1)
    assert views.isGuardian(actors.patient, actors.guardian).call() is True
    bench.travel_to(until)
    assert views.isGuardian(actors.patient, actors.guardian).call() is False
    assert views.guardianUntil(actors.patient, actors.guardian).call() == until  # may be past


def test_appointGuardian_reappointingReplacesTheEndDate(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + 10 * DAY),
             actors.patient)
    shorter = bench.now() + DAY
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, shorter), actors.patient)
    assert bench.ledger.functions.guardianUntil(actors.patient, actors.guardian).call() == shorter


def test_appointGuardian_revertsForZeroOrSelf(bench: Bench, actors: Actors) -> None:
    until = bench.now() + DAY
    bench.reverts(bench.ledger.functions.appointGuardian(ZERO_ADDRESS, until), actors.patient,
                  "ConsentLedgerInvalidGuardian", guardian=ZERO_ADDRESS)
    bench.reverts(bench.ledger.functions.appointGuardian(actors.patient, until), actors.patient,
                  "ConsentLedgerInvalidGuardian", guardian=actors.patient)


def test_appointGuardian_revertsWhenEndDateNotInFuture(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    for until in (0, now - 1, now):
        bench.reverts(bench.ledger.functions.appointGuardian(actors.guardian, until),
                      actors.patient, "ConsentLedgerInvalidExpiry", expiresAt=until,
                      currentTime=now)


def test_appointGuardian_byAGuardianAppointsItsOwnGuardianOnly(bench: Bench,
                                                               actors: Actors) -> None:
    # There is no appointGuardianFor: a guardian cannot hand the patient to someone else.
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.stranger, bench.now() + DAY),
             actors.guardian)
    assert bench.ledger.functions.isGuardian(actors.guardian, actors.stranger).call() is True
    assert bench.ledger.functions.isGuardian(actors.patient, actors.stranger).call() is False
    bench.reverts(bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS,
                                                  bench.now() + DAY),
                  actors.stranger, "ConsentLedgerUnauthorized", patient=actors.patient,
                  caller=actors.stranger)


def test_removeGuardian_endsTheGuardianship(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    receipt = bench.tx(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient)
    assert bench.event_list(receipt) == [
        ("GuardianRemoved", {"patient": actors.patient, "guardian": actors.guardian}),
    ]
    assert bench.ledger.functions.guardianUntil(actors.patient, actors.guardian).call() == 0
    assert bench.ledger.functions.isGuardian(actors.patient, actors.guardian).call() is False
    bench.reverts(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient,
                  "ConsentLedgerNotGuardian", patient=actors.patient, guardian=actors.guardian)


def test_removeGuardian_removesAnExpiredGuardianToo(bench: Bench, actors: Actors) -> None:
    until = bench.now() + 10
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, until), actors.patient)
    bench.travel_to(until + 100)
    bench.tx(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient)
    assert bench.ledger.functions.guardianUntil(actors.patient, actors.guardian).call() == 0


def test_removeGuardian_revertsWhenNeverAppointed(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient,
                  "ConsentLedgerNotGuardian", patient=actors.patient, guardian=actors.guardian)


def test_removeGuardian_aGuardianCannotRemoveItselfOrOthersFromThePatient(
    bench: Bench, actors: Actors
) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.stranger, bench.now() + DAY),
             actors.patient)
    # removeGuardian always acts on msg.sender's own guardians.
    bench.reverts(bench.ledger.functions.removeGuardian(actors.stranger), actors.guardian,
                  "ConsentLedgerNotGuardian", patient=actors.guardian, guardian=actors.stranger)
    assert bench.ledger.functions.isGuardian(actors.patient, actors.stranger).call() is True
    assert bench.ledger.functions.isGuardian(actors.patient, actors.guardian).call() is True


def test_guardians_areIndependentPerPatientAndPerGuardian(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.stranger, bench.now() + 2 * DAY),
             actors.patient)
    bench.tx(bench.ledger.functions.removeGuardian(actors.guardian), actors.patient)
    assert bench.ledger.functions.isGuardian(actors.patient, actors.stranger).call() is True
    bench.tx(bench.ledger.functions.grantFor(actors.patient, actors.provider, LABS,
                                             bench.now() + DAY), actors.stranger)
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
