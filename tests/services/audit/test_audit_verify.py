"""The auditor's three verifications on a real story, then every kind of tampering, each
detected and named. The story runs twice (conftest): its records registered each alone, then
in one batch; the tests at the end tamper with what only a batch has (proofs, roots, the
manifest)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from audit_story import Story, scope
from sqlalchemy import delete, insert, select, update

from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.db import Database, schema
from kizuna.merkle import MerkleTree
from kizuna.receipts.request import ReadRequest, receipt_leaf, recover_signer
from kizuna.services import audit
from kizuna.storage.embedded import EmbeddedStore
from kizuna.types import Commitment, RecordId


def _rows(db: Database) -> list[audit.ReceiptRow]:
    return audit.load_receipts(db)


def _history(story: Story) -> audit.ChainHistory:
    """The history as the audit loads it: the index's events, the service's manifests."""
    return audit.service_history(story.chain, story.db, story.store, index=story.index)


def _receipts_report(story: Story, db: Database) -> audit.CheckReport:
    history = audit.ChainHistory.from_index(story.chain, story.index)
    return audit.verify_receipts(story.chain, db, history, seed=1)


# -- the honest story -------------------------------------------------------------------------


def test_story_served_reads_and_refused_the_revoked_scope(story: Story) -> None:
    assert len(story.reads) == 4
    assert len(story.refused) == 1  # the read of B after its revoke (an AccessDenied)
    assert story.refused[0] in {"GrantRevoked", "NoGrant"}


def test_all_three_verifications_pass(story: Story) -> None:
    report = audit.audit(story.chain, story.db, story.store, index=story.index)
    assert report.ok, (report.receipts.failures, report.access.failures,
                       report.content.failures)
    assert report.receipts.checked == report.receipts.passed == 4
    assert report.receipts.counts["proofs_checked"] == 4
    assert report.receipts.counts["onchain_proofs_checked"] == 4
    assert report.receipts.counts["pending"] == 0
    assert report.receipts.counts["batch_of_checked"] == 1
    assert report.access.checked == report.access.passed == 4
    assert report.access.counts["by_grant"] == 4
    assert report.access.counts["eth_call_checked"] == 4  # eth-tester keeps old states
    assert report.content.checked == report.content.passed == 2


def test_audit_from_chain_logs_matches_the_index(story: Story) -> None:
    fresh = audit.audit(story.chain, story.db, story.store, from_chain=True)
    assert fresh.ok
    from_index = audit.ChainHistory.from_index(story.chain, story.index).entries()
    from_logs = audit.ChainHistory.from_chain(story.chain).entries()
    assert from_index == from_logs


def test_fast_path_agrees_with_the_core_receipt_code(story: Story) -> None:
    for row in _rows(story.db):
        request = ReadRequest.from_json(__import__("json").loads(row.request_json))
        assert receipt_leaf(request, row.signature, served_at=row.served_at,
                            head_block=row.head_block) == row.leaf
        assert recover_signer(request, row.signature, story.ctx.domain) == row.provider


def test_full_log_per_patient_provider_and_time(story: Story) -> None:
    log = audit.full_log(story.chain, index=story.index, database=story.db,
                         patient=story.patient.address)
    kinds = [e.kind for e in log]
    if story.batch_root is None:
        assert kinds.count(audit.EntryKind.RECORD_REGISTERED) == 2
        assert audit.EntryKind.RECORD_BATCH_REGISTERED not in kinds
    else:  # one entry for the batch: its root, count, patient and block
        assert audit.EntryKind.RECORD_REGISTERED not in kinds
        [registered] = [e for e in log if e.kind is audit.EntryKind.RECORD_BATCH_REGISTERED]
        assert registered.details == {"root": "0x" + story.batch_root.hex(), "count": 2}
        assert registered.patient == story.patient.address
        with story.db.read() as conn:
            assert registered.block_number == conn.execute(
                select(schema.record_batches.c.block_number)).scalar_one()
    assert kinds.count(audit.EntryKind.ACCESS_GRANTED) == 2
    assert kinds.count(audit.EntryKind.ACCESS_REVOKED) == 1
    assert kinds.count(audit.EntryKind.READ) == 4
    revoke = next(e for e in log if e.kind is audit.EntryKind.ACCESS_REVOKED)
    assert revoke.block_number == story.revoke_block
    assert revoke.scope_ids == (scope("B"),)
    assert revoke.provider == story.provider.address
    reads = [e for e in log if e.kind is audit.EntryKind.READ]
    assert all(e.tx_hash and "pending" not in e.flags for e in reads)
    assert {e.record_id for e in reads} == {story.records["A"], story.records["B"]}
    # ordered by block: every read after the grant of its scope
    grants = {e.scope_ids[0]: e.block_number for e in log
              if e.kind is audit.EntryKind.ACCESS_GRANTED}
    assert all(e.block_number >= grants[e.scope_ids[0]] for e in reads)

    by_provider = audit.full_log(story.chain, index=story.index, provider=story.provider.address)
    assert all(story.provider.address in (e.provider, e.actor) for e in by_provider)
    assert audit.full_log(story.chain, index=story.index,
                          patient="0x" + "11" * 20) == []
    first = log[0].time
    window = audit.full_log(story.chain, index=story.index, since=first + 10**9)
    assert window == []
    at_revoke = audit.full_log(story.chain, from_chain=True, since=revoke.time,
                               until=revoke.time)
    assert [e.kind for e in at_revoke] == [audit.EntryKind.ACCESS_REVOKED]


# -- tampering with receipts ------------------------------------------------------------------


def test_altered_receipt_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "altered.db")
    victim = _rows(db)[1]
    with db.write() as conn:
        conn.execute(update(schema.receipts).where(schema.receipts.c.seq == victim.seq)
                     .values(served_at=victim.served_at - 3600))
    report = _receipts_report(story, db)
    assert not report.ok
    assert "receipt.leaf" in {f.check for f in report.about(victim.request_id)}
    assert "batch.root" in report.failed_checks()


def test_altered_receipt_with_recomputed_leaf_breaks_the_root(story: Story,
                                                              tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "releafed.db")
    victim = _rows(db)[0]
    request = ReadRequest.from_json(__import__("json").loads(victim.request_json))
    forged_leaf = receipt_leaf(request, victim.signature, served_at=victim.served_at + 1,
                               head_block=victim.head_block)
    with db.write() as conn:
        conn.execute(update(schema.receipts).where(schema.receipts.c.seq == victim.seq)
                     .values(served_at=victim.served_at + 1, leaf=forged_leaf))
    report = _receipts_report(story, db)
    assert report.failed_checks() == {"batch.root"}
    assert "rebuilt" in report.failures[0].reason


def test_dropped_receipt_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "dropped.db")
    victim = _rows(db)[2]
    with db.write() as conn:
        conn.execute(delete(schema.receipts).where(schema.receipts.c.seq == victim.seq))
    report = _receipts_report(story, db)
    assert {"batch.count", "batch.leaf_index", "batch.root"} <= report.failed_checks()
    count = next(f for f in report.failures if f.check == "batch.count")
    assert "dropped" in count.reason
    gap = next(f for f in report.failures if f.check == "batch.leaf_index")
    assert f"missing [{victim.leaf_index}]" in gap.reason


def test_whole_dropped_batch_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "no-batch.db")
    with db.write() as conn:
        conn.execute(delete(schema.receipts))
    report = _receipts_report(story, db)
    assert report.failed_checks() == {"batch.missing"}


def _signed_row(story: Story, *, key: bytes | None = None, head_block: int,
                served_at: int) -> dict[str, object]:
    request = ReadRequest.new(provider=story.provider.address, patient=story.patient.address,
                              record_id=story.records["A"])
    signature = request.sign(key or story.provider.key, story.ctx.domain)
    return {
        "request_id": request.request_id, "provider": request.provider,
        "patient": request.patient, "record_id": bytes(request.record_id),
        "scope_id": scope("A"), "request_json": request.to_json_string(),
        "signature": signature,
        "leaf": receipt_leaf(request, signature, served_at=served_at, head_block=head_block),
        "served_at": served_at, "head_block": head_block,
    }


def test_added_receipt_in_an_anchored_batch_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "added.db")
    rows = _rows(db)
    root = rows[0].batch_root
    row = _signed_row(story, head_block=rows[0].head_block, served_at=rows[0].served_at)
    with db.write() as conn:
        conn.execute(insert(schema.receipts).values(**row, batch_root=root,
                                                    leaf_index=len(rows)))
    report = _receipts_report(story, db)
    count = next(f for f in report.failures if f.check == "batch.count")
    assert "added" in count.reason
    assert "batch.root" in report.failed_checks()


def test_added_unbatched_receipt_among_anchored_ones_is_detected(story: Story,
                                                                 tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "slipped.db")
    rows = _rows(db)
    row = _signed_row(story, head_block=rows[0].head_block, served_at=rows[0].served_at)
    with db.write() as conn:
        # a row slipped in *before* the anchored ones (a low seq), never batched
        conn.execute(insert(schema.receipts).values(**row, seq=0))
    report = _receipts_report(story, db)
    assert report.failed_checks() == {"receipt.unanchored"}
    assert report.about(row["request_id"])  # type: ignore[arg-type]


def test_new_unanchored_receipt_is_pending_not_failed(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "pending.db")
    row = _signed_row(story, head_block=story.w3.eth.block_number,
                      served_at=int(time.time()) + 3600)
    with db.write() as conn:
        conn.execute(insert(schema.receipts).values(**row))
    report = _receipts_report(story, db)
    assert report.ok
    assert report.counts["pending"] == 1


def test_wrong_signature_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "forged.db")
    victim = _rows(db)[0]
    request = ReadRequest.from_json(__import__("json").loads(victim.request_json))
    forged = request.sign(os.urandom(32), story.ctx.domain)
    leaf = receipt_leaf(request, forged, served_at=victim.served_at,
                        head_block=victim.head_block)
    with db.write() as conn:
        conn.execute(update(schema.receipts).where(schema.receipts.c.seq == victim.seq)
                     .values(signature=forged, leaf=leaf))
    report = _receipts_report(story, db)
    found = report.about(victim.request_id)
    assert [f.check for f in found] == ["receipt.signature"]
    assert "not by the provider" in found[0].reason
    # a garbled signature is named too
    with db.write() as conn:
        conn.execute(update(schema.receipts).where(schema.receipts.c.seq == victim.seq)
                     .values(signature=b"\x01" * 65))
    report = _receipts_report(story, db)
    assert "receipt.signature" in {f.check for f in report.about(victim.request_id)}


def test_receipt_column_disagreeing_with_the_signed_request_is_detected(
        story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "columns.db")
    victim = _rows(db)[0]
    with db.write() as conn:
        conn.execute(update(schema.receipts).where(schema.receipts.c.seq == victim.seq)
                     .values(patient="0x" + "22" * 20))
    report = _receipts_report(story, db)
    found = report.about(victim.request_id)
    assert [f.check for f in found] == ["receipt.fields"]
    assert "patient column" in found[0].reason


def test_root_not_anchored_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "unanchored-root.db")
    rows = _rows(db)
    tree = MerkleTree.build([r.leaf for r in rows[:2]])
    with db.write() as conn:
        for position, r in enumerate(rows[:2]):
            conn.execute(update(schema.receipts).where(schema.receipts.c.seq == r.seq)
                         .values(batch_root=tree.root, leaf_index=position))
    report = _receipts_report(story, db)
    assert "batch.not_anchored" in report.failed_checks()


# -- a read after the revoke ------------------------------------------------------------------


def test_read_recorded_after_the_revoke_block_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "after-revoke.db")
    request = ReadRequest.new(provider=story.provider.address, patient=story.patient.address,
                              record_id=story.records["B"])
    signature = request.sign(story.provider.key, story.ctx.domain)
    served = int(time.time())
    with db.write() as conn:
        conn.execute(insert(schema.receipts).values(
            request_id=request.request_id, provider=request.provider, patient=request.patient,
            record_id=bytes(request.record_id), scope_id=scope("B"),
            request_json=request.to_json_string(), signature=signature,
            leaf=receipt_leaf(request, signature, served_at=served,
                              head_block=story.revoke_block),
            served_at=served, head_block=story.revoke_block))
    history = _history(story)
    rows = audit.load_receipts(db)
    report = audit.verify_access(history, rows, eth_call_sample=len(rows))
    assert report.counts["eth_call_checked"] == len(rows)  # the node agrees with the replay
    found = report.about(request.request_id)
    assert [f.check for f in found] == ["access.no_grant"]
    assert f"revoked in block {story.revoke_block}" in found[0].reason
    assert report.passed == len(rows) - 1


def test_read_decided_at_a_head_before_an_old_revoke_is_detected(story: Story) -> None:
    """The service claims an old head block although the revoke was mined long before."""
    history = _history(story)
    honest = next(r for r in audit.load_receipts(story.db) if r.scope_id == scope("B"))
    late = audit.ReceiptRow(**{**{f: getattr(honest, f) for f in honest.__slots__},
                               "served_at": history.block_time(story.revoke_block) + 600,
                               "issued_at": history.block_time(story.revoke_block) + 600})
    report = audit.verify_access(history, [late])
    assert report.failed_checks() == {"access.stale_head"}


def test_read_of_an_unregistered_or_foreign_record_is_detected(story: Story) -> None:
    history = _history(story)
    honest = audit.load_receipts(story.db)[0]
    fields = {f: getattr(honest, f) for f in honest.__slots__}
    unknown = audit.ReceiptRow(**{**fields, "record_id": os.urandom(32)})
    wrong_scope = audit.ReceiptRow(**{**fields, "scope_id": scope("B")})
    report = audit.verify_access(history, [unknown, wrong_scope])
    assert [f.check for f in report.failures][:1] == ["access.record"]
    assert "not registered" in report.failures[0].reason
    assert any("registered scope" in f.reason for f in report.failures)


def test_emergency_access_counts_as_access(story: Story, tmp_path: Path) -> None:
    """An emergency access opened after the revoke makes a later read of B legitimate."""
    from audit_story import build_story

    fresh = build_story(tmp_path)
    ledger = fresh.chain.ledger
    ledger.set_emergency_policy(True, 3600, signer=fresh.patient.signer)
    ledger.open_emergency_access(fresh.patient.address, 600, 7, signer=fresh.provider.signer)
    history = audit.ChainHistory.from_index(fresh.chain, fresh.index)
    honest = next(r for r in audit.load_receipts(fresh.db) if r.scope_id == scope("B"))
    head = history.head_block
    late = audit.ReceiptRow(**{**{f: getattr(honest, f) for f in honest.__slots__},
                               "head_block": head, "served_at": history.block_time(head),
                               "issued_at": history.block_time(head)})
    report = audit.verify_access(history, [late])
    assert report.ok, report.failures
    assert report.counts["by_emergency"] == 1
    log = history.entries(patient=fresh.patient.address)
    opened = [e for e in log if e.kind is audit.EntryKind.EMERGENCY_OPENED]
    assert opened and "flagged-for-review" in opened[0].flags
    fresh.index.close()
    fresh.db.dispose()


# -- content ----------------------------------------------------------------------------------


def test_ciphertext_changed_in_the_store_is_detected(story: Story, tmp_path: Path) -> None:
    store_copy = tmp_path / "store"
    shutil.copytree(story.store_path, store_copy)
    cid = story.cids["A"]
    block = next(p for p in (store_copy / "blocks").rglob(cid))
    data = bytearray(block.read_bytes())
    data[-5] ^= 0x01
    block.write_bytes(bytes(data))
    history = audit.ChainHistory.from_index(story.chain, story.index)
    report = audit.verify_content(history, story.db, EmbeddedStore(store_copy, fsync=False))
    found = report.about(story.records["A"])
    assert [f.check for f in found] == ["content.integrity"]
    assert report.passed == 1


def test_ciphertext_swapped_for_another_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "swapped.db")
    other = story.store.put(b"not the registered envelope")
    with db.write() as conn:
        conn.execute(update(schema.records)
                     .where(schema.records.c.record_id == bytes(story.records["B"]))
                     .values(cid=other))
    history = audit.ChainHistory.from_index(story.chain, story.index)
    report = audit.verify_content(history, db, story.store)
    assert [f.check for f in report.about(story.records["B"])] == ["content.commitment"]


def test_missing_content_and_unknown_cids(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "missing.db")
    with db.write() as conn:
        conn.execute(update(schema.records)
                     .where(schema.records.c.record_id == bytes(story.records["A"]))
                     .values(cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"))
        conn.execute(delete(schema.records)
                     .where(schema.records.c.record_id == bytes(story.records["B"])))
    history = audit.ChainHistory.from_index(story.chain, story.index)
    report = audit.verify_content(history, db, story.store)
    assert [f.check for f in report.about(story.records["A"])] == ["content.missing"]
    assert report.counts["unknown_cid"] == 1
    assert report.checked == 1
    with db.read() as conn:
        assert conn.execute(select(schema.records.c.cid)).all()


def test_late_receipt_in_a_later_batch_is_counted_not_failed(tmp_path: Path) -> None:
    """A receipt committed after its batch was anchored (served earlier than the next batch's
    raised fromTime) is anchored in the next batch and reported as late."""
    from audit_story import build_story

    fresh = build_story(tmp_path)
    try:
        first = _rows(fresh.db)[0]
        # served (by its own clock) before the first batch ended: strictly before its toTime
        row = _signed_row(fresh, head_block=first.head_block, served_at=first.served_at - 5)
        with fresh.db.write() as conn:
            conn.execute(insert(schema.receipts).values(**row))
        fresh.anchor()
        report = _receipts_report(fresh, fresh.db)
        assert report.ok, report.failures
        assert report.counts["late"] == 1
        assert report.counts["batches"] == 2
    finally:
        fresh.index.close()
        fresh.db.dispose()


def test_service_misreporting_its_anchor_tx_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "anchor-tx.db")
    with db.write() as conn:
        conn.execute(update(schema.receipt_batches).values(tx_hash=b"\x42" * 32))
    report = _receipts_report(story, db)
    assert report.failed_checks() == {"batch.db_record"}
    assert "0x" + "42" * 32 in report.failures[0].reason


def test_a_cache_that_lies_about_an_anchor_is_caught_by_batch_of(story: Story) -> None:
    """An index (cache) whose ReceiptRootAnchored says another count than the contract."""
    honest = audit.ChainHistory.from_index(story.chain, story.index)
    events = [e._replace(args={**e.args, "count": int(e.args["count"]) + 1})
              if e.name == "ReceiptRootAnchored" else e for e in honest.events]
    lying = audit.ChainHistory(story.chain, events, honest.head_block)
    report = audit.verify_receipts(story.chain, story.db, lying, seed=1)
    assert {"batch.batch_of", "batch.count"} <= report.failed_checks()


def test_read_by_an_unregistered_reader_is_detected(story: Story) -> None:
    history = _history(story)
    honest = audit.load_receipts(story.db)[0]
    stranger = audit.ReceiptRow(**{**{f: getattr(honest, f) for f in honest.__slots__},
                                   "provider": "0x" + "5A" * 20})
    assert history.provider_at(honest.provider, honest.head_block) is True
    report = audit.verify_access(history, [stranger])
    assert {"access.provider", "access.no_grant"} == report.failed_checks()
    assert "not in the provider registry" in report.failures[0].reason


# -- what only a batch has: proofs, roots, the manifest ---------------------------------------

batch_only = pytest.mark.parametrize("story", ["batch"], indirect=True)


def _content(story: Story, db: Database) -> audit.CheckReport:
    return audit.verify_content(audit.ChainHistory.from_index(story.chain, story.index), db,
                                story.store)


@batch_only
def test_batch_records_are_checked_by_proof(story: Story) -> None:
    report = _content(story, story.db)
    assert report.ok, report.failures
    assert report.checked == report.passed == 2
    assert report.counts["batch_records"] == 2 and report.counts["batches"] == 1
    history = _history(story)
    a = history.registration(story.records["A"], patient=story.patient.address)
    assert a is not None and a.batch_root == story.batch_root and a.scope_id == scope("A")


@batch_only
def test_forged_proof_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "forged-proof.db")
    a, b = (bytes(story.records[x]) for x in ("A", "B"))
    with db.read() as conn:
        proof_of_a = conn.execute(select(schema.records.c.proof).where(
            schema.records.c.record_id == a)).scalar_one()
    with db.write() as conn:
        conn.execute(update(schema.records).where(schema.records.c.record_id == a)
                     .values(proof=os.urandom(32)))
        conn.execute(update(schema.records).where(schema.records.c.record_id == b)
                     .values(proof=proof_of_a))  # a real proof, of another leaf
    report = _content(story, db)
    for record in (a, b):
        [found] = report.about(record)
        assert found.check == "content.batch_proof"
        assert "does not lead" in found.reason
    assert report.passed == 0
    with db.write() as conn:
        conn.execute(update(schema.records).where(schema.records.c.record_id == a)
                     .values(proof=b"" * 31))
    assert "malformed" in _content(story, db).about(a)[0].reason


@batch_only
def test_row_commitment_changed_with_its_ciphertext_is_detected(story: Story,
                                                                tmp_path: Path) -> None:
    """The service swaps a record's ciphertext and writes the new one's commitment in the
    row: the bytes match the row, but the row's proof no longer leads to the root."""
    from kizuna.crypto.commitment import commitment_of

    db = story.clone_db(tmp_path / "recommitted.db")
    other = b"another envelope"
    cid = story.store.put(other)
    with db.write() as conn:
        conn.execute(update(schema.records)
                     .where(schema.records.c.record_id == bytes(story.records["A"]))
                     .values(cid=cid, commitment=commitment_of(other)))
    report = _content(story, db)
    assert [f.check for f in report.about(story.records["A"])] == ["content.batch_proof"]
    assert report.passed == 1


@batch_only
def test_unknown_root_and_another_patients_root_are_detected(story: Story,
                                                             tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "roots.db")
    a, b = (bytes(story.records[x]) for x in ("A", "B"))
    with db.write() as conn:
        conn.execute(update(schema.records).where(schema.records.c.record_id == a)
                     .values(batch_root=os.urandom(32)))
        # B's row handed to another patient: the chain says the batch is the story patient's
        conn.execute(update(schema.records).where(schema.records.c.record_id == b)
                     .values(patient=story.provider.address))
    report = _content(story, db)
    assert [f.check for f in report.about(a)] == ["content.batch_unknown_root"]
    [other] = report.about(b)
    assert other.check == "content.batch_patient"
    assert story.patient.address in other.reason and story.provider.address in other.reason


@batch_only
def test_manifest_not_matching_the_root_is_detected(story: Story, tmp_path: Path) -> None:
    assert story.batch_root is not None
    root = "0x" + story.batch_root.hex()
    db = story.clone_db(tmp_path / "manifest.db")
    leaves = [BatchLeaf(RecordId(os.urandom(32)), scope("A"), Commitment(os.urandom(32)))
              for _ in range(2)]
    with db.write() as conn:
        conn.execute(update(schema.record_batches).values(
            manifest_cid=story.store.put(BatchManifest.of(leaves).encode())))
    report = _content(story, db)
    [found] = report.about(root)
    assert found.check == "content.batch_manifest"
    assert "lead to root" in found.reason
    assert report.passed == 2  # the records' own proofs still hold
    # the same records with one commitment changed: a manifest of the right count, wrong root
    with db.read() as conn:
        rows = conn.execute(select(schema.records.c.record_id, schema.records.c.scope_id,
                                   schema.records.c.commitment)
                            .order_by(schema.records.c.leaf_index)).all()
    forged = [BatchLeaf(RecordId(bytes(r[0])), bytes(r[1]), Commitment(bytes(r[2])))
              for r in rows]
    forged[0] = BatchLeaf(forged[0].record_id, forged[0].scope_id, Commitment(b"" * 32))
    with db.write() as conn:
        conn.execute(update(schema.record_batches).values(
            manifest_cid=story.store.put(BatchManifest.of(forged).encode())))
    assert _content(story, db).failed_checks() == {"content.batch_manifest"}
    # a manifest the store lost
    with db.write() as conn:
        conn.execute(update(schema.record_batches).values(
            manifest_cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"))
    [lost] = _content(story, db).about(root)
    assert lost.check == "content.batch_manifest" and "not in the store" in lost.reason


@batch_only
def test_service_misreporting_a_batch_is_detected(story: Story, tmp_path: Path) -> None:
    db = story.clone_db(tmp_path / "batch-row.db")
    with db.write() as conn:
        conn.execute(update(schema.record_batches).values(count=3))
        conn.execute(insert(schema.record_batches).values(
            root=b"\x09" * 32, patient=story.patient.address, count=1, manifest_cid="x",
            block_number=1, created_at=0))
    report = _content(story, db)
    assert report.failed_checks() == {"content.batch_db_record", "content.batch_unknown_root"}
    assert [f.check for f in report.about(b"\x09" * 32)] == ["content.batch_unknown_root"]
    assert story.batch_root is not None
    [listed] = report.about(story.batch_root)
    assert listed.check == "content.batch_db_record" and "3 records" in listed.reason
