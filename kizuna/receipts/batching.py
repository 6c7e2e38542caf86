"""Merkle batches of receipts: take the unbatched receipts, build the tree, record the batch.

A batch is made in one database transaction (:func:`assign_batch`): the oldest receipts
without a batch (in ``seq`` order, served at or before ``until``) get ``batch_root`` and their
``leaf_index``, and a ``receipt_batches`` row is written with ``tx_hash`` NULL ("pending").
Anchoring happens after the commit (:mod:`kizuna.receipts.anchorer`); a pending batch survives
a crash and is anchored (or dissolved and re-made) by the next run, so a persisted receipt is
never lost on its way to the chain.

Time range: ``from_time``/``to_time`` are the earliest and latest ``served_at`` of the batch's
receipts. ``AccessLog.anchor`` requires each batch to start at or after the previous batch's
``to_time``; a receipt committed late with an earlier ``served_at`` (another instance's clock,
a slow commit) is still anchored: the batch's ``from_time`` is raised to the previous
``to_time`` (:func:`assign_batch` takes it as ``not_before``) and the receipt's own
``served_at`` stays what it was -- an auditor sees it as late, not missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, select, update

from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.merkle import MerkleTree

MAX_BATCH = 100_000
"""Receipts per batch at most (a proof has ~17 hashes at this size)."""


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch made in the database and not anchored yet."""

    root: bytes
    count: int
    from_time: int
    to_time: int


def assign_batch(db: Database, *, until: int, not_before: int = 0,
                 max_size: int = MAX_BATCH) -> PendingBatch | None:
    """Make a batch of the unbatched receipts served at or before ``until``; ``None`` if none."""
    with db.write() as conn:
        query = (select(t.receipts.c.seq, t.receipts.c.leaf, t.receipts.c.served_at)
                 .where(t.receipts.c.batch_root.is_(None), t.receipts.c.served_at <= until)
                 .order_by(t.receipts.c.seq).limit(max_size))
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return None
        leaves = [bytes(r[1]) for r in rows]
        tree = MerkleTree.build(leaves)
        if _root_taken(conn, tree.root):
            # The same leaves again (a dissolved batch being re-made): reuse its row.
            conn.execute(delete(t.receipt_batches).where(
                t.receipt_batches.c.root == tree.root, t.receipt_batches.c.tx_hash.is_(None)))
        times = [int(r[2]) for r in rows]
        from_time = max(min(times), not_before)
        to_time = max(max(times), from_time)
        conn.execute(t.receipt_batches.insert().values(
            root=tree.root, count=len(rows), from_time=from_time, to_time=to_time,
            created_at=int(time.time())))
        conn.execute(update(t.receipts)
                     .where(t.receipts.c.seq == bindparam("b_seq"))
                     .values(batch_root=tree.root, leaf_index=bindparam("b_index")),
                     [{"b_seq": int(r[0]), "b_index": i} for i, r in enumerate(rows)])
    return PendingBatch(root=tree.root, count=len(rows), from_time=from_time, to_time=to_time)


def _root_taken(conn: Connection, root: bytes) -> bool:
    return conn.execute(select(t.receipt_batches.c.root).where(
        t.receipt_batches.c.root == root)).first() is not None


def pending_batches(db: Database, *, made_before: int | None = None) -> list[PendingBatch]:
    """Batches made but not anchored (e.g. the process died in between), oldest first; with
    ``made_before``, only those made at or before that time."""
    query = (select(t.receipt_batches.c.root, t.receipt_batches.c.count,
                    t.receipt_batches.c.from_time, t.receipt_batches.c.to_time)
             .where(t.receipt_batches.c.tx_hash.is_(None))
             .order_by(t.receipt_batches.c.created_at, t.receipt_batches.c.from_time))
    if made_before is not None:
        query = query.where(t.receipt_batches.c.created_at <= made_before)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [PendingBatch(root=bytes(r[0]), count=int(r[1]), from_time=int(r[2]),
                         to_time=int(r[3])) for r in rows]


def mark_anchored(db: Database, *, root: bytes, tx_hash: bytes, block_number: int,
                  anchored_at: int | None = None) -> None:
    with db.write() as conn:
        conn.execute(update(t.receipt_batches).where(t.receipt_batches.c.root == root).values(
            tx_hash=tx_hash, block_number=block_number,
            anchored_at=int(time.time()) if anchored_at is None else anchored_at))


def dissolve(db: Database, root: bytes) -> int:
    """Undo a pending batch (its receipts become unbatched again); how many receipts."""
    with db.write() as conn:
        result = conn.execute(update(t.receipts).where(t.receipts.c.batch_root == root)
                              .values(batch_root=None, leaf_index=None))
        conn.execute(delete(t.receipt_batches).where(t.receipt_batches.c.root == root,
                                                     t.receipt_batches.c.tx_hash.is_(None)))
    return int(result.rowcount)


__all__ = ["MAX_BATCH", "PendingBatch", "assign_batch", "dissolve", "mark_anchored",
           "pending_batches"]
