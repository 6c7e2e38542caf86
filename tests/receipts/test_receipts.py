"""Receipts: the leaf encoding, Merkle batches anchored on eth-tester's AccessLog, proofs that
verify on-chain, the contract's time rules, restart safety, the scheduled anchorer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from harness import Stack

from kizuna.receipts.anchorer import Anchorer
from kizuna.receipts.batching import assign_batch, pending_batches
from kizuna.receipts.request import (
    NODE_READ_RECEIPT_TYPEHASH,
    READ_RECEIPT_TYPEHASH,
    ReadRequest,
    receipt_encoding,
    receipt_leaf,
)
from kizuna.receipts.store import ReceiptStore
from kizuna.services.read import serve_read


def _reads(core: Stack, n: int) -> list[bytes]:
    patient, provider = core.party(), core.provider()
    record = core.add_record(patient)
    core.grant(patient, provider)
    ids = []
    for _ in range(n):
        request, signature = core.request(provider, patient, record)
        serve_read(core.ctx, request=request, signature=signature)
        ids.append(request.request_id)
    return ids


def _anchorer(core: Stack) -> Anchorer:
    return Anchorer(db=core.db, chain=core.chain, signer=core.env.admin, interval_s=0.1,
                    pending_grace_s=0)


def test_leaf_is_the_documented_abi_encoding() -> None:
    request = ReadRequest.new(provider="0x" + "11" * 20, patient="0x" + "22" * 20,
                              record_id=b"\x03" * 32, issued_at=1_700_000_000)
    signature = b"\x05" * 65
    expected = abi_encode(
        ["bytes32", "address", "address", "bytes32", "bytes32", "uint64", "bytes32", "uint64",
         "uint64"],
        [READ_RECEIPT_TYPEHASH, request.provider, request.patient, request.record_id,
         request.request_id, request.issued_at, keccak(signature), 1_700_000_005, 42])
    assert receipt_encoding(request, signature, served_at=1_700_000_005,
                            head_block=42) == expected
    assert receipt_leaf(request, signature, served_at=1_700_000_005, head_block=42) == \
        keccak(keccak(expected))
    documented = ("KizunaReadReceipt(address provider,address patient,bytes32 recordId,"
                  "bytes32 requestId,uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,"
                  "uint64 headBlock)")
    assert keccak(text=documented) == READ_RECEIPT_TYPEHASH


def test_a_node_receipt_names_its_node() -> None:
    """A threshold proxy node's leaf: the same fields, then the node's address, under its own
    type hash; two nodes serving one read in the same second and block keep different leaves,
    and neither is the service's leaf of that read."""
    request = ReadRequest.new(provider="0x" + "11" * 20, patient="0x" + "22" * 20,
                              record_id=b"\x03" * 32, issued_at=1_700_000_000)
    signature = b"\x05" * 65
    node_a, node_b = "0x" + "aa" * 20, "0x" + "bb" * 20
    expected = abi_encode(
        ["bytes32", "address", "address", "bytes32", "bytes32", "uint64", "bytes32", "uint64",
         "uint64", "address"],
        [NODE_READ_RECEIPT_TYPEHASH, request.provider, request.patient, request.record_id,
         request.request_id, request.issued_at, keccak(signature), 1_700_000_005, 42, node_a])
    assert receipt_encoding(request, signature, served_at=1_700_000_005, head_block=42,
                            node=node_a) == expected
    documented = ("KizunaNodeReadReceipt(address provider,address patient,bytes32 recordId,"
                  "bytes32 requestId,uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,"
                  "uint64 headBlock,address node)")
    assert keccak(text=documented) == NODE_READ_RECEIPT_TYPEHASH
    leaves = {receipt_leaf(request, signature, served_at=1_700_000_005, head_block=42,
                           node=n) for n in (node_a, node_b, None)}
    assert len(leaves) == 3


def test_fast_digest_equals_the_eip712_library(core: Stack) -> None:
    request = ReadRequest.new(provider="0x" + "11" * 20, patient="0x" + "22" * 20,
                              record_id=b"\x03" * 32)
    assert request.digest(core.ctx.domain) == request.typed_data(core.ctx.domain).digest()
    assert ReadRequest.from_json(request.to_json()) == request


def test_every_receipt_proves_on_chain(core: Stack) -> None:
    ids = _reads(core, 5)
    assert core.ctx.receipts.proof(ids[0]) is None  # not batched yet
    batches = _anchorer(core).run_once()
    assert len(batches) == 1 and batches[0].count == 5 and batches[0].tx_hash
    assert core.chain.access_log.batch_count(core.env.admin.address)[0] == 1
    for request_id in ids:
        proof = core.ctx.receipts.proof(request_id)
        assert proof is not None and proof.batch.anchored
        assert core.chain.access_log.verify_receipt(proof.batch.root, proof.receipt.leaf,
                                                     list(proof.proof))
        # The leaf is recomputable from the stored receipt alone.
        r = proof.receipt
        assert receipt_leaf(r.request, r.signature, served_at=r.served_at,
                            head_block=r.head_block) == r.leaf
    proof = core.ctx.receipts.proof(ids[1])
    assert proof is not None
    forged = bytearray(proof.receipt.leaf)
    forged[0] ^= 1
    assert not core.chain.access_log.verify_receipt(proof.batch.root, bytes(forged),
                                                     list(proof.proof))
    assert _anchorer(core).run_once() == []  # nothing new


def test_batches_follow_each_other_in_time(core: Stack) -> None:
    _reads(core, 2)
    first = _anchorer(core).run_once()
    _reads(core, 3)
    second = _anchorer(core).run_once()
    assert len(first) == len(second) == 1
    assert second[0].from_time >= first[0].to_time
    assert core.chain.access_log.batch_count(core.env.admin.address) == (2, second[0].to_time)


def test_a_late_receipt_is_still_anchored(core: Stack) -> None:
    ids = _reads(core, 1)
    done = _anchorer(core).run_once()
    stored = core.ctx.receipts.get(ids[0])
    assert stored is not None
    # A receipt committed late with an earlier served_at (another instance's clock).
    late = ReadRequest.new(provider=stored.request.provider, patient=stored.request.patient,
                           record_id=stored.request.record_id)
    core.ctx.receipts.record(request=late, signature=b"\x01" * 65, scope_id=stored.scope_id,
                              served_at=done[0].to_time - 30, head_block=stored.head_block)
    again = _anchorer(core).run_once()
    assert len(again) == 1 and again[0].from_time == done[0].to_time
    proof = core.ctx.receipts.proof(late.request_id)
    assert proof is not None
    assert core.chain.access_log.verify_receipt(proof.batch.root, proof.receipt.leaf,
                                                 list(proof.proof))


def test_receipts_of_a_dead_process_are_anchored_by_the_next_one(core: Stack) -> None:
    ids = _reads(core, 3)
    # The process dies before any anchoring. A new process: new store, new anchorer, same db.
    fresh = Anchorer(db=core.db, chain=core.chain, signer=core.env.admin)
    assert [b.count for b in fresh.run_once()] == [3]
    assert ReceiptStore(core.db).count(anchored=False) == 0
    for request_id in ids:
        proof = ReceiptStore(core.db).proof(request_id)
        assert proof is not None
        assert core.chain.access_log.verify_receipt(proof.batch.root, proof.receipt.leaf,
                                                     list(proof.proof))


def test_a_batch_made_but_not_anchored_is_finished_after_a_crash(core: Stack) -> None:
    _reads(core, 2)
    # Crash between "batch assigned in the db" and "anchor sent".
    batch = assign_batch(core.db, until=int(time.time()) + 1)
    assert batch is not None and pending_batches(core.db) == [batch]
    # Within the grace period the batch may be another anchorer's: left alone.
    young = Anchorer(db=core.db, chain=core.chain, signer=core.env.admin,
                     pending_grace_s=3600)
    assert young.run_once() == [] and pending_batches(core.db) == [batch]
    done = _anchorer(core).run_once()
    assert [b.root for b in done] == [batch.root]
    assert pending_batches(core.db) == []
    assert core.chain.access_log.batch_of(batch.root) is not None


def test_a_batch_anchored_before_the_crash_is_not_sent_twice(core: Stack) -> None:
    _reads(core, 2)
    batch = assign_batch(core.db, until=int(time.time()) + 1)
    assert batch is not None
    # The anchor transaction went through, then the process died before recording it.
    made = core.chain.access_log.anchor(batch.root, batch.count, batch.from_time,
                                         batch.to_time, signer=core.env.admin)
    done = _anchorer(core).run_once()
    assert [b.root for b in done] == [batch.root]
    assert done[0].tx_hash == made.tx_hash
    assert core.chain.access_log.batch_count(core.env.admin.address)[0] == 1
    info = core.ctx.receipts.batch(batch.root)
    assert info is not None and info.tx_hash == made.tx_hash


def test_receipts_served_in_the_future_wait(core: Stack) -> None:
    ids = _reads(core, 1)
    stored = core.ctx.receipts.get(ids[0])
    assert stored is not None
    future = ReadRequest.new(provider=stored.request.provider, patient=stored.request.patient,
                             record_id=stored.request.record_id)
    head_time = core.chain.head().timestamp
    core.ctx.receipts.record(request=future, signature=b"\x02" * 65, scope_id=stored.scope_id,
                              served_at=max(head_time, int(time.time())) + 10_000,
                              head_block=stored.head_block)
    done = _anchorer(core).run_once()
    assert [b.count for b in done] == [1]  # the future one is left for later
    assert core.ctx.receipts.count(anchored=False) == 1


def test_scheduled_anchorer_runs_and_stops_cleanly(core: Stack) -> None:
    anchorer = _anchorer(core)
    with anchorer:
        ids = _reads(core, 2)
        deadline = time.monotonic() + 20
        while core.ctx.receipts.count(anchored=False) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert anchorer._thread is None
    assert core.ctx.receipts.count(anchored=False) == 0
    proof = core.ctx.receipts.proof(ids[-1])
    assert proof is not None and proof.batch.anchored


def test_anchoring_needs_the_anchor_role(core: Stack) -> None:
    from kizuna.errors import ContractReverted

    _reads(core, 1)
    outsider = core.party()
    with pytest.raises(ContractReverted, match="AccessControlUnauthorizedAccount"):
        Anchorer(db=core.db, chain=core.chain, signer=outsider.signer).run_once()
    assert core.chain.access_log.batch_count(core.env.admin.address)[0] == 0
    # The batch stays pending and is finished by a legitimate anchorer.
    assert len(pending_batches(core.db)) == 1
    assert [b.count for b in _anchorer(core).run_once()] == [1]


def test_an_altered_receipt_store_is_detected_when_proving(core: Stack) -> None:
    from sqlalchemy import update

    from kizuna.db import schema as t
    from kizuna.errors import IntegrityError

    ids = _reads(core, 3)
    _anchorer(core).run_once()
    with core.db.write() as conn:  # someone rewrites a stored leaf after anchoring
        conn.execute(update(t.receipts).where(t.receipts.c.request_id == ids[1])
                     .values(leaf=b"\x00" * 32))
    with pytest.raises(IntegrityError, match="do not hash to its root"):
        ReceiptStore(core.db).proof(ids[0])


@contextmanager
def _granted_on_own_anvil(tmp_path: Path) -> Iterator[tuple[Stack, Any, Any, Any]]:
    """A core on an anvil of its own (its clock untouched by other suites): a patient's
    record granted to a provider. Yields (core, patient, provider, record)."""
    from chainenv import _anvil_env
    from harness import make_stack

    from kizuna.chain.localnode import LocalNode

    with LocalNode(log_path=tmp_path / "anvil.log") as node:
        core = make_stack(_anvil_env(node), tmp_path)
        try:
            patient, provider = core.party(), core.provider()
            record = core.add_record(patient)
            core.grant(patient, provider)
            yield core, patient, provider, record
        finally:
            core.db.dispose()


@pytest.mark.anvil
def test_receipts_served_after_the_last_block_are_anchored_in_one_pass(tmp_path: Path) -> None:
    """A chain that mines only on transactions (anvil) or every few seconds has its latest
    block behind the clock: a batch ending now is valid in the next block (the anchoring one)
    but not in the latest. Estimating there refused every batch holding a receipt served since
    the last block, so a busy service never anchored at all."""
    with _granted_on_own_anvil(tmp_path) as (core, patient, provider, record):
        last_block = core.chain.head().timestamp
        while int(time.time()) <= last_block + 1:  # the clock moves past the last block
            time.sleep(0.1)
        request, signature = core.request(provider, patient, record)
        served = serve_read(core.ctx, request=request, signature=signature)
        assert served.served_at > core.chain.head().timestamp
        batches = Anchorer(db=core.db, chain=core.chain, signer=core.env.admin).run_once()
        assert [b.count for b in batches] == [1]
        assert core.ctx.receipts.proof(served.request_id) is not None


@pytest.mark.anvil
def test_a_batch_ending_after_the_chains_clock_is_retried_in_the_same_pass(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """This machine's clock a second ahead of the node's: the batch's toTime is after the
    block's timestamp and the contract refuses it. The pass waits for the chain's clock and
    anchors it then, instead of leaving every receipt to the next pass (a minute later); a
    clock far ahead gives up after ``time_retries`` and leaves the receipts unbatched."""
    with _granted_on_own_anvil(tmp_path) as (core, patient, provider, record):

        def serve(ahead: int) -> bytes:
            request, signature = core.request(provider, patient, record)
            served = serve_read(core.ctx, request=request, signature=signature,
                                now=int(time.time()) + ahead)
            return served.request_id

        near = serve(1)
        anchorer = Anchorer(db=core.db, chain=core.chain, signer=core.env.admin,
                            retry_wait_s=0.5, clock=lambda: time.time() + 1)
        batches = anchorer.run_once()
        assert [b.count for b in batches] == [1]
        assert core.ctx.receipts.proof(near) is not None

        far = serve(60)
        hasty = Anchorer(db=core.db, chain=core.chain, signer=core.env.admin,
                         time_retries=2, retry_wait_s=0.1, clock=lambda: time.time() + 60)
        with caplog.at_level("WARNING", logger="kizuna.receipts.anchorer"):
            assert hasty.run_once() == []
        assert "refused for its time range (too early) 3 times" in caplog.text
        assert core.ctx.receipts.proof(far) is None
        assert pending_batches(core.db) == []  # dissolved, nothing half-made
