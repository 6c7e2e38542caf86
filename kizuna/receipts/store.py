"""``ReceiptStore``: every served read, persisted before the read is answered.

A receipt is the provider's signed :class:`~kizuna.receipts.request.ReadRequest` plus what the
service adds: ``served_at`` (unix seconds, the service's clock), ``head_block`` (the chain head
the access decision was made at) and the Merkle ``leaf`` of all of it. ``request_id`` is UNIQUE
in the table: the insert is the replay check that holds across threads and service instances
(:class:`~kizuna.receipts.request.ReplayedRequest`).

Receipts get a batch (``batch_root``, ``leaf_index``) when the anchorer takes them
(:mod:`kizuna.receipts.batching`); :meth:`ReceiptStore.proof` then gives the Merkle proof an
auditor checks with ``AccessLog.verifyReceipt``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.db.driver import DuplicateKey
from kizuna.errors import IntegrityError
from kizuna.merkle import MerkleTree
from kizuna.receipts.request import ReadRequest, ReplayedRequest, receipt_leaf
from kizuna.types import Address, ScopeId, checksum_address


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """One served read, as persisted."""

    seq: int
    request: ReadRequest
    signature: bytes
    scope_id: ScopeId
    leaf: bytes
    served_at: int
    head_block: int
    batch_root: bytes | None = None
    leaf_index: int | None = None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch of receipts: its root, time range and (once anchored) its transaction."""

    root: bytes
    count: int
    from_time: int
    to_time: int
    tx_hash: bytes | None
    block_number: int | None
    anchored_at: int | None

    @property
    def anchored(self) -> bool:
        return self.tx_hash is not None


@dataclass(frozen=True, slots=True)
class ReceiptProof:
    """A receipt with the Merkle proof of its leaf under its batch's root."""

    receipt: StoredReceipt
    batch: BatchInfo
    proof: tuple[bytes, ...]


_COLUMNS = (t.receipts.c.seq, t.receipts.c.request_json, t.receipts.c.signature,
            t.receipts.c.scope_id, t.receipts.c.leaf, t.receipts.c.served_at,
            t.receipts.c.head_block, t.receipts.c.batch_root, t.receipts.c.leaf_index)


def _receipt(row: Any) -> StoredReceipt:
    return StoredReceipt(seq=int(row[0]), request=ReadRequest.from_json(json.loads(row[1])),
                         signature=bytes(row[2]), scope_id=ScopeId(bytes(row[3])),
                         leaf=bytes(row[4]), served_at=int(row[5]), head_block=int(row[6]),
                         batch_root=bytes(row[7]) if row[7] is not None else None,
                         leaf_index=int(row[8]) if row[8] is not None else None)


def _batch(row: Any) -> BatchInfo:
    return BatchInfo(root=bytes(row[0]), count=int(row[1]), from_time=int(row[2]),
                     to_time=int(row[3]), tx_hash=bytes(row[4]) if row[4] is not None else None,
                     block_number=int(row[5]) if row[5] is not None else None,
                     anchored_at=int(row[6]) if row[6] is not None else None)


_BATCH_COLUMNS = (t.receipt_batches.c.root, t.receipt_batches.c.count,
                  t.receipt_batches.c.from_time, t.receipt_batches.c.to_time,
                  t.receipt_batches.c.tx_hash, t.receipt_batches.c.block_number,
                  t.receipt_batches.c.anchored_at)


_RECEIPT_FIELDS = ("request_id", "provider", "patient", "record_id", "scope_id", "request_json",
                   "signature", "leaf", "served_at", "head_block")
_INSERT_RECEIPT = (f"INSERT INTO {t.receipts.name} ({', '.join(_RECEIPT_FIELDS)}) "
                   f"VALUES ({', '.join('?' for _ in _RECEIPT_FIELDS)}) RETURNING seq")
"""Every read writes one receipt, through the driver (kizuna.db.driver)."""


class ReceiptStore:
    """Receipts in the service database (shared by every instance)."""

    def __init__(self, db: Database, *, node: Address | None = None,
                 cached_trees: int = 8) -> None:
        self.db = db
        self.node = checksum_address(node) if node is not None else None
        """The threshold proxy node whose receipts these are (each leaf names it,
        :func:`~kizuna.receipts.request.receipt_leaf`); ``None``: the service's."""
        self.cached_trees = cached_trees
        # A batch's tree never changes once its receipts are assigned (leaves in leaf_index
        # order): proofs for receipts of recent batches reuse it instead of rebuilding it.
        self._trees: OrderedDict[bytes, MerkleTree] = OrderedDict()
        self._trees_lock = threading.Lock()

    # -- writing ------------------------------------------------------------------------------

    def seen(self, request_id: bytes) -> bool:
        """True when ``request_id`` was served already (a cheap early replay check)."""
        with self.db.read() as conn:
            return conn.execute(select(t.receipts.c.seq).where(
                t.receipts.c.request_id == bytes(request_id))).first() is not None

    def record(self, *, request: ReadRequest, signature: bytes, scope_id: ScopeId,
               served_at: int, head_block: int) -> StoredReceipt:
        """Persist (and commit) one receipt; ``ReplayedRequest`` if its id was used before."""
        leaf = receipt_leaf(request, signature, served_at=served_at, head_block=head_block,
                            node=self.node)
        try:
            # Committed when this returns: the receipt is durable before the read is answered.
            row = self.db.driver.insert(_INSERT_RECEIPT, (
                request.request_id, request.provider, request.patient,
                bytes(request.record_id), bytes(scope_id), request.to_json_string(),
                bytes(signature), leaf, served_at, head_block))
        except DuplicateKey:
            raise ReplayedRequest(
                f"read request 0x{request.request_id.hex()} was served already") from None
        assert row is not None  # RETURNING seq: one row for the one inserted
        return StoredReceipt(seq=int(row[0]), request=request, signature=bytes(signature),
                             scope_id=scope_id, leaf=leaf, served_at=served_at,
                             head_block=head_block)

    # -- reading ------------------------------------------------------------------------------

    def get(self, request_id: bytes) -> StoredReceipt | None:
        with self.db.read() as conn:
            row = conn.execute(select(*_COLUMNS).where(
                t.receipts.c.request_id == bytes(request_id))).first()
        return None if row is None else _receipt(row)

    def select(self, *, patient: Address | None = None, provider: Address | None = None,
             from_time: int | None = None, to_time: int | None = None, after_seq: int = 0,
             limit: int = 1000) -> list[StoredReceipt]:
        """Receipts in ``seq`` order, filtered (times inclusive), at most ``limit``."""
        query = select(*_COLUMNS).where(t.receipts.c.seq > after_seq)
        if patient is not None:
            query = query.where(t.receipts.c.patient == checksum_address(patient))
        if provider is not None:
            query = query.where(t.receipts.c.provider == checksum_address(provider))
        if from_time is not None:
            query = query.where(t.receipts.c.served_at >= from_time)
        if to_time is not None:
            query = query.where(t.receipts.c.served_at <= to_time)
        query = query.order_by(t.receipts.c.seq).limit(limit)
        with self.db.read() as conn:
            return [_receipt(r) for r in conn.execute(query)]

    def count(self, *, anchored: bool | None = None) -> int:
        query = select(func.count()).select_from(t.receipts)
        if anchored is True:
            query = query.where(t.receipts.c.batch_root.is_not(None))
        elif anchored is False:
            query = query.where(t.receipts.c.batch_root.is_(None))
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def batches(self, *, anchored_only: bool = False) -> list[BatchInfo]:
        query = select(*_BATCH_COLUMNS).order_by(t.receipt_batches.c.from_time,
                                                 t.receipt_batches.c.created_at)
        if anchored_only:
            query = query.where(t.receipt_batches.c.tx_hash.is_not(None))
        with self.db.read() as conn:
            return [_batch(r) for r in conn.execute(query)]

    def batch(self, root: bytes) -> BatchInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(*_BATCH_COLUMNS).where(
                t.receipt_batches.c.root == bytes(root))).first()
        return None if row is None else _batch(row)

    def batch_leaves(self, root: bytes) -> list[bytes]:
        """The leaves of batch ``root`` in tree order."""
        with self.db.read() as conn:
            return self._leaves(conn, root)

    @staticmethod
    def _leaves(conn: Connection, root: bytes) -> list[bytes]:
        return [bytes(r[0]) for r in conn.execute(
            select(t.receipts.c.leaf).where(t.receipts.c.batch_root == bytes(root))
            .order_by(t.receipts.c.leaf_index))]

    def proof(self, request_id: bytes) -> ReceiptProof | None:
        """The receipt and its Merkle proof; ``None`` if unknown or not in a batch yet."""
        with self.db.read() as conn:
            row = conn.execute(select(*_COLUMNS).where(
                t.receipts.c.request_id == bytes(request_id))).first()
            if row is None or row[7] is None:
                return None
            receipt = _receipt(row)
            assert receipt.batch_root is not None and receipt.leaf_index is not None
            batch_row = conn.execute(select(*_BATCH_COLUMNS).where(
                t.receipt_batches.c.root == receipt.batch_root)).first()
            tree = self._tree(conn, receipt.batch_root)
        return ReceiptProof(receipt=receipt, batch=_batch(batch_row),
                            proof=tuple(tree.proof(receipt.leaf_index)))

    def _tree(self, conn: Connection, root: bytes) -> MerkleTree:
        with self._trees_lock:
            cached = self._trees.get(root)
            if cached is not None:
                self._trees.move_to_end(root)
                return cached
        tree = MerkleTree.build(self._leaves(conn, root))
        if tree.root != root:
            raise IntegrityError(f"the receipts of batch 0x{root.hex()} do not hash to its "
                                 "root: the receipt store was altered")
        with self._trees_lock:
            self._trees[root] = tree
            while len(self._trees) > self.cached_trees:
                self._trees.popitem(last=False)
        return tree

    def proofs(self, request_ids: Sequence[bytes]) -> list[ReceiptProof | None]:
        return [self.proof(r) for r in request_ids]


__all__ = ["BatchInfo", "ReceiptProof", "ReceiptStore", "StoredReceipt"]
