"""Record batches in the index: one ``records`` row per leaf of a batch's manifest.

The chain has only a batch's root, count and patient (``RecordBatchRegistered``); the leaves
— each record's id, blinded scope id and commitment, what ``RecordRegistered`` says of a record
registered alone — are in the batch's *manifest* (:mod:`kizuna.batch`), off-chain. The
index takes manifests from a :data:`ManifestSource` (the service wires it to its
``record_batches`` table and content store): given a root, the manifest's bytes or ``None``.

* The event's projection (:func:`kizuna.chain.index.projections._batch_registered`) only adds
  the batch to ``pending_batches``. Right after a part's events are applied,
  :func:`project_batches` asks the source for the manifests of the batches that part added and
  turns each one it gets into rows of ``records`` (``batch_root``, ``leaf_index`` set; the
  batch event's block, log index and transaction). A batch whose manifest is not available
  stays pending until :meth:`EventIndex.manifest_arrived` (the service, once it stored it).
* A manifest is trusted only for leading to the on-chain root: ``BatchManifest.decode(data,
  root=root)`` rebuilds the tree, and a manifest that does not lead to the root, or whose count
  is not the count the chain registered, is ignored and logged — the batch stays pending.
* A record id is one row. An id already in ``records`` from an earlier registration (the chain
  cannot check a batch's leaves against records registered alone) keeps its row; a leaf of a
  batch earlier in chain order than the row found replaces it. Either way the conflict is
  logged. So the result does not depend on when a manifest arrived.
* A batch record superseded while its batch was pending: ``RecordSuperseded`` found no row
  then, but it set ``supersedes`` on the new version's row, so the leaves' ``superseded_by`` are
  filled in from those rows (of the same patient) when the batch is projected.

Everything here runs inside the index's write transaction; after a reorg, ``pending_batches``
and the batches' rows are rebuilt from ``raw_logs`` like every projection.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable

from kizuna.batch import BatchManifest
from kizuna.errors import InputError, KizunaError

ManifestSource = Callable[[bytes], bytes | None]
"""Given a batch root, the batch's manifest bytes (``BatchManifest.encode``), or ``None`` when
not available (yet). May raise a ``KizunaError`` (a store that cannot be reached, say): the
batch then stays pending, and the error is logged."""

log = logging.getLogger(__name__)

_INSERT_LEAF = (
    "INSERT INTO records (record_id, patient, commitment, scope_id, block_number, log_index,"
    " tx_hash, batch_root, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (record_id) DO UPDATE SET patient = excluded.patient, "
    "commitment = excluded.commitment, scope_id = excluded.scope_id, supersedes = NULL, "
    "superseded_by = NULL, block_number = excluded.block_number, "
    "log_index = excluded.log_index, tx_hash = excluded.tx_hash, "
    "batch_root = excluded.batch_root, leaf_index = excluded.leaf_index "
    "WHERE excluded.block_number < records.block_number OR "
    "(excluded.block_number = records.block_number AND excluded.log_index < records.log_index)"
)
"""A leaf's row; an existing row of the id stays unless this batch came first in chain order."""


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _manifest(root: bytes, count: int, source: ManifestSource) -> BatchManifest | None:
    """The batch's manifest from ``source``, checked against the chain's root and count;
    ``None`` (logged when something was wrong) otherwise."""
    try:
        data = source(root)
    except KizunaError as error:
        log.warning("the manifest of batch %s could not be read (%s): the batch stays "
                    "pending", _hex(root), error)
        return None
    if data is None:
        return None
    try:
        manifest = BatchManifest.decode(data, root=root)
    except InputError as error:
        log.warning("ignored a manifest for batch %s: %s", _hex(root), error)
        return None
    if manifest.count != count:
        log.warning("ignored a manifest for batch %s: it holds %d records, the chain "
                    "registered %d", _hex(root), manifest.count, count)
        return None
    return manifest


def project_batches(cur: sqlite3.Cursor, roots: Iterable[bytes],
                    source: ManifestSource | None) -> list[bytes]:
    """Project the pending batches among ``roots`` whose manifest ``source`` has (in the
    caller's transaction); the roots projected."""
    if source is None:
        return []
    done: list[bytes] = []
    for root in roots:
        pending = cur.execute(
            "SELECT patient, count, block_number, log_index, tx_hash FROM pending_batches "
            "WHERE root = ?", (bytes(root),)).fetchone()
        if pending is None:
            continue
        patient, count, block_number, log_index, tx_hash = pending
        manifest = _manifest(bytes(root), int(count), source)
        if manifest is None:
            continue
        _insert_leaves(cur, bytes(root), manifest, patient, int(block_number), int(log_index),
                       bytes(tx_hash))
        cur.execute("DELETE FROM pending_batches WHERE root = ?", (bytes(root),))
        done.append(bytes(root))
    return done


def _insert_leaves(cur: sqlite3.Cursor, root: bytes, manifest: BatchManifest, patient: str,
                   block_number: int, log_index: int, tx_hash: bytes) -> None:
    ids = [bytes(leaf.record_id) for leaf in manifest.leaves]
    before = _owners(cur, ids)
    cur.executemany(_INSERT_LEAF, [
        (bytes(leaf.record_id), patient, bytes(leaf.commitment), bytes(leaf.scope_id),
         block_number, log_index, tx_hash, root, position)
        for position, leaf in enumerate(manifest.leaves)])
    if before:
        after = _owners(cur, list(before))
        for record_id, (old_root, old_patient) in before.items():
            kept = after[record_id][0] == old_root
            log.warning("record %s of batch %s (%s) was registered before as %s of %s: %s",
                        _hex(record_id), _hex(root), patient,
                        f"a leaf of batch {_hex(old_root)}" if old_root else "a record",
                        old_patient, "the earlier registration is kept" if kept
                        else "this batch came first in chain order and replaces it")
    # RecordSuperseded of a leaf while the batch was pending left its mark on the new version.
    successors = cur.execute(
        "SELECT supersedes, record_id FROM records WHERE patient = ? AND supersedes IS NOT NULL"
        " ORDER BY block_number, log_index", (patient,)).fetchall()
    leaves = set(ids)
    cur.executemany(
        "UPDATE records SET superseded_by = ? WHERE record_id = ? AND patient = ? "
        "AND batch_root = ? AND superseded_by IS NULL",
        [(bytes(new), bytes(old), patient, root) for old, new in successors
         if bytes(old) in leaves])


def _owners(cur: sqlite3.Cursor, ids: list[bytes]) -> dict[bytes, tuple[bytes | None, str]]:
    """Rows of ``ids`` already in ``records``: record id → (its batch root or None, patient)."""
    found: dict[bytes, tuple[bytes | None, str]] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound parameters per statement
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for record_id, root, patient in cur.execute(
                f"SELECT record_id, batch_root, patient FROM records WHERE record_id IN ({marks})",
                chunk):
            found[bytes(record_id)] = (bytes(root) if root is not None else None, patient)
    return found


__all__ = ["ManifestSource", "project_batches"]
