"""Reads of records registered in a batch (kizuna/access/check.py): the access check decides a
batch row with ``batchRecordOf(root, recordId)`` — the batch's owner, not superseded — and the
row's Merkle proof from its leaf to that root; every other rule is the one of a record
registered alone (tests/services/test_read_path.py runs those on both)."""

from __future__ import annotations

import dataclasses
import os

import pytest
from harness import Record, Stack
from sqlalchemy import update

from kizuna.access.check import BatchProofInvalid, NoGrant, WrongPatient, batch_proof_holds
from kizuna.batch import BatchLeaf, BatchManifest, pack_proof
from kizuna.crypto.commitment import commitment_of
from kizuna.db import schema as t
from kizuna.errors import NotFoundError
from kizuna.services.read import serve_read
from kizuna.services.refusals import RefusalReason, attempted_reads
from kizuna.types import Commitment, RecordId

pytestmark = pytest.mark.parametrize("core", ["in a batch"], indirect=True)


def _tamper(core: Stack, record: Record, **values: object) -> None:
    with core.db.write() as conn:
        conn.execute(update(t.records).where(t.records.c.record_id == record.record_id)
                     .values(**values))


def _refused_for(core: Stack, patient_address: str) -> list[str]:
    return [a.reason for a in attempted_reads(core.ctx, patient=patient_address).attempts]


def test_a_row_whose_proof_is_tampered_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record, other = core.add_record(patient), core.add_record(patient)
    core.grant(patient, provider)
    # The proof of another batch's leaf: well formed, leads elsewhere.
    with core.db.read() as conn:
        foreign = conn.execute(t.records.select().where(
            t.records.c.record_id == other.record_id)).one()
    _tamper(core, record, proof=foreign.proof)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(BatchProofInvalid, match="proof does not lead to its batch root"):
        serve_read(core.ctx, request=request, signature=signature)
    # A proof that is not whole words is no proof either.
    _tamper(core, other, proof=b"\x01" * 33)
    request, signature = core.request(provider, patient, other)
    with pytest.raises(BatchProofInvalid):
        serve_read(core.second_context(), request=request, signature=signature)
    assert _refused_for(core, patient.address) == [RefusalReason.PROOF_FAILS] * 2


def test_a_row_naming_a_granted_scope_the_batch_did_not_register_is_refused(
        core: Stack) -> None:
    """The row's scope is part of its leaf: a row moved into a scope the provider was granted
    no longer proves it is in the batch, so that grant cannot open it."""
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient, label="DocumentReference")
    granted = core.grant(patient, provider, label="Observation")
    request, signature = core.request(provider, patient, record)
    with pytest.raises(NoGrant):
        serve_read(core.ctx, request=request, signature=signature)
    _tamper(core, record, scope_id=granted)
    request, signature = core.request(provider, patient, record)
    with pytest.raises(BatchProofInvalid):
        serve_read(core.second_context(), request=request, signature=signature)


def test_a_row_naming_another_patient_than_the_batchs_is_refused(core: Stack) -> None:
    alice, bob, provider = core.party(), core.party(), core.provider()
    record = core.add_record(alice)
    core.grant(bob, provider)
    _tamper(core, record, patient=bob.address, scope_id=core.scope(bob))
    request, signature = core.request(provider, bob, record)
    with pytest.raises(WrongPatient, match=f"belongs to {alice.address} on-chain"):
        serve_read(core.ctx, request=request, signature=signature)


def test_a_batch_root_that_is_not_on_chain_is_refused(core: Stack) -> None:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    scope_id = core.grant(patient, provider)
    # Rows of a batch the chain never registered (the manifest and proofs are all right).
    unregistered = BatchManifest.of([
        BatchLeaf(RecordId(os.urandom(32)), scope_id, Commitment(commitment_of(b"u"))),
        BatchLeaf(RecordId(os.urandom(32)), scope_id, Commitment(commitment_of(b"v")))])
    core.write_record_row(patient, unregistered.leaves[0].record_id, scope_id, record.cid,
                           unregistered.leaves[0].commitment, 1)
    ghost = Record(unregistered.leaves[0].record_id, scope_id, b"", record.cid)
    _tamper(core, ghost, batch_root=unregistered.root, leaf_index=0,
            proof=pack_proof(unregistered.proof(0)))
    request, signature = core.request(provider, patient, ghost)
    with pytest.raises(NotFoundError,
                       match=r"its batch 0x[0-9a-f]+\) is not registered on-chain"):
        serve_read(core.ctx, request=request, signature=signature)


def test_a_batch_the_index_has_no_manifest_of_is_still_decided_by_the_chain(
        core: Stack) -> None:
    """The check needs no index row for a batch record (the proof and ``batchRecordOf`` say
    it all): a batch still pending in the index is read all the same."""
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    other = core.second_context()
    other.index.index.manifests = lambda root: None  # this instance never gets the manifest
    with core.db.read() as conn:
        root = conn.execute(t.records.select().where(
            t.records.c.record_id == record.record_id)).one().batch_root
    other.index.head()
    assert other.index.index.pending_batches() == [root]
    request, signature = core.request(provider, patient, record, ctx=other)
    assert core.open(provider, serve_read(other, request=request, signature=signature)) == \
        record.plaintext
    info = other.records.get(record.record_id)
    assert batch_proof_holds(info)
    assert not batch_proof_holds(dataclasses.replace(info, commitment=commitment_of(b"x")))
