"""Record batches in the event index (kizuna/chain/index/batches.py): a batch's records are
rows of ``records`` like records registered alone, once its manifest — which must lead to the
on-chain root — is available; pending until then; rolled back with a reorg."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from chainenv import Env, _anvil_env, scope
from eth_utils.crypto import keccak

from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.chain.connection import connect
from kizuna.chain.index import EventIndex
from kizuna.chain.localnode import LocalNode
from kizuna.types import Commitment, RecordId


def _id(label: str) -> RecordId:
    return RecordId(bytes(keccak(text=label)))


def _manifest(label: str, count: int) -> BatchManifest:
    return BatchManifest.of(
        BatchLeaf(_id(f"{label} {i}"), scope("lab" if i % 2 else "notes"),
                  Commitment(bytes(keccak(text=f"{label} c{i}"))))
        for i in range(count))


class Manifests:
    """A manifest source: what the service's record_batches + content store give the index."""

    def __init__(self) -> None:
        self.stored: dict[bytes, bytes] = {}
        self.asked: list[bytes] = []

    def put(self, manifest: BatchManifest, *, root: bytes | None = None) -> None:
        self.stored[root if root is not None else manifest.root] = manifest.encode()

    def __call__(self, root: bytes) -> bytes | None:
        self.asked.append(bytes(root))
        return self.stored.get(bytes(root))


def test_a_batch_with_its_manifest_is_records_like_any_other(env: Env) -> None:
    patient = env.new_signer()
    ledger, manifests = env.chain.ledger, Manifests()
    ledger.register_record(_id("alone before"), Commitment(scope("c0")), scope("lab"),
                           signer=patient)
    batch = _manifest("first", 5)
    manifests.put(batch)
    receipt = ledger.register_batch(batch.root, batch.count, signer=patient)
    ledger.register_record(_id("alone after"), Commitment(scope("c1")), scope("lab"),
                           signer=patient)
    index = EventIndex.for_chain(env.chain, manifests=manifests)
    index.sync()

    records = index.records_of(patient.address)
    # Chain order, and the leaves in the manifest's order within the batch's event.
    assert [r.record_id for r in records] == [
        _id("alone before"), *(leaf.record_id for leaf in batch.leaves), _id("alone after")]
    for leaf, record in zip(batch.leaves, records[1:6], strict=True):
        assert (record.patient, record.scope_id, record.commitment, record.batch_root) == (
            patient.address, leaf.scope_id, leaf.commitment, batch.root)
        assert record.block_number == receipt.block_number
        assert record.tx_hash == receipt.tx_hash
    assert records[0].batch_root is None
    assert index.record(batch.leaves[2].record_id) == records[3]
    assert index.pending_batches() == []

    # Superseding a batch record (keyed by the patient on chain) retires its row.
    old = batch.leaves[1].record_id
    ledger.supersede_record(old, _id("v2"), Commitment(scope("c2")), scope("notes"),
                            signer=patient)
    index.sync()
    assert old not in [r.record_id for r in index.records_of(patient.address)]
    retired = index.record(old)
    assert retired is not None and retired.superseded_by == _id("v2")
    new = index.record(_id("v2"))
    assert new is not None and new.supersedes == old and new.batch_root is None


def test_a_manifest_arriving_later_is_projected_then(env: Env, tmp_path: Path) -> None:
    patient = env.new_signer()
    ledger, manifests = env.chain.ledger, Manifests()
    batch = _manifest("later", 4)
    ledger.register_batch(batch.root, batch.count, signer=patient)
    index = EventIndex.for_chain(env.chain, tmp_path / "index.sqlite", manifests=manifests)
    index.sync()
    assert manifests.asked == [batch.root]
    assert index.records_of(patient.address) == [] and index.pending_batches() == [batch.root]
    # A leaf superseded while its batch is pending: the new version is indexed now, and the
    # leaf is projected superseded once the batch is.
    leaf = batch.leaves[3].record_id
    ledger.supersede_record(leaf, _id("later v2"), Commitment(scope("c")), scope("lab"),
                            signer=patient)
    index.sync()
    assert [r.record_id for r in index.records_of(patient.address)] == [_id("later v2")]

    assert index.manifest_arrived(batch.root) is False  # still nothing in the source
    manifests.put(batch)
    assert index.manifest_arrived(batch.root) is True
    assert index.manifest_arrived(batch.root) is False  # projected already
    assert index.pending_batches() == []
    every = index.records_of(patient.address, include_superseded=True)
    assert [r.record_id for r in every] == [*(x.record_id for x in batch.leaves),
                                            _id("later v2")]
    assert every[3].superseded_by == _id("later v2")
    assert [r.record_id for r in index.records_of(patient.address)] == [
        *(x.record_id for x in batch.leaves[:3]), _id("later v2")]

    # The same, for an index that finds a batch pending when it is given a source.
    with EventIndex.for_chain(env.chain) as bare:
        bare.sync()
        assert bare.pending_batches() == [batch.root]
        assert bare.use_manifests(manifests) == [batch.root]
        assert bare.dump() == index.dump()
    index.close()


def test_a_manifest_that_is_not_the_batchs_is_ignored(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    patient = env.new_signer()
    ledger, manifests = env.chain.ledger, Manifests()
    batch = _manifest("real", 3)
    ledger.register_batch(batch.root, batch.count, signer=patient)
    # Served under the batch's root: other leaves, one leaf changed, garbage; and a batch the
    # chain registered with another count than its manifest's.
    forged = BatchManifest.of([*batch.leaves[:2], BatchLeaf(
        batch.leaves[2].record_id, scope("imaging"), batch.leaves[2].commitment)])
    miscounted = _manifest("miscounted", 2)
    ledger.register_batch(miscounted.root, 3, signer=patient)
    manifests.put(miscounted)
    index = EventIndex.for_chain(env.chain, manifests=manifests)
    with caplog.at_level(logging.WARNING, logger="kizuna.chain.index.batches"):
        for wrong in (_manifest("other", 3).encode(), forged.encode(), b"KZBATCH\x01junk"):
            manifests.stored[batch.root] = wrong
            index.sync()
            assert index.manifest_arrived(batch.root) is False
            assert index.records_of(patient.address) == []
    assert index.pending_batches() == [batch.root, miscounted.root]
    assert "lead to root" in caplog.text and "declares" in caplog.text
    assert "it holds 2 records, the chain registered 3" in caplog.text
    manifests.put(batch)
    assert index.manifest_arrived(batch.root) is True
    assert [r.scope_id for r in index.records_of(patient.address)] == [
        leaf.scope_id for leaf in batch.leaves]


def test_an_id_in_a_batch_and_registered_alone_keeps_one_row(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    """The chain cannot check a batch's leaves against records registered alone: the index
    neither stops on the duplicate id nor lets the later registration take the row — whether
    it had the batch's manifest before the duplicate or only after."""
    patient, other = env.new_signer(), env.new_signer()
    ledger, manifests = env.chain.ledger, Manifests()
    batch = _manifest("dup", 2)
    taken = batch.leaves[0].record_id
    ledger.register_batch(batch.root, batch.count, signer=patient)
    always = EventIndex.for_chain(env.chain, manifests={batch.root: batch.encode()}.get)
    always.sync()  # the batch's rows, before the id is registered alone
    ledger.register_record(taken, Commitment(scope("x")), scope("x"), signer=other)
    always.sync()
    row = always.record(taken)
    assert row is not None and (row.patient, row.batch_root) == (patient.address, batch.root)

    with caplog.at_level(logging.WARNING, logger="kizuna.chain.index.batches"):
        late = EventIndex.for_chain(env.chain, manifests=manifests)  # pending at first
        late.sync()
        row = late.record(taken)
        assert row is not None and row.patient == other.address
        manifests.put(batch)
        assert late.manifest_arrived(batch.root)
    # The batch came first in chain order: its leaf replaces the later registration's row.
    assert "this batch came first in chain order" in caplog.text
    assert late.records_of(other.address) == []
    assert late.dump() == always.dump()


@pytest.mark.anvil
def test_a_rolled_back_batch_goes_with_the_reorg(fresh_anvil: LocalNode) -> None:
    env = _anvil_env(fresh_anvil)
    patient = env.new_signer()
    manifests = Manifests()
    kept, dropped, waiting = _manifest("kept", 2), _manifest("fork a", 3), _manifest("fork a2", 2)
    manifests.put(kept)
    manifests.put(dropped)
    env.chain.ledger.register_batch(kept.root, kept.count, signer=patient)
    index = EventIndex.for_chain(env.chain, manifests=manifests)
    index.sync()
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    env.chain.ledger.register_batch(dropped.root, dropped.count, signer=patient)
    env.chain.ledger.register_batch(waiting.root, waiting.count, signer=patient)  # no manifest
    index.sync()
    assert len(index.records_of(patient.address)) == 5
    assert index.pending_batches() == [waiting.root]

    env.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain_b = connect(fresh_anvil.rpc_url, env.deployment)
    chain_b.ledger.register_record(_id("fork b"), Commitment(scope("b")), scope("lab"),
                                   signer=patient)
    env.mine(2)
    index.sync()
    assert index.reorgs == 1
    assert [r.record_id for r in index.records_of(patient.address)] == [
        *(leaf.record_id for leaf in kept.leaves), _id("fork b")]
    assert index.pending_batches() == []
    fresh = EventIndex.for_chain(chain_b, manifests=manifests)
    fresh.sync()
    assert index.dump() == fresh.dump()


def test_an_index_of_an_older_schema_is_rebuilt_with_its_batches(
        env: Env, tmp_path: Path) -> None:
    patient = env.new_signer()
    manifests = Manifests()
    batch = _manifest("old file", 3)
    manifests.put(batch)
    env.chain.ledger.register_batch(batch.root, batch.count, signer=patient)
    path = tmp_path / "index.sqlite"
    with EventIndex.for_chain(env.chain, path) as index:
        index.sync()
    # What a schema-2 file looks like: records without batch columns, no pending_batches.
    db = sqlite3.connect(path)
    db.executescript("""
        DROP TABLE records; DROP TABLE pending_batches;
        CREATE TABLE records (record_id BLOB PRIMARY KEY, patient TEXT NOT NULL,
            commitment BLOB NOT NULL, scope_id BLOB NOT NULL, supersedes BLOB,
            superseded_by BLOB, block_number BIGINT NOT NULL, log_index BIGINT NOT NULL,
            tx_hash BLOB NOT NULL);
        CREATE INDEX records_by_patient ON records (patient, block_number, log_index);
        UPDATE index_meta SET value = '2' WHERE key = 'schema';
    """)
    db.close()
    with EventIndex.for_chain(env.chain, path, manifests=manifests) as index:
        assert [r.record_id for r in index.records_of(patient.address)] == [
            leaf.record_id for leaf in batch.leaves]
        fresh = EventIndex.for_chain(env.chain, manifests=manifests)
        fresh.sync(to_block=index.last_block)
        assert index.dump() == fresh.dump()
