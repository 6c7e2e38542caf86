"""Batches of records under one Merkle root through the ledger agent (#12): registered by the
patient's own transaction, by a guardian and by a relayed ``RegisterBatch`` signature; read back
with ``batch_of`` / ``batch_record_of``; a batch record superseded through the existing paths."""

from __future__ import annotations

import pytest
from chainenv import Env, scope
from eth_utils.crypto import keccak

from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.models import BatchRecordStatus, BatchStatus
from kizuna.chain.relayer import Relayer, RelayRefused
from kizuna.errors import ContractReverted, InputError
from kizuna.types import Commitment, RecordId, ScopeId

PYTHON_ROOT = bytes.fromhex("e77657e73605ea276b281d4a8bad170653b9e954b4a31293944f42220d9edc6d")
"""The root contracts/test/ConsentLedgerBatch.t.sol builds in Solidity from the same leaves."""


def _rid(label: str) -> RecordId:
    return RecordId(bytes(keccak(text=label)))


def _manifest(label: str, count: int) -> BatchManifest:
    return BatchManifest.of(
        BatchLeaf(_rid(f"{label}:{i}"), scope("lab"), Commitment(scope(f"{label}:c{i}")))
        for i in range(count))


def test_leaf_encoding_matches_the_solidity_test() -> None:
    leaves = [BatchLeaf(RecordId(bytes(keccak(b"record:%d" % i))), ScopeId(bytes(keccak(b"lab"))),
                        Commitment(bytes(keccak(b"commit:%d" % i)))) for i in range(5)]
    assert BatchManifest.of(leaves).root == PYTHON_ROOT


@pytest.mark.anvil
def test_register_batch_by_own_tx_and_by_guardian(anvil_env: Env) -> None:
    env = anvil_env
    patient, guardian = env.new_signer(), env.new_signer()
    ledger = env.chain.ledger
    manifest = _manifest("own", 3)
    assert ledger.batch_of(manifest.root) is None
    assert ledger.batch_record_of(manifest.root, manifest.leaves[0].record_id) is None
    receipt = ledger.register_batch(manifest.root, manifest.count, signer=patient)
    event = ledger.events(receipt, "RecordBatchRegistered")[0]
    assert event.args == {"patient": patient.address, "root": manifest.root, "count": 3}
    status = ledger.batch_of(manifest.root)
    assert isinstance(status, BatchStatus)
    assert (status.patient, status.count) == (patient.address, 3) and status.registered_at > 0
    with pytest.raises(ContractReverted, match="ConsentLedgerBatchExists"):
        ledger.register_batch(manifest.root, 3, signer=patient)

    ledger.appoint_guardian(guardian.address, env.now() + 3600, signer=patient)
    other = _manifest("guardian", 2)
    receipt = ledger.register_batch(other.root, other.count, signer=guardian,
                                    patient=patient.address)
    assert [e.name for e in ledger.events(receipt)] == ["GuardianActed", "RecordBatchRegistered"]
    by_guardian = ledger.batch_of(other.root)
    assert by_guardian is not None
    assert (by_guardian.patient, by_guardian.count) == (patient.address, 2)


@pytest.mark.anvil
def test_register_batch_relayed_by_signature(anvil_env: Env) -> None:
    env = anvil_env
    patient, relayer_key = env.new_signer(funded=False), env.new_signer()
    ledger, relayer = env.chain.ledger, Relayer(env.chain, relayer_key)
    manifest = _manifest("relayed", 1000)
    typed = ledger.register_batch_typed_data(patient=patient.address, root=manifest.root,
                                             count=manifest.count, deadline=env.now() + 600)
    assert typed.type_string() == ("RegisterBatch(address patient,bytes32 root,uint32 count,"
                                   "uint256 nonce,uint256 deadline)")
    assert typed.type_hash() == bytes(ledger._view("REGISTER_BATCH_TYPEHASH"))
    action = SignedAction(typed, patient.sign_typed_data(typed))
    receipt = relayer.relay(action)
    assert receipt.sender == relayer_key.address
    assert [e.name for e in ledger.events(receipt)] == ["RecordBatchRegistered"]
    status = ledger.batch_of(manifest.root)
    assert status is not None and (status.patient, status.count) == (patient.address, 1000)
    assert ledger.nonce(patient.address) == 1
    assert env.w3.eth.get_balance(patient.address) == 0
    # The same signed action again: its nonce is spent, it recovers to someone else.
    with pytest.raises(RelayRefused, match="ConsentLedgerInvalidSigner"):
        relayer.relay(action)
    # A signature by someone else for the patient is refused before anything is sent.
    stranger = env.new_signer(funded=False)
    forged = ledger.register_batch_typed_data(patient=patient.address, root=scope("x"), count=1,
                                              deadline=env.now() + 600)
    with pytest.raises(RelayRefused, match="ConsentLedgerInvalidSigner"):
        relayer.relay(SignedAction(forged, stranger.sign_typed_data(forged)))
    # An expired one is refused with the contract's reason.
    late = ledger.register_batch_typed_data(patient=patient.address, root=scope("late"),
                                            count=1, deadline=env.now() - 1)
    with pytest.raises(RelayRefused, match="ConsentLedgerSignatureExpired"):
        relayer.relay(SignedAction(late, patient.sign_typed_data(late)))


def test_bad_batch_arguments_name_the_field(tester_env: Env) -> None:
    ledger, patient = tester_env.chain.ledger, tester_env.new_signer()
    with pytest.raises(InputError, match="root"):
        ledger.register_batch_typed_data(patient=patient.address, root=bytes(32), count=1,
                                         deadline=1, nonce=0)
    with pytest.raises(InputError, match="count"):
        ledger.register_batch_typed_data(patient=patient.address, root=scope("r"), count=0,
                                         deadline=1, nonce=0)
    with pytest.raises(InputError, match="count"):
        ledger.register_batch_typed_data(patient=patient.address, root=scope("r"), count=2**32,
                                         deadline=1, nonce=0)
    for count in (0, 2**32, -1):
        with pytest.raises(InputError, match="count"):
            ledger.register_batch_call(scope("r"), count)
    with pytest.raises(InputError, match="root"):
        ledger.register_batch_call(b"short", 1)
    # The contract's own refusal decodes by name.
    with pytest.raises(ContractReverted, match="ConsentLedgerInvalidBatch"):
        ledger.register_batch(bytes(32), 1, signer=patient)


@pytest.mark.anvil
def test_supersede_a_batch_record_by_tx_and_by_signature(anvil_env: Env) -> None:
    env = anvil_env
    patient, stranger, relayer_key = env.new_signer(), env.new_signer(), env.new_signer()
    ledger, relayer = env.chain.ledger, Relayer(env.chain, relayer_key)
    manifest = _manifest("supersede", 4)
    ledger.register_batch(manifest.root, manifest.count, signer=patient)
    first, second = manifest.leaves[0].record_id, manifest.leaves[1].record_id
    live = ledger.batch_record_of(manifest.root, first)
    assert isinstance(live, BatchRecordStatus) and not live.superseded
    assert (live.patient, live.count) == (patient.address, 4)

    # Another patient "superseding" the id only touches their own namespace.
    ledger.supersede_record(first, _rid("stranger-v2"), Commitment(scope("s")), scope("lab"),
                            signer=stranger)
    assert not ledger.batch_record_of(manifest.root, first).superseded  # type: ignore[union-attr]

    # The patient's own transaction (the existing supersede path).
    receipt = ledger.supersede_record(first, _rid("v2"), Commitment(scope("c2")), scope("lab"),
                                      signer=patient)
    assert [e.name for e in ledger.events(receipt)] == ["RecordRegistered", "RecordSuperseded"]
    assert ledger.batch_record_of(manifest.root, first).superseded  # type: ignore[union-attr]
    assert not ledger.record_of(_rid("v2")).superseded  # type: ignore[union-attr]
    with pytest.raises(ContractReverted, match="ConsentLedgerRecordSuperseded"):
        ledger.supersede_record(first, _rid("v3"), Commitment(scope("c3")), scope("lab"),
                                signer=patient)

    # A relayed RegisterRecord signature with `supersedes` naming a batch record.
    typed = ledger.register_record_typed_data(
        patient=patient.address, record_id=_rid("second-v2"), commitment=Commitment(scope("c")),
        scope_id=scope("lab"), supersedes=second, deadline=env.now() + 600)
    receipt = relayer.relay(SignedAction(typed, patient.sign_typed_data(typed)))
    superseded = ledger.events(receipt, "RecordSuperseded")[0]
    assert superseded.args == {"patient": patient.address, "oldRecordId": second,
                               "newRecordId": _rid("second-v2")}
    assert ledger.batch_record_of(manifest.root, second).superseded  # type: ignore[union-attr]
    # The other leaves are untouched.
    assert not ledger.batch_record_of(  # type: ignore[union-attr]
        manifest.root, manifest.leaves[2].record_id).superseded
