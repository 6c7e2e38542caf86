"""ConsentLedger records: registerRecord(For), supersedeRecord(For) and recordOf."""

from __future__ import annotations

from ledger_harness import Actors, Bench, b32, selector

ZERO = bytes(32)
RID = b32("record:1")
RID2 = b32("record:2")
RID3 = b32("record:3")
COMMIT = b32("ciphertext:1")
COMMIT2 = b32("ciphertext:2")
SCOPE = b32("scope:labs")


def test_registerRecord_storesOwnerAndEmitsRecordRegistered(bench: Bench, actors: Actors) -> None:
    when = bench.next_time()
    receipt = bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    assert bench.event_list(receipt) == [
        ("RecordRegistered",
         {"patient": actors.patient, "recordId": RID, "commitment": COMMIT, "scopeId": SCOPE}),
    ]
    assert bench.ledger.functions.recordOf(RID).call() == [actors.patient, when, False]


def test_recordOf_unknownIdIsAllZero(bench: Bench) -> None:
    assert bench.ledger.functions.recordOf(RID).call() == [
        "0x0000000000000000000000000000000000000000", 0, False]


def test_registerRecord_revertsWhenIdRegisteredTwice(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    # Neither the owner nor anybody else may take the id again, even with other content.
    bench.reverts(bench.ledger.functions.registerRecord(RID, COMMIT2, SCOPE), actors.patient,
                  "ConsentLedgerRecordExists", recordId=RID)
    bench.reverts(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient2,
                  "ConsentLedgerRecordExists", recordId=RID)
    assert bench.ledger.functions.recordOf(RID).call()[0] == actors.patient


def test_registerRecord_revertsWhenIdIsZero(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.registerRecord(ZERO, COMMIT, SCOPE), actors.patient,
                  "ConsentLedgerInvalidRecordId", recordId=ZERO)


def test_registerRecordFor_byGuardianRecordsThePatientAndLogsGuardianActed(
    bench: Bench, actors: Actors
) -> None:
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + 1000),
             actors.patient)
    fn = bench.ledger.functions.registerRecordFor(actors.patient, RID, COMMIT, SCOPE)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("RecordRegistered",
         {"patient": actors.patient, "recordId": RID, "commitment": COMMIT, "scopeId": SCOPE}),
    ]
    assert bench.ledger.functions.recordOf(RID).call()[0] == actors.patient


def test_registerRecordFor_byPatientItselfEmitsNoGuardianActed(bench: Bench,
                                                               actors: Actors) -> None:
    receipt = bench.tx(bench.ledger.functions.registerRecordFor(actors.patient, RID, COMMIT, SCOPE),
                       actors.patient)
    assert [e.name for e in bench.events(receipt)] == ["RecordRegistered"]


def test_registerRecordFor_revertsForAStranger(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.registerRecordFor(actors.patient, RID, COMMIT, SCOPE),
                  actors.stranger, "ConsentLedgerUnauthorized",
                  patient=actors.patient, caller=actors.stranger)
    assert bench.ledger.functions.recordOf(RID).call()[0] == (
        "0x0000000000000000000000000000000000000000")


def test_registerRecordFor_revertsForAGuardianAfterItsEndDate(bench: Bench, actors: Actors) -> None:
    until = bench.next_time() + 50
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, until), actors.patient)
    bench.travel_to(until - 2)  # the next transaction runs at until - 1: still a guardian
    bench.tx(bench.ledger.functions.registerRecordFor(actors.patient, RID, COMMIT, SCOPE),
             actors.guardian)
    assert bench.next_time() == until  # from `until` on (exclusive end), no longer
    bench.reverts(bench.ledger.functions.registerRecordFor(actors.patient, RID2, COMMIT, SCOPE),
                  actors.guardian, "ConsentLedgerUnauthorized",
                  patient=actors.patient, caller=actors.guardian)


def test_supersedeRecord_marksOldAndRegistersNew(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    when = bench.next_time()
    receipt = bench.tx(bench.ledger.functions.supersedeRecord(RID, RID2, COMMIT2, SCOPE),
                       actors.patient)
    assert bench.event_list(receipt) == [
        ("RecordRegistered",
         {"patient": actors.patient, "recordId": RID2, "commitment": COMMIT2, "scopeId": SCOPE}),
        ("RecordSuperseded",
         {"patient": actors.patient, "oldRecordId": RID, "newRecordId": RID2}),
    ]
    assert bench.ledger.functions.recordOf(RID).call()[2] is True
    assert bench.ledger.functions.recordOf(RID2).call() == [actors.patient, when, False]
    # The chain of versions continues from the newest one.
    bench.tx(bench.ledger.functions.supersedeRecord(RID2, RID3, COMMIT, SCOPE), actors.patient)
    assert bench.ledger.functions.recordOf(RID2).call()[2] is True


def test_supersedeRecord_revertsWhenAlreadySuperseded(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    bench.tx(bench.ledger.functions.supersedeRecord(RID, RID2, COMMIT2, SCOPE), actors.patient)
    bench.reverts(bench.ledger.functions.supersedeRecord(RID, RID3, COMMIT2, SCOPE),
                  actors.patient, "ConsentLedgerRecordSuperseded", recordId=RID)
    assert bench.ledger.functions.recordOf(RID3).call()[1] == 0


def test_supersedeRecord_bySomeoneElse_leavesTheOwnersRecordLive(bench: Bench,
                                                                 actors: Actors) -> None:
    # Before #12 this reverted ConsentLedgerNotRecordOwner. An id that is not the caller's own
    # record now names one of the caller's batch records: patient2 retires a name in patient2's
    # namespace only, the patient's record stays live and the patient can still supersede it.
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    receipt = bench.tx(bench.ledger.functions.supersedeRecord(RID, RID2, COMMIT2, SCOPE),
                       actors.patient2)
    assert bench.event_list(receipt)[-1] == (
        "RecordSuperseded", {"patient": actors.patient2, "oldRecordId": RID, "newRecordId": RID2})
    assert bench.ledger.functions.recordOf(RID).call()[:3:2] == [actors.patient, False]
    bench.tx(bench.ledger.functions.supersedeRecord(RID, RID3, COMMIT2, SCOPE), actors.patient)
    assert bench.ledger.functions.recordOf(RID).call()[2] is True


def test_supersedeRecord_unknownIdIsRetiredOnceInTheCallersNamespace(bench: Bench,
                                                                     actors: Actors) -> None:
    # Before #12: ConsentLedgerUnknownRecord. The chain cannot tell an unknown id from one of the
    # caller's batch records (the leaves are off-chain), so it retires the name, once.
    bench.tx(bench.ledger.functions.supersedeRecord(RID, RID2, COMMIT2, SCOPE), actors.patient)
    bench.reverts(bench.ledger.functions.supersedeRecord(RID, RID3, COMMIT2, SCOPE),
                  actors.patient, "ConsentLedgerRecordSuperseded", recordId=RID)
    assert bench.ledger.functions.recordOf(RID).call()[1] == 0  # no record RID came of it


def test_supersedeRecord_revertsWhenNewIdExistsOrIsZero(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    bench.tx(bench.ledger.functions.registerRecord(RID2, COMMIT, SCOPE), actors.patient)
    bench.reverts(bench.ledger.functions.supersedeRecord(RID, RID2, COMMIT2, SCOPE),
                  actors.patient, "ConsentLedgerRecordExists", recordId=RID2)
    bench.reverts(bench.ledger.functions.supersedeRecord(RID, RID, COMMIT2, SCOPE),
                  actors.patient, "ConsentLedgerRecordExists", recordId=RID)
    bench.reverts(bench.ledger.functions.supersedeRecord(RID, ZERO, COMMIT2, SCOPE),
                  actors.patient, "ConsentLedgerInvalidRecordId", recordId=ZERO)
    assert bench.ledger.functions.recordOf(RID).call()[2] is False


def test_supersedeRecordFor_byGuardian(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + 1000),
             actors.patient)
    fn = bench.ledger.functions.supersedeRecordFor(actors.patient, RID, RID2, COMMIT2, SCOPE)
    receipt = bench.tx(fn, actors.guardian)
    assert [e.name for e in bench.events(receipt)] == [
        "GuardianActed", "RecordRegistered", "RecordSuperseded"]
    assert bench.events(receipt)[0].args["action"] == selector(fn)
    assert bench.ledger.functions.recordOf(RID2).call()[0] == actors.patient


def test_supersedeRecordFor_revertsForAStranger(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    bench.reverts(
        bench.ledger.functions.supersedeRecordFor(actors.patient, RID, RID2, COMMIT2, SCOPE),
        actors.stranger, "ConsentLedgerUnauthorized", patient=actors.patient,
        caller=actors.stranger)


def test_supersedeRecordFor_guardianOfAnotherPatientCannotRetireIt(
    bench: Bench, actors: Actors
) -> None:
    # patient2's guardian acting "for patient2" on patient's record: before #12 it reverted
    # ConsentLedgerNotRecordOwner; now it retires a name in patient2's namespace only.
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, SCOPE), actors.patient)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + 1000),
             actors.patient2)
    bench.tx(bench.ledger.functions.supersedeRecordFor(actors.patient2, RID, RID2, COMMIT2, SCOPE),
             actors.guardian)
    assert bench.ledger.functions.recordOf(RID).call()[2] is False
    assert bench.ledger.functions.recordOf(RID2).call()[0] == actors.patient2
