"""ConsentLedger batches (#12): registerBatch(For|BySig), batchOf, batchRecordOf, the
RecordBatchRegistered event, and superseding a batch record (keyed by the patient)."""

from __future__ import annotations

from ledger_harness import Actors, Bench, b32, selector

from kizuna.batch import BatchLeaf, BatchManifest, proof_leads_to
from kizuna.chain.eip712 import register_batch_typed_data
from kizuna.types import Commitment, RecordId, ScopeId

ZERO = bytes(32)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SCOPE = b32("scope:labs")
ROOT = b32("root:1")


def _manifest(count: int) -> BatchManifest:
    return BatchManifest.of(BatchLeaf(RecordId(b32(f"record:{i}")), ScopeId(SCOPE),
                                      Commitment(b32(f"ciphertext:{i}"))) for i in range(count))


def test_registerBatch_storesOwnerTimeCount_andEmitsRecordBatchRegistered(bench: Bench,
                                                                        actors: Actors) -> None:
    manifest = _manifest(7)
    when = bench.next_time()
    receipt = bench.tx(bench.ledger.functions.registerBatch(manifest.root, manifest.count),
                       actors.patient)
    assert bench.event_list(receipt) == [
        ("RecordBatchRegistered", {"patient": actors.patient, "root": manifest.root, "count": 7}),
    ]
    assert bench.ledger.functions.batchOf(manifest.root).call() == [actors.patient, when, 7]
    # Every leaf's proof leads to the stored root (the proof is what places a record in it).
    for index, leaf in enumerate(manifest.leaves):
        assert proof_leads_to(manifest.root, leaf, manifest.proof(index))


def test_batchOf_and_batchRecordOf_unknownRootAreAllZero(bench: Bench) -> None:
    assert bench.ledger.functions.batchOf(ROOT).call() == [ZERO_ADDRESS, 0, 0]
    assert bench.ledger.functions.batchRecordOf(ROOT, b32("record:0")).call() == [
        ZERO_ADDRESS, 0, 0, False]


def test_registerBatch_revertsForZeroRootOrCount_andForATakenRoot(bench: Bench,
                                                                  actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.registerBatch(ZERO, 3), actors.patient,
                  "ConsentLedgerInvalidBatch", root=ZERO)
    bench.reverts(bench.ledger.functions.registerBatch(ROOT, 0), actors.patient,
                  "ConsentLedgerInvalidBatch", root=ROOT)
    bench.tx(bench.ledger.functions.registerBatch(ROOT, 3), actors.patient)
    for who in (actors.patient, actors.patient2):
        bench.reverts(bench.ledger.functions.registerBatch(ROOT, 4), who,
                      "ConsentLedgerBatchExists", root=ROOT)
    assert bench.ledger.functions.batchOf(ROOT).call()[::2] == [actors.patient, 3]


def test_registerBatchFor_byGuardian_strangerReverts(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.ledger.functions.registerBatchFor(actors.patient, ROOT, 2),
                  actors.stranger, "ConsentLedgerUnauthorized", patient=actors.patient,
                  caller=actors.stranger)
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + 1000),
             actors.patient)
    fn = bench.ledger.functions.registerBatchFor(actors.patient, ROOT, 2)
    receipt = bench.tx(fn, actors.guardian)
    assert bench.event_list(receipt) == [
        ("GuardianActed", {"patient": actors.patient, "guardian": actors.guardian,
                           "action": selector(fn)}),
        ("RecordBatchRegistered", {"patient": actors.patient, "root": ROOT, "count": 2}),
    ]
    assert bench.ledger.functions.batchOf(ROOT).call()[0] == actors.patient


def test_registerBatchBySig_relayed_oncePerNonce(bench: Bench, actors: Actors) -> None:
    deadline = bench.now() + 3600
    typed = register_batch_typed_data(bench.domain(), patient=actors.patient, root=ROOT,
                                      count=1000, nonce=0, deadline=deadline)
    signature = bench.sign(typed, actors.patient)
    fn = bench.ledger.functions.registerBatchBySig(actors.patient, ROOT, 1000, deadline,
                                                   signature)
    receipt = bench.tx(fn, actors.stranger)
    assert bench.event_list(receipt) == [
        ("RecordBatchRegistered", {"patient": actors.patient, "root": ROOT, "count": 1000})]
    assert bench.nonce(actors.patient) == 1
    replayed = bench.ledger.functions.registerBatchBySig(actors.patient, b32("root:2"), 1000,
                                                         deadline, signature)
    wrong = bench.reverts(replayed, actors.stranger, "ConsentLedgerInvalidSigner",
                          signer=bench.recover(
                              register_batch_typed_data(bench.domain(), patient=actors.patient,
                                                        root=b32("root:2"), count=1000, nonce=1,
                                                        deadline=deadline), signature),
                          patient=actors.patient)
    assert wrong.error_args["signer"] != actors.patient


def test_registerBatchBySig_revertsWhenExpiredOrSignedBySomeoneElse(bench: Bench,
                                                                    actors: Actors) -> None:
    now = bench.next_time()
    late = register_batch_typed_data(bench.domain(), patient=actors.patient, root=ROOT, count=2,
                                     nonce=0, deadline=now - 1)
    bench.reverts(bench.ledger.functions.registerBatchBySig(
        actors.patient, ROOT, 2, now - 1, bench.sign(late, actors.patient)),
        actors.stranger, "ConsentLedgerSignatureExpired", deadline=now - 1, currentTime=now)
    deadline = bench.now() + 3600
    typed = register_batch_typed_data(bench.domain(), patient=actors.patient, root=ROOT, count=2,
                                      nonce=0, deadline=deadline)
    bench.reverts(bench.ledger.functions.registerBatchBySig(
        actors.patient, ROOT, 2, deadline, bench.sign(typed, actors.stranger)),
        actors.stranger, "ConsentLedgerInvalidSigner", signer=actors.stranger,
        patient=actors.patient)
    assert bench.ledger.functions.batchOf(ROOT).call()[0] == ZERO_ADDRESS


def test_supersedeBatchRecord_isKeyedByThePatient(bench: Bench, actors: Actors) -> None:
    manifest = _manifest(3)
    old = manifest.leaves[0].record_id
    bench.tx(bench.ledger.functions.registerBatch(manifest.root, 3), actors.patient)
    # A front-runner takes the id as a record of its own, and another patient supersedes it:
    # neither touches the patient's batch record.
    bench.tx(bench.ledger.functions.registerRecord(old, b32("junk"), SCOPE), actors.stranger)
    bench.tx(bench.ledger.functions.supersedeRecord(old, b32("junk v2"), b32("junk"), SCOPE),
             actors.stranger)
    bench.tx(bench.ledger.functions.supersedeRecord(old, b32("p2 v2"), b32("c"), SCOPE),
             actors.patient2)
    assert bench.ledger.functions.batchRecordOf(manifest.root, old).call()[3] is False
    receipt = bench.tx(bench.ledger.functions.supersedeRecord(old, b32("v2"), b32("c2"), SCOPE),
                       actors.patient)
    assert bench.event_list(receipt)[-1] == (
        "RecordSuperseded", {"patient": actors.patient, "oldRecordId": old,
                             "newRecordId": b32("v2")})
    when = bench.ledger.functions.batchOf(manifest.root).call()[1]
    assert bench.ledger.functions.batchRecordOf(manifest.root, old).call() == [
        actors.patient, when, 3, True]
    bench.reverts(bench.ledger.functions.supersedeRecord(old, b32("v3"), b32("c3"), SCOPE),
                  actors.patient, "ConsentLedgerRecordSuperseded", recordId=old)
    # The same id as old and new version, or a zero old id, is refused.
    other = manifest.leaves[1].record_id
    bench.reverts(bench.ledger.functions.supersedeRecord(other, other, b32("c"), SCOPE),
                  actors.patient, "ConsentLedgerRecordExists", recordId=other)
    bench.reverts(bench.ledger.functions.supersedeRecord(ZERO, b32("v9"), b32("c"), SCOPE),
                  actors.patient, "ConsentLedgerInvalidRecordId", recordId=ZERO)
    assert bench.ledger.functions.batchRecordOf(manifest.root, other).call()[3] is False
