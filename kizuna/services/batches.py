"""Batch registration on the service side: stage many envelopes, then register them all under
one Merkle root with one transaction (docs/service.md "Batches", kizuna/batch.py).

::

    POST /patient/staged   framed envelopes ──► each checked as a single upload is (preamble,
                           record id, content type, size, current key epoch, quota) ──► the
                           content store, ONE write for the request (``put_many``) ──►
                           ``staged_envelopes`` rows (ids that are records: 409; nothing kept
                           of a request that fails anywhere)
    POST /patient/batches  manifest ──► every leaf a staged envelope of this patient with that
                           scope and commitment ──► the signed RegisterBatch relayed (or the
                           wallet's tx awaited) ──► its RecordBatchRegistered event checked ──►
                           the manifest stored ──► ONE DB transaction: the staged rows become
                           ``records`` rows (batch root, leaf index, packed proof), the
                           ``record_batches`` row, the staged rows deleted

A failure before the chain confirmed leaves the envelopes staged and nothing in ``records``; a
retry whose first attempt reached the chain (the answer was lost, the store or the database
failed afterwards) finds the root on chain for this patient and finishes the rows without a
second transaction. Staged envelopes count against the patient's storage quota; ones never
registered are unpinned and deleted after ``staged_ttl_s`` by :class:`StagedSweeper`.

The request body of ``POST /patient/staged`` is, for each envelope: record id (32 bytes) ‖
scope id (32) ‖ key epoch (8, big-endian) ‖ length (8, big-endian) ‖ the envelope.
:func:`frame_envelopes` writes it, :func:`parse_frames` reads it streaming (one home for the
format, both sides).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from web3.types import RPCEndpoint

from kizuna.background import Sweep
from kizuna.batch import BatchManifest, pack_proof
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.relayer import RelayRefused
from kizuna.chain.transactions import node_errors
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db.schema import record_batches, staged_envelopes
from kizuna.db.schema import records as records_table
from kizuna.errors import (
    ConflictError,
    CryptoError,
    InputError,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
)
from kizuna.services.onchain import (
    checked_address,
    checked_bytes32,
    prepare,
    require_event,
    signed_field,
    submit,
)
from kizuna.services.quotas import metered, records_exceeded, room_for, stored_by
from kizuna.services.records import (
    ALLOWED_CONTENT_TYPES,
    DEFAULT_MAX_ENVELOPE_BYTES,
    EnvelopeIntake,
    current_epoch,
    envelope_chunks,
    keep_stored,
    release_blobs,
)
from kizuna.types import Address, Cid, RecordId, ScopeId
from kizuna.wire.batches import FRAME_HEAD, BatchInfo, StagedEnvelope, StagedInfo
from kizuna.wire.onchain import PreparedAction, SentTransaction
from kizuna.wire.records import EnvelopeTooLarge

if TYPE_CHECKING:
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext

log = logging.getLogger(__name__)

MAX_STAGED_PER_REQUEST = 1000
"""Envelopes one staging request may carry (and at most the upload limit in bytes)."""
DEFAULT_STAGED_TTL_S = 86_400
"""Staged envelopes not registered within a day are unpinned and deleted."""
_IN_CHUNK = 500  # ids per IN (...) query: under every database's bound-parameter limit

RECORD_BATCH_REGISTERED = bytes(keccak(text="RecordBatchRegistered(address,bytes32,uint32)"))
"""topic0 of ``RecordBatchRegistered(address indexed patient, bytes32 indexed root,
uint32 count)``."""


# --- the staging request's format ----------------------------------------------------------


class _Body:
    """Exact reads over a stream of chunks (one chunk, plus what is left of it, in memory)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the body."""
        parts: list[bytes] = []
        want = size
        while want:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
                continue
            take = self._pending[:want]
            parts.append(bytes(take))
            self._pending = self._pending[len(take):]
            want -= len(take)
        return b"".join(parts)

    def pieces(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes as they arrive (at most 256 KiB a piece)."""
        left = size
        while left:
            piece = self.read(min(left, 1 << 18))
            if not piece:
                return
            left -= len(piece)
            yield piece


def parse_frames(chunks: Iterable[bytes], *, max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
                 max_items: int = MAX_STAGED_PER_REQUEST) -> Iterator[StagedEnvelope]:
    """The envelopes of a staging body, streaming: each item's ``envelope`` is an iterator of
    its bytes, to be consumed before the next item is taken (what ``put_many`` does). A bad
    frame raises ``InputError`` naming ``envelopes[i]`` and the field (a head cut short, a
    declared length over ``max_size`` — ``EnvelopeTooLarge``, at once, before any of it is
    read — an envelope shorter than declared, more than ``max_items`` envelopes, none)."""
    body = _Body(chunks)
    index = 0
    while True:
        head = body.read(FRAME_HEAD)
        if not head:
            if index == 0:
                raise InputError("body", "holds no envelope")
            return
        where = f"envelopes[{index}]"
        if index >= max_items:
            raise InputError("envelopes", f"at most {max_items} envelopes a request")
        if len(head) < FRAME_HEAD:
            raise InputError(where, f"the body ends inside its head ({len(head)} of "
                                    f"{FRAME_HEAD} bytes: record id, scope id, epoch, length)")
        length = int.from_bytes(head[72:80], "big")
        if length > max_size:
            raise _indexed_error(EnvelopeTooLarge(max_size), index, "length")
        got = 0

        def envelope(length: int = length, where: str = where) -> Iterator[bytes]:
            nonlocal got
            for piece in body.pieces(length):
                got += len(piece)
                yield piece
            if got < length:
                raise InputError(f"{where}.envelope", f"the body ends after {got} of the "
                                                      f"{length} bytes declared")

        yield StagedEnvelope(record_id=RecordId(head[:32]), scope_id=ScopeId(head[32:64]),
                             epoch=int.from_bytes(head[64:72], "big"), envelope=envelope())
        for _ in body.pieces(length - got):  # whatever the consumer left of this envelope
            pass
        index += 1


# --- staging -------------------------------------------------------------------------------


def _indexed_error(exc: KizunaError, index: int, field: str | None = None) -> KizunaError:
    """``exc`` naming envelope ``index``: an ``InputError`` keeps its class (a 413 stays one)
    with the field prefixed; a bad envelope (a crypto format error) becomes an ``InputError``
    on its ``envelope``; a conflict says which envelope. ``field`` overrides the error's."""
    where = f"envelopes[{index}]"
    if isinstance(exc, InputError) and not exc.field.startswith("envelopes"):
        field = field or exc.field
        exc.field = f"{where}.{field}" if field else where
        exc.args = (f"{exc.field}: {exc.reason}",)
        return exc
    if isinstance(exc, CryptoError):
        return InputError(f"{where}.envelope", str(exc))
    if isinstance(exc, ConflictError):
        return ConflictError(f"{where}: {exc}")
    return exc


@contextlib.contextmanager
def _at(index: int) -> Iterator[None]:
    try:
        yield
    except (InputError, CryptoError, ConflictError) as exc:
        raise _indexed_error(exc, index) from None


def _indexed(index: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    with _at(index):
        yield from chunks


@dataclass(slots=True)
class _Staging:
    record_id: RecordId
    scope_id: ScopeId
    epoch: int
    intake: EnvelopeIntake


def stage_envelopes(ctx: ServiceContext, *, patient: str, items: Iterable[StagedEnvelope],
                    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
                    allowed_content_types: Iterable[str] = ALLOWED_CONTENT_TYPES,
                    max_items: int = MAX_STAGED_PER_REQUEST) -> list[StagedInfo]:
    """Store ``items`` for ``patient`` as staged envelopes (not registered yet); their
    :class:`StagedInfo` in order. Each is checked as :func:`~kizuna.services.records.
    upload_record` checks an upload (errors name ``envelopes[i]``); the storage quota counts
    the whole request; all of them are written to the store as one write. An id the patient
    staged before is replaced (a resumed import re-encrypts); an id that is a record, or that
    another patient staged, is a ``ConflictError``. Any failure keeps nothing of the request."""
    owner = checked_address("patient", patient)
    room = room_for(ctx.db, ctx.quota, owner)  # QuotaExceeded before a byte is read
    stored = stored_by(ctx.db, owner).count if ctx.quota.max_records else 0
    allowed = frozenset(allowed_content_types)
    epochs: dict[tuple[bytes, int], int] = {}
    staged: list[_Staging] = []
    positions: dict[bytes, int] = {}

    def sources() -> Iterator[Iterator[bytes]]:
        left = room
        for index, item in enumerate(items):
            if index >= max_items:
                raise InputError("envelopes", f"at most {max_items} envelopes a request")
            if staged and left is not None:
                left -= staged[-1].intake.size  # the previous one is wholly stored by now
            with _at(index):
                rid = RecordId(checked_bytes32("record_id", item.record_id))
                sid = ScopeId(checked_bytes32("scope_id", item.scope_id))
                if bytes(rid) in positions:
                    raise InputError("record_id", f"0x{rid.hex()} is in this request already "
                                                  f"(envelopes[{positions[bytes(rid)]}])")
                key = (bytes(sid), checked_epoch("epoch", item.epoch))
                if key not in epochs:
                    epochs[key] = current_epoch(ctx, owner, sid, item.epoch)
                if ctx.quota.max_records and stored + index >= ctx.quota.max_records:
                    raise records_exceeded(owner, ctx.quota, stored + index)
            positions[bytes(rid)] = index
            intake = EnvelopeIntake(record_id=rid, max_size=max_size,
                                    allowed_content_types=allowed)
            staged.append(_Staging(rid, sid, epochs[key], intake))
            yield _indexed(index, intake.chunks(metered(
                envelope_chunks(item.envelope), wallet=owner, quota=ctx.quota,
                room=max(left, 0) if left is not None else None)))

    cids = ctx.store.put_many(sources(), pin=True)
    if not cids:
        raise InputError("envelopes", "name at least one envelope")
    now = int(time.time())
    replaced: list[Cid] = []

    def rows(conn: Connection, _: None) -> None:
        replaced.extend(_stage_rows(conn, owner, staged, cids, positions, now))

    # The envelope lifecycle of records (keep_stored): nothing to confirm before the rows;
    # the blobs pinned again with them, released (unless a row uses them) on any failure.
    keep_stored(ctx, cids, confirm=lambda: None, rows=rows)
    release_blobs(ctx, [c for c in replaced if c not in set(cids)])
    return [StagedInfo(record_id=s.record_id, commitment=s.intake.commitment, cid=cid,
                       size=s.intake.size) for s, cid in zip(staged, cids, strict=True)]


def _stage_rows(conn: Connection, owner: str, staged: Sequence[_Staging], cids: Sequence[Cid],
                positions: dict[bytes, int], now: int) -> list[Cid]:
    """Write the staged rows of one request in ``conn``'s transaction; the CIDs of the
    envelopes they replace (the patient's own earlier staging of the same ids). An id that is
    a record, or staged by someone else, is a ``ConflictError``."""
    replaced: list[Cid] = []
    ids = [bytes(s.record_id) for s in staged]
    for part in _chunks(ids):
        taken = conn.execute(select(records_table.c.record_id).where(
            records_table.c.record_id.in_(part))).scalars().first()
        if taken is not None:
            raise ConflictError(f"envelopes[{positions[bytes(taken)]}]: record "
                                f"0x{bytes(taken).hex()} is registered already")
        for row in conn.execute(select(staged_envelopes.c.record_id,
                                       staged_envelopes.c.patient,
                                       staged_envelopes.c.cid).where(
                staged_envelopes.c.record_id.in_(part))).all():
            if row.patient != owner:
                raise ConflictError(f"envelopes[{positions[bytes(row.record_id)]}]: "
                                    f"record id 0x{bytes(row.record_id).hex()} is "
                                    "staged by someone else")
            replaced.append(Cid(row.cid))
        conn.execute(delete(staged_envelopes).where(
            staged_envelopes.c.record_id.in_(part)))
    conn.execute(staged_envelopes.insert(), [
        {"record_id": bytes(s.record_id), "patient": owner, "scope_id": bytes(s.scope_id),
         "cid": cid, "commitment": bytes(s.intake.commitment), "size": s.intake.size,
         "content_type": _content_type(s.intake), "epoch": s.epoch, "staged_at": now}
        for s, cid in zip(staged, cids, strict=True)])
    return replaced


def _content_type(intake: EnvelopeIntake) -> str:
    assert intake.header is not None  # the intake checked the preamble
    return intake.header.content_type


def _chunks(values: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


def staged_ids(ctx: ServiceContext, *, patient: str) -> set[RecordId]:
    """The record ids ``patient`` has staged and not registered (a resumed import skips
    them)."""
    owner = checked_address("patient", patient)
    with ctx.db.read() as conn:
        return {RecordId(bytes(r)) for r in conn.execute(select(
            staged_envelopes.c.record_id).where(staged_envelopes.c.patient == owner)).scalars()}


# --- registration --------------------------------------------------------------------------


def prepare_batch_registration(ctx: ServiceContext, *, patient: str, root: bytes, count: int,
                               deadline: int) -> PreparedAction:
    """For a wallet: the ``registerBatch`` transaction and the ``RegisterBatch`` typed data
    (gasless, nonce read from the chain). The client built the manifest and its root."""
    owner = checked_address("patient", patient)
    batch_root = checked_bytes32("root", root)
    ledger = ctx.chain.ledger
    call = ledger.register_batch_call(batch_root, count, sender=owner)
    typed = ledger.register_batch_typed_data(patient=owner, root=batch_root, count=count,
                                             deadline=deadline)
    return prepare(ctx.chain, call, sender=owner, typed=typed)


def register_batch(ctx: ServiceContext, *, patient: str, manifest: BatchManifest | bytes,
                   registration: SignedAction | SentTransaction,
                   relayer: Relayer | None = None) -> BatchInfo:
    """Register the staged envelopes ``manifest`` names as one batch of ``patient``'s (see the
    module docstring). ``registration``: the patient's signed ``RegisterBatch`` (relayed; it
    must name this patient, root and count) or the hash of the ``registerBatch`` transaction
    their wallet sent. Raises ``InputError`` naming ``manifest`` / ``leaves[i]...`` /
    ``signature`` / ``txHash``, ``ConflictError`` for a leaf that is a record already or a root
    registered to someone else, ``QuotaExceeded`` for the relayer's budget, ``NodeUnreachable``
    / ``StoreUnavailable`` when a dependency is down (the envelopes stay staged: retry)."""
    owner = checked_address("patient", patient)
    batch = (manifest if isinstance(manifest, BatchManifest)
             else BatchManifest.decode(bytes(manifest)))
    root = batch.root
    done = _batch_row(ctx, root)
    if done is not None:  # registered through this service already: the same answer again
        if done[0] != owner:
            raise ConflictError(f"batch 0x{root.hex()} is another patient's")
        return _found_info(ctx, owner, root, int(done[1]), int(done[2]))
    if isinstance(registration, SignedAction):
        _check_signed_batch(registration, owner, root, batch.count)
    elif not isinstance(registration, SentTransaction):
        raise TypeError(f"registration must be a SignedAction or SentTransaction, "
                        f"not {type(registration).__name__}")
    rows = _staged_leaves(ctx, owner, batch)
    info = _onchain(ctx, relayer, owner, batch, registration)
    manifest_cid = ctx.store.put(batch.encode(), pin=True)
    now = int(time.time())
    new_rows = [{"record_id": bytes(leaf.record_id), "patient": owner,
                 "scope_id": bytes(leaf.scope_id), "cid": row["cid"],
                 "commitment": bytes(leaf.commitment), "size": row["size"],
                 "content_type": row["content_type"], "created_at": now, "epoch": row["epoch"],
                 "batch_root": root, "leaf_index": index,
                 "proof": pack_proof(batch.proof(index))}
                for index, (leaf, row) in enumerate(zip(batch.leaves, rows, strict=True))]
    try:
        with ctx.db.write() as conn:
            conn.execute(records_table.insert(), new_rows)
            conn.execute(record_batches.insert().values(
                root=root, patient=owner, count=batch.count, manifest_cid=manifest_cid,
                block_number=info.block_number, created_at=now))
            moved = 0
            for part in _chunks([bytes(leaf.record_id) for leaf in batch.leaves]):
                moved += conn.execute(delete(staged_envelopes).where(
                    staged_envelopes.c.record_id.in_(part),
                    staged_envelopes.c.patient == owner)).rowcount
            if moved != batch.count:
                # The sweep took some at their TTL while the chain confirmed: their blobs may
                # be unpinned; pin them again (ContentNotFound, all rolled back, if collected).
                ctx.store.pin_many([str(row["cid"]) for row in new_rows])
    except SqlIntegrityError:
        # A concurrent request finished this very batch first: its rows are the answer.
        if _batch_row(ctx, root) is None:
            raise ConflictError(f"a record of batch 0x{root.hex()} is registered already "
                                "by another request") from None
    _tell_index(ctx, root)
    return info


def _batch_row(ctx: ServiceContext, root: bytes) -> Any:
    with ctx.db.read() as conn:
        return conn.execute(select(record_batches.c.patient, record_batches.c.count,
                                   record_batches.c.block_number).where(
            record_batches.c.root == root)).first()


def _staged_leaves(ctx: ServiceContext, owner: Address,
                   batch: BatchManifest) -> list[dict[str, Any]]:
    """The staged row of every leaf, in order; each leaf must be an envelope ``owner`` staged
    with the leaf's scope and commitment, encrypted to the scope's current key epoch."""
    ids = [bytes(leaf.record_id) for leaf in batch.leaves]
    found: dict[bytes, dict[str, Any]] = {}
    with ctx.db.read() as conn:
        for part in _chunks(ids):
            taken = conn.execute(select(records_table.c.record_id).where(
                records_table.c.record_id.in_(part))).scalars().first()
            if taken is not None:
                raise ConflictError(f"leaves[{batch.index_of(bytes(taken))}]: record "
                                    f"0x{bytes(taken).hex()} is registered already")
            for staged in conn.execute(select(staged_envelopes).where(
                    staged_envelopes.c.record_id.in_(part),
                    staged_envelopes.c.patient == owner)).mappings():
                found[bytes(staged["record_id"])] = dict(staged)
    epochs: dict[bytes, int] = {}
    rows = []
    for index, leaf in enumerate(batch.leaves):
        row = found.get(bytes(leaf.record_id))
        where = f"leaves[{index}]"
        if row is None:
            raise InputError(f"{where}.record_id", f"0x{leaf.record_id.hex()} is not an "
                             "envelope you staged (or it expired): stage it first")
        if bytes(row["scope_id"]) != bytes(leaf.scope_id):
            raise InputError(f"{where}.scope_id", "is not the scope the envelope was staged "
                             f"with (0x{bytes(row['scope_id']).hex()})")
        if bytes(row["commitment"]) != bytes(leaf.commitment):
            raise InputError(f"{where}.commitment", "is not the staged envelope's commitment "
                             f"(0x{bytes(row['commitment']).hex()})")
        sid = bytes(leaf.scope_id)
        if sid not in epochs:
            epochs[sid] = ctx.index.scope_epoch(owner, ScopeId(sid))
        if int(row["epoch"]) != epochs[sid]:
            raise ConflictError(f"{where}: the envelope is encrypted to key epoch "
                                f"{row['epoch']} but the scope is in epoch {epochs[sid]} now "
                                "(a revocation moved it): re-encrypt and stage it again")
        rows.append(row)
    return rows


def _check_signed_batch(action: SignedAction, owner: Address, root: bytes, count: int) -> None:
    if action.kind != "RegisterBatch":
        raise InputError("signature", f"a {action.kind} signature cannot register a batch")
    if signed_field(action, "patient", "address") != owner:
        raise InputError("signature", f"signed for patient {action.patient}, not {owner}")
    if signed_field(action, "root", "bytes32") != root:
        raise InputError("signature", "signed for another batch root than the manifest's "
                                      f"(0x{root.hex()})")
    if signed_field(action, "count", "uint") != count:
        raise InputError("signature", f"signed for another record count than the manifest's "
                                      f"({count})")
    signed_field(action, "deadline", "uint")


def _onchain(ctx: ServiceContext, relayer: Relayer | None, owner: Address,
             batch: BatchManifest, registration: SignedAction | SentTransaction) -> BatchInfo:
    """The batch registered on chain for ``owner``: by this call, or by an earlier attempt
    whose answer was lost (then no second transaction is sent)."""
    root = batch.root
    if isinstance(registration, SignedAction):
        if _on_chain_already(ctx, owner, batch):
            return _found_info(ctx, owner, root, batch.count, None)
        if relayer is not None:
            relayer.require_budget(owner)
    try:
        receipt = submit(ctx.chain, relayer, registration)
    except RelayRefused:
        if _on_chain_already(ctx, owner, batch):  # registered between our check and now
            return _found_info(ctx, owner, root, batch.count, None)
        raise
    require_event(ctx.chain, receipt, "RecordBatchRegistered", expected={
        "patient": owner, "root": root, "count": batch.count})
    return BatchInfo(root=root, count=batch.count, block_number=receipt.block_number,
                     tx_hash=bytes(receipt.tx_hash))


def _on_chain_already(ctx: ServiceContext, owner: Address, batch: BatchManifest) -> bool:
    status = ctx.chain.ledger.batch_of(batch.root)
    if status is None:
        return False
    if status.patient != owner:
        raise ConflictError(f"batch 0x{batch.root.hex()} is registered to another patient")
    if status.count != batch.count:
        raise ConflictError(f"batch 0x{batch.root.hex()} is registered with {status.count} "
                            f"records, the manifest has {batch.count}")
    return True


def _found_info(ctx: ServiceContext, owner: Address, root: bytes, count: int,
                block: int | None) -> BatchInfo:
    """The block and transaction of ``owner``'s ``RecordBatchRegistered`` for ``root``, read
    from the node (one ``eth_getLogs`` on the indexed patient and root)."""
    chain = ctx.chain
    query = {"address": chain.deployment.consent_ledger,
             "topics": [HexBytes(RECORD_BATCH_REGISTERED).to_0x_hex(),
                        HexBytes(bytes(12) + bytes.fromhex(owner[2:])).to_0x_hex(),
                        HexBytes(root).to_0x_hex()],
             "fromBlock": hex(block if block is not None else chain.deployment.deploy_block),
             "toBlock": hex(block) if block is not None else "latest"}
    with node_errors(chain.decoder):
        answer = chain.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [query])
    if "error" in answer:
        raise NodeUnreachable(f"the node refused eth_getLogs: {answer['error']}")
    if not answer["result"]:
        raise NotFoundError(f"no RecordBatchRegistered of {owner} for 0x{root.hex()}")
    found = answer["result"][-1]
    return BatchInfo(root=bytes(root), count=count, block_number=int(found["blockNumber"], 16),
                     tx_hash=bytes.fromhex(found["transactionHash"][2:]))


def _tell_index(ctx: ServiceContext, root: bytes) -> None:
    """Let the event index project the batch's records now (its manifest is stored), so they
    are in ``records_of`` and the reads built on it at once, not after the next sync."""
    try:
        ctx.index.head()  # a sync: the batch's event, seen now, is projected with its manifest
        ctx.index.manifest_arrived(root)  # a batch the index saw earlier, pending till now
    except KizunaError as exc:  # the rows are written; the index catches up on its next pass
        log.warning("the index could not project batch 0x%s yet: %s", root.hex(), exc)


def batch_manifest(ctx: ServiceContext, *, root: bytes) -> tuple[Address, bytes]:
    """The patient and the manifest bytes of a batch registered here (``NotFoundError`` for a
    root this service has no batch for); who may have them is the caller's decision."""
    batch_root = checked_bytes32("root", root)
    with ctx.db.read() as conn:
        row = conn.execute(select(record_batches.c.patient, record_batches.c.manifest_cid).where(
            record_batches.c.root == batch_root)).first()
    if row is None:
        raise NotFoundError(f"no batch 0x{batch_root.hex()} is registered here")
    with ctx.store.get(row.manifest_cid) as stream:
        return Address(row.patient), stream.read()


# --- the sweep of stale staged envelopes -----------------------------------------------------


def sweep_staged(ctx: ServiceContext, *, ttl_s: float, now: float | None = None) -> int:
    """Delete staged envelopes older than ``ttl_s`` and unpin their blobs (unless a record or
    a newer staged row uses the same blob); how many were deleted."""
    cutoff = int((time.time() if now is None else now) - ttl_s)
    with ctx.db.write() as conn:
        stale = conn.execute(select(staged_envelopes.c.record_id, staged_envelopes.c.cid).where(
            staged_envelopes.c.staged_at < cutoff)).all()
        for part in _chunks([bytes(r.record_id) for r in stale]):
            conn.execute(delete(staged_envelopes).where(
                staged_envelopes.c.record_id.in_(part)))
    release_blobs(ctx, [Cid(r.cid) for r in stale])
    if stale:
        log.info("staged envelopes: %d older than %.0f s deleted", len(stale), ttl_s)
    return len(stale)


class StagedSweeper(Sweep):
    """:func:`sweep_staged` every ``interval_s`` seconds on a background thread."""

    def __init__(self, ctx: ServiceContext, *, ttl_s: float, interval_s: float) -> None:
        super().__init__(lambda: sweep_staged(ctx, ttl_s=ttl_s), name="kizuna-staged-sweep",
                         interval_s=interval_s)


__all__ = [
    "DEFAULT_STAGED_TTL_S",
    "MAX_STAGED_PER_REQUEST",
    "StagedSweeper",
    "batch_manifest",
    "parse_frames",
    "prepare_batch_registration",
    "register_batch",
    "stage_envelopes",
    "staged_ids",
    "sweep_staged",
]
