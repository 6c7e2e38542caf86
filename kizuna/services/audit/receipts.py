"""Check 1: every read receipt is under a root anchored in ``AccessLog``, intact, and signed
by its provider."""

from __future__ import annotations

import base64
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select, text

from kizuna.db import schema
from kizuna.errors import InputError
from kizuna.merkle import MerkleTree, keccak
from kizuna.merkle import verify as verify_proof
from kizuna.receipts.request import (
    NODE_READ_RECEIPT_TYPEHASH,
    READ_RECEIPT_TYPEHASH,
    READ_REQUEST_TYPEHASH,
    proxy_domain,
)
from kizuna.services.audit.history import ChainHistory
from kizuna.services.audit.report import CheckReport, Finding, hex_of
from kizuna.services.audit.stored import ReceiptRow, gc_paused, load_receipts
from kizuna.signatures import SignerCheck, UnrecoverableSignature

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.index.events import DecodedEvent
    from kizuna.db import Database


def _word(address_hex: str) -> bytes:
    return bytes(12) + bytes.fromhex(address_hex[2:])


class _Signatures:
    """Checks that EIP-712 digests are signed by given addresses, fast: the rule and the
    cached-key fast path are :class:`kizuna.signatures.SignerCheck`'s; this turns its
    answers into finding text."""

    def __init__(self) -> None:
        self._check = SignerCheck()

    def problem(self, signature: bytes, digest: bytes, address: str) -> str | None:
        expected = bytes.fromhex(address[2:])
        try:
            signer = self._check.signer(digest, signature, expected)
        except UnrecoverableSignature:
            return "the signature recovers to no key"
        except InputError as error:
            return f"malformed signature ({error.reason})"
        if signer != expected:
            return (f"signed by {to_checksum_address(signer)}, not by the provider "
                    f"{to_checksum_address(address)}")
        return None


class _FastReceipts:
    """Leaf, EIP-712 digest and signer of a receipt with fixed layouts (see the module doc)."""

    def __init__(self, chain_id: int, access_log: str, node: str | None = None) -> None:
        self.separator = proxy_domain(chain_id=chain_id,
                                      access_log=to_checksum_address(access_log)).separator()
        self.signatures = _Signatures()
        # A proxy node's receipts name it (kizuna.receipts.request.receipt_encoding).
        self.typehash = READ_RECEIPT_TYPEHASH if node is None else NODE_READ_RECEIPT_TYPEHASH
        self.tail = b"" if node is None else _word(node)

    def check(self, receipt: ReceiptRow) -> tuple[bytes | None, str | None, str | None]:
        """(recomputed leaf, field problem, signature problem) of one receipt."""
        m = receipt.signed
        if m is None:
            return None, "the signed request JSON is unreadable or malformed", None
        problems = []
        if m.provider.lower() != receipt.provider.lower():
            problems.append(f"provider column {receipt.provider} ≠ signed {m.provider}")
        if m.patient.lower() != receipt.patient.lower():
            problems.append(f"patient column {receipt.patient} ≠ signed {m.patient}")
        if m.record_id != receipt.record_id:
            problems.append("record_id column differs from the signed recordId")
        if m.request_id != receipt.request_id:
            problems.append("request_id column differs from the signed requestId")
        signature = receipt.signature
        head = _word(m.provider) + _word(m.patient) + m.record_id + m.request_id \
            + m.issued_at.to_bytes(32, "big")
        leaf = keccak(keccak(
            self.typehash + head + keccak(signature)
            + receipt.served_at.to_bytes(32, "big") + receipt.head_block.to_bytes(32, "big")
            + self.tail))
        digest = keccak(b"\x19\x01" + self.separator + keccak(READ_REQUEST_TYPEHASH + head))
        return (leaf, "; ".join(problems) or None,
                self.signatures.problem(signature, digest, m.provider.lower()))


def verify_receipts(chain: Chain, database: Database, history: ChainHistory, *,
                    onchain_sample: int = 8, all_proofs: bool = True,
                    receipts: Sequence[ReceiptRow] | None = None,
                    seed: int | None = None, anchorer: str | None = None,
                    node: str | None = None) -> CheckReport:
    """Check 1: every receipt is under an anchored root, intact, and signed by its provider.
    ``node``: the database is that threshold proxy node's, whose receipts name it (a receipt
    naming another node, or none, does not rebuild its leaf).

    Only the roots anchored by this database's anchorer count (the service and each threshold
    proxy node anchor their own receipts with their own key, docs/proxies.md): ``anchorer``
    names it; ``None`` takes the anchorers of the roots this database's receipts and batch
    records claim (so a proxy node's batches are never the service's missing ones).

    ``onchain_sample`` random receipts of the batches that passed are also proven through
    ``AccessLog.verifyReceipt`` (one ``eth_call`` each). ``all_proofs=False`` skips the
    per-receipt Python proofs: the root rebuilt from every recomputed leaf and equal to the
    anchored one already covers each leaf (the benchmark reports both).
    """
    with gc_paused():
        return _verify_receipts(chain, database, history, onchain_sample=onchain_sample,
                                all_proofs=all_proofs, receipts=receipts, seed=seed,
                                anchorer=anchorer, node=node)


class _Run:
    """What one run of check 1 found so far: the findings, the receipts that failed, the
    recomputed leaves and the counters of the report."""

    def __init__(self) -> None:
        self.failures: list[Finding] = []
        self.bad: set[int] = set()
        self.leaves: dict[int, bytes] = {}
        self.proofs_checked = self.late = self.batch_of_checked = 0

    def fail(self, check: str, subject: bytes, reason: str, seq: int | None = None) -> None:
        self.failures.append(Finding(check, hex_of(subject), reason))
        if seq is not None:
            self.bad.add(seq)


_Anchored = tuple[bytes, MerkleTree, list[ReceiptRow]]


def _verify_receipts(chain: Chain, database: Database, history: ChainHistory, *,
                     onchain_sample: int, all_proofs: bool,
                     receipts: Sequence[ReceiptRow] | None,
                     seed: int | None, anchorer: str | None,
                     node: str | None = None) -> CheckReport:
    rows = list(receipts) if receipts is not None else load_receipts(database)
    run = _Run()
    _check_rows(run, rows, _FastReceipts(chain.chain_id,
                                         chain.deployment.addresses["AccessLog"], node))
    batches: dict[bytes, list[ReceiptRow]] = defaultdict(list)
    unanchored: list[ReceiptRow] = []
    for r in rows:
        if r.batch_root is None:
            unanchored.append(r)
        else:
            batches[r.batch_root].append(r)
    anchors = _own_anchors(history, database, set(batches), anchorer)
    anchored_ok: list[_Anchored] = []
    for root, members in batches.items():
        tree = _check_batch(run, chain, anchors, root, members, all_proofs=all_proofs)
        if tree is not None:
            anchored_ok.append((root, tree, members))
    _check_missing_batches(run, anchors, set(batches))
    _check_recorded_anchors(run, database, anchors)
    pending = _check_unanchored(run, anchors, batches, unanchored)
    sampled = _check_onchain_sample(run, chain, anchored_ok, onchain_sample, seed)
    checked = len(rows)
    return CheckReport(
        name="receipts", checked=checked, passed=checked - len(run.bad) - pending,
        failures=tuple(run.failures),
        counts={"batches": len(batches), "anchored_batches": len(anchors),
                "pending": pending, "late": run.late, "proofs_checked": run.proofs_checked,
                "onchain_proofs_checked": sampled, "batch_of_checked": run.batch_of_checked},
    )


def _recorded_batches(database: Database) -> list[tuple[bytes, bytes | None]]:
    """(root, anchoring tx or None) of each batch the database records."""
    with database.read() as connection:
        recorded = connection.execute(select(schema.receipt_batches.c.root,
                                             schema.receipt_batches.c.tx_hash)).all()
    return [(bytes(root), bytes(tx) if tx is not None else None) for root, tx in recorded]


def _own_anchors(history: ChainHistory, database: Database, claimed: set[bytes],
                 anchorer: str | None) -> dict[bytes, DecodedEvent]:
    """The anchors of this database (see :func:`verify_receipts`): every root it claims,
    whoever anchored it, and every root its anchorer anchored. A root claimed but anchored by
    another anchorer commits the very same receipts (the rebuilt leaves are checked against
    it), so it counts whoever anchored it. (Two proxy nodes no longer make the same root: a
    node's receipt names the node.)"""
    roots = claimed | {root for root, _ in _recorded_batches(database)}
    if anchorer is not None:
        mine = {anchorer.lower()}
    else:
        mine = {str(history.anchors[r].args["anchoredBy"]).lower() for r in roots
                if r in history.anchors}
    return {root: e for root, e in history.anchors.items()
            if root in roots or str(e.args["anchoredBy"]).lower() in mine}


def _check_rows(run: _Run, rows: Sequence[ReceiptRow], fast: _FastReceipts) -> None:
    """Each receipt alone: readable, its columns the signed fields, signed by its provider,
    its stored leaf the hash of its fields."""
    for r in rows:
        leaf, field_problem, signature_problem = fast.check(r)
        if leaf is None:
            run.fail("receipt.request", r.request_id, field_problem or "unreadable", r.seq)
            continue
        run.leaves[r.seq] = leaf
        if field_problem:
            run.fail("receipt.fields", r.request_id, field_problem, r.seq)
        if signature_problem:
            run.fail("receipt.signature", r.request_id, signature_problem, r.seq)
        if leaf != r.leaf:
            run.fail("receipt.leaf", r.request_id, "the stored leaf is not the hash of the "
                     "stored receipt fields (receipt altered)", r.seq)


def _check_batch(run: _Run, chain: Chain, anchors: Mapping[bytes, DecodedEvent], root: bytes,
                 members: list[ReceiptRow], *, all_proofs: bool) -> MerkleTree | None:
    """One batch against its anchor: the contract's record, indices, count, the rebuilt
    root, the time range and (``all_proofs``) every proof. The tree when the root holds."""
    members.sort(key=lambda x: (x.leaf_index if x.leaf_index is not None else -1, x.seq))
    anchor = anchors.get(root)
    if anchor is None:
        run.bad.update(r.seq for r in members)
        run.fail("batch.not_anchored", root, f"no ReceiptRootAnchored event for this root "
                 f"by this database's anchorer "
                 f"({len(members)} receipts claim it)")
        return None
    a = anchor.args
    _check_batch_record(run, chain, root, a)
    _check_batch_members(run, root, a, members)
    built = [run.leaves.get(r.seq) for r in members]
    if any(x is None for x in built):
        run.fail("batch.root", root, "a receipt of the batch cannot be rebuilt")
        run.bad.update(r.seq for r in members)
        return None
    tree = MerkleTree.build([x for x in built if x is not None])
    if tree.root != root:
        run.fail("batch.root", root, "the Merkle root rebuilt from the receipts is not the "
                 "anchored root (a receipt was dropped, added or altered)")
        run.bad.update(r.seq for r in members)
        return None
    times = [r.served_at for r in members]
    if max(times) > int(a["toTime"]):
        run.fail("batch.time_range", root, f"receipts served until {max(times)}, after the "
                 f"anchored range's end {a['toTime']}")
        run.bad.update(r.seq for r in members)
    # A receipt committed late (another instance's clock, a slow commit) lands in a batch
    # whose fromTime was raised to the previous batch's end (kizuna.receipts.batching):
    # its servedAt is covered by the root, so it is reported as late, not as a failure.
    run.late += sum(1 for t in times if t < int(a["fromTime"]))
    if all_proofs:
        for position, r in enumerate(members):
            run.proofs_checked += 1
            if not verify_proof(tree.proof(position), root, tree.levels[0][position]):
                run.fail("receipt.proof", r.request_id, "the Merkle proof does not verify",
                         r.seq)
    return tree


def _check_batch_record(run: _Run, chain: Chain, root: bytes, a: Mapping[str, Any]) -> None:
    # The contract's own record (one eth_call per batch): the events came through a cache
    # or a node's log index; batchOf is the storage the contract checks proofs against.
    stored = chain.access_log.batch_of(root)
    run.batch_of_checked += 1
    if stored is None or (stored.count, stored.from_time, stored.to_time) != (
            int(a["count"]), int(a["fromTime"]), int(a["toTime"])):
        run.fail("batch.batch_of", root, f"AccessLog.batchOf answers {stored} but the event "
                 f"says count {a['count']}, {a['fromTime']}..{a['toTime']}")


def _check_batch_members(run: _Run, root: bytes, a: Mapping[str, Any],
                         members: list[ReceiptRow]) -> None:
    """Leaf indices 0..n-1 and the anchored count: receipts dropped or added."""
    indices = [r.leaf_index for r in members]
    if indices != list(range(len(members))):
        missing = sorted(set(range(int(a["count"]))) - {i for i in indices if i is not None})
        dupes = sorted({i for i in indices if i is not None and indices.count(i) > 1})
        run.fail("batch.leaf_index", root, f"leaf indices are not 0..{len(members) - 1}: "
                 f"missing {missing[:10]} (receipts dropped?), repeated {dupes[:10]} "
                 "(receipts added?)")
    if int(a["count"]) != len(members):
        what = "dropped" if len(members) < int(a["count"]) else "added"
        run.fail("batch.count", root, f"anchored count {a['count']} but {len(members)} "
                 f"receipts in the database (receipts {what})")


def _check_missing_batches(run: _Run, anchors: Mapping[bytes, DecodedEvent],
                           claimed: set[bytes]) -> None:
    for root, anchor in anchors.items():
        if root not in claimed:
            run.fail("batch.missing", root, f"anchored on-chain (batch "
                     f"{anchor.args['batchIndex']}, {anchor.args['count']} receipts) but no "
                     "receipt in the database claims it (receipts dropped)")


def _check_recorded_anchors(run: _Run, database: Database,
                            anchors: Mapping[bytes, DecodedEvent]) -> None:
    """The service's own record of where it anchored each batch must be the chain's."""
    for root, tx in _recorded_batches(database):
        if tx is None or tx == bytes(32):  # pending, or anchored with the tx not found
            continue
        anchor = anchors.get(root)
        if anchor is None:
            run.fail("batch.db_record", root, f"the service records it anchored by "
                     f"{hex_of(tx)}, but the chain has no such anchor")
        elif anchor.tx_hash != tx:
            run.fail("batch.db_record", root, f"the service records it anchored by "
                     f"{hex_of(tx)}, the chain by {hex_of(anchor.tx_hash)}")


def _check_unanchored(run: _Run, anchors: Mapping[bytes, DecodedEvent],
                      batches: Mapping[bytes, list[ReceiptRow]],
                      unanchored: list[ReceiptRow]) -> int:
    """Receipts in no batch: pending when newer than everything anchored, else a finding.
    The number pending."""
    last_anchored_seq = max((r.seq for m in batches.values() for r in m), default=0)
    last_to_time = max((int(e.args["toTime"]) for e in anchors.values()), default=0)
    pending = 0
    for r in unanchored:
        if r.seq > last_anchored_seq and r.served_at >= last_to_time:
            pending += 1
        else:
            run.fail("receipt.unanchored", r.request_id, f"not in any batch although served "
                     f"at {r.served_at}, before receipts that are anchored (added or withheld)",
                     r.seq)
    return pending


def _check_onchain_sample(run: _Run, chain: Chain, anchored_ok: list[_Anchored],
                          onchain_sample: int, seed: int | None) -> int:
    """``onchain_sample`` random receipts of the good batches proven by
    ``AccessLog.verifyReceipt``. The number asked."""
    if not onchain_sample or not anchored_ok:
        return 0
    sampled = 0
    rng = random.Random(seed)
    flat = [(root, tree, i) for root, tree, members in anchored_ok for i in range(len(members))]
    for root, tree, position in rng.sample(flat, min(onchain_sample, len(flat))):
        sampled += 1
        member = next(m for rt, _, m in anchored_ok if rt == root)[position]
        if not chain.access_log.verify_receipt(root, tree.levels[0][position],
                                               tree.proof(position)):
            run.fail("receipt.onchain_proof", member.request_id,
                     "AccessLog.verifyReceipt answered false", member.seq)
    return sampled


# --- the receipts with their proofs, page by page (GET /auditor/receipts) ----------------------

RECEIPT_PAGE_DEFAULT = 500
RECEIPT_PAGE_MAX = 2000
"""Receipts a page: a page's proofs need each of its batches' leaves, so a page stays small."""

_CURSOR = re.compile(r"seq:(0|[1-9][0-9]{0,18})")


@dataclass(frozen=True, slots=True)
class ProvenReceipt:
    """A stored receipt and its Merkle proof up to its batch's root (empty: pending, or its
    batch's leaf indices are not 0..n-1 — nothing to prove against; the checks report it)."""

    row: ReceiptRow
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ReceiptPage:
    receipts: tuple[ProvenReceipt, ...]
    next_cursor: str | None
    """Where the next page starts; ``None`` on the last page."""


def receipt_cursor(seq: int) -> str:
    """The opaque cursor of the page after the receipt ``seq``."""
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    """The ``seq`` a cursor made by :func:`receipt_cursor` continues after."""
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    found = _CURSOR.fullmatch(decoded)
    if found is None or receipt_cursor(int(found.group(1))) != cursor:
        raise InputError("cursor", "not a cursor of this list: pass the previous page's "
                         "next_cursor as it is, or none for the first page")
    return int(found.group(1))


def receipts_page(database: Database, *, cursor: str | None = None,
                  limit: int = RECEIPT_PAGE_DEFAULT) -> ReceiptPage:
    """One page of the stored receipts in ``seq`` order (a stable order: receipts stored
    later come on later pages), each with its proof built from its batch's stored leaves.
    ``cursor``: the previous page's ``next_cursor`` (``None``: the first page)."""
    if not 1 <= limit <= RECEIPT_PAGE_MAX:
        raise InputError("limit", f"must be 1 to {RECEIPT_PAGE_MAX}")
    after = _after(cursor) if cursor is not None else 0
    rows = load_receipts(database, after=after, limit=limit + 1)  # one more: is there a next?
    more = len(rows) > limit
    rows = rows[:limit]
    proofs: dict[int, tuple[bytes, ...]] = {}
    wanted = {r.seq for r in rows}
    for root in {r.batch_root for r in rows if r.batch_root is not None}:
        proofs.update(_batch_proofs(database, root, wanted))
    return ReceiptPage(
        receipts=tuple(ProvenReceipt(r, proofs.get(r.seq, ())) for r in rows),
        next_cursor=receipt_cursor(rows[-1].seq) if more else None)


def _batch_proofs(database: Database, root: bytes,
                  wanted: set[int]) -> dict[int, tuple[bytes, ...]]:
    """The proofs of the ``wanted`` receipts in the batch of ``root``, by seq, from the batch's
    stored leaves (none when the leaf indices are not 0..n-1: no tree to prove against)."""
    with database.read() as connection:
        members = connection.execute(text(
            "SELECT seq, leaf, leaf_index FROM receipts WHERE batch_root = :root"),
            {"root": root}).fetchall()
    members = sorted(members, key=lambda m: m[2] if m[2] is not None else -1)
    if [m[2] for m in members] != list(range(len(members))):
        return {}
    tree = MerkleTree.build([bytes(m[1]) for m in members])
    return {int(m[0]): tuple(tree.proof(position)) for position, m in enumerate(members)
            if int(m[0]) in wanted}
