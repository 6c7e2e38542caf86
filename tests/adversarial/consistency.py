"""Is the service's state whole? A checker for after an attack, a soak or a crash.

:func:`check_consistency` reads the database and the embedded store a service wrote (and the
chain it served) and lists every half-written or stale piece of state it finds — what no
sequence of requests, however hostile, may leave behind:

* records: every row's CID is in the store, pinned, and its bytes are the envelope the row
  describes (size, SHA-256 commitment); the record is registered on chain to the same patient;
* care messages: every row's CID is in the store and pinned;
* pins: every pinned root is the CID of a record or message row (an upload whose chain step
  failed unpins what it stored; a pin nothing names is an upload half-done);
* the store holds no staging directory (a put or CAR import that never finished);
* key fragments: each (patient, scope, provider) holding fragments has a live grant on chain,
  or the provider holds an open emergency access to that patient; the fragments were made
  under a delegating key the patient stated for that scope;
* sessions: each one expires, no later than one session lifetime from now;
* SIWE nonces: none used before it was issued;
* receipts: the stored JSON is the request the columns say, the leaf is that request's leaf,
  a batched receipt names an existing batch, the record read exists and is the patient's;
* receipt batches: the count is the number of receipts assigned, their leaf indexes are
  0..count-1, the leaves hash to the root, the anchoring columns are all set or all unset.

Blocks that no pinned root reaches are garbage, not damage (a refused upload's blocks until
the next store GC): they are counted (``garbage_blocks``), not listed as problems.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from kizuna.chain.connection import Chain
from kizuna.config import Settings
from kizuna.crypto.commitment import commitment_of
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.merkle import MerkleTree
from kizuna.receipts.request import ReadRequest, receipt_leaf
from kizuna.storage.cid import DAG_PB, parse_cid
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.unixfs import decode_node, verified_block
from kizuna.types import RecordId, ScopeId


@dataclass
class Consistency:
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        figures = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self.ok:
            return f"consistent ({figures})"
        return f"{len(self.problems)} problem(s) ({figures}):\n  " + "\n  ".join(self.problems)


def check_consistency(settings: Settings, chain: Chain, *, now: int | None = None) -> Consistency:
    """Check the database and embedded store ``settings`` name against ``chain`` (see the
    module docstring). Read-only; safe while the service runs, meaningful when it is quiet."""
    assert settings.store == "embedded", "the checker reads the embedded store's directory"
    found = Consistency()
    db = Database(settings.database_url)
    store = EmbeddedStore(settings.store_path)
    try:
        with db.read() as conn:
            _records(conn, store, chain, found)
            _pins(conn, store, found)
            _kfrags(conn, chain, found)
            _sessions(conn, settings, int(time.time()) if now is None else now, found)
            _nonces(conn, found)
            _receipts(conn, found)
    finally:
        db.dispose()
    _store_leftovers(store, found)
    return found


def _hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _records(conn: Any, store: EmbeddedStore, chain: Chain, found: Consistency) -> None:
    pins = set(store.pins())
    rows = conn.execute(select(t.records.c.record_id, t.records.c.patient, t.records.c.cid,
                               t.records.c.commitment, t.records.c.size)).all()
    found.counts["records"] = len(rows)
    for record_id, patient, cid, commitment, size in rows:
        name = f"record {_hx(record_id)}"
        if not store.has(cid):
            found.problems.append(f"{name}: its CID {cid} is not in the store")
            continue
        if cid not in pins:
            found.problems.append(f"{name}: its CID {cid} is not pinned (the next GC deletes it)")
        envelope = store.get(cid).read()
        if len(envelope) != size or commitment_of(envelope) != bytes(commitment):
            found.problems.append(f"{name}: the stored envelope ({len(envelope)} bytes) is not "
                                  f"the one the row describes ({size} bytes, commitment "
                                  f"{_hx(commitment)})")
        status = chain.ledger.record_of(RecordId(bytes(record_id)))
        if status is None or status.patient != patient:
            found.problems.append(f"{name}: not registered on chain to {patient} "
                                  f"(chain: {status})")
    messages = conn.execute(select(t.care_messages.c.ref, t.care_messages.c.cid)).all()
    found.counts["care_messages"] = len(messages)
    for ref, cid in messages:
        if not store.has(cid) or cid not in pins:
            found.problems.append(f"care message {_hx(ref)}: its CID {cid} is not "
                                  "in the store or not pinned")


def _pins(conn: Any, store: EmbeddedStore, found: Consistency) -> None:
    named = {str(r[0]) for r in conn.execute(select(t.records.c.cid))}
    named |= {str(r[0]) for r in conn.execute(select(t.care_messages.c.cid))}
    pins = store.pins()
    found.counts["pins"] = len(pins)
    for cid in pins:
        if cid not in named:
            found.problems.append(f"pinned content {cid} belongs to no record or message "
                                  "(an upload left half-done)")
    live: set[str] = set()
    stack = [parse_cid(cid).to_v1() for cid in pins]
    while stack:
        cid = stack.pop()
        if cid.text() in live:
            continue
        live.add(cid.text())
        if cid.codec == DAG_PB and store.has(cid.text()):
            node = decode_node(verified_block(cid, store._load(cid)))
            stack.extend(link.cid.to_v1() for link in node.links)
    blocks = [b.name for shard in (store.root / "blocks").iterdir() for b in shard.iterdir()]
    found.counts["blocks"] = len(blocks)
    found.counts["garbage_blocks"] = sum(1 for b in blocks if b not in live)


def _store_leftovers(store: EmbeddedStore, found: Consistency) -> None:
    staging = sorted(p.name for p in (store.root / "tmp").iterdir())
    if staging:
        found.problems.append(f"the store holds unfinished puts: {staging[:5]}")


def _kfrags(conn: Any, chain: Chain, found: Consistency) -> None:
    stated: dict[tuple[str, bytes], set[bytes]] = defaultdict(set)
    for patient, scope, delegating in conn.execute(select(
            t.patient_keys.c.patient, t.patient_keys.c.scope_id,
            t.patient_keys.c.delegating_key)):
        stated[(patient, bytes(scope))].add(bytes(delegating))
    rows = conn.execute(select(t.kfrags.c.patient, t.kfrags.c.scope_id, t.kfrags.c.provider,
                               t.kfrags.c.delegating_key)).all()
    found.counts["kfrags"] = len(rows)
    head = chain.head()
    held: set[tuple[str, bytes, str]] = set()
    for patient, scope, provider, delegating in rows:
        held.add((patient, bytes(scope), provider))
        if bytes(delegating) not in stated[(patient, bytes(scope))]:
            found.problems.append(f"fragments of {patient} scope {_hx(scope)} for {provider} "
                                  "were made under a key the patient never stated")
    ledger = chain.ledger
    for patient, scope, provider in sorted(held):
        grant = ledger.grant_of(patient, provider, ScopeId(scope), block=head.number)
        if grant is not None and grant.live:
            continue
        if ledger.emergency_access_until(patient, provider, block=head.number) > head.timestamp:
            continue
        found.problems.append(f"fragments of {patient} scope {_hx(scope)} for {provider} "
                              f"outlive their grant (chain: {grant}) at block {head.number}")


def _sessions(conn: Any, settings: Settings, now: int, found: Consistency) -> None:
    rows = conn.execute(select(t.sessions.c.token_hash, t.sessions.c.address,
                               t.sessions.c.roles, t.sessions.c.expires_at)).all()
    found.counts["sessions"] = len(rows)
    latest = now + settings.session_ttl_s + 60
    for token_hash, address, roles, expires_at in rows:
        if expires_at is None or not 0 < int(expires_at) <= latest:
            found.problems.append(f"the session of {address} expires at {expires_at}, "
                                  f"not within one session lifetime (by {latest})")
        if len(bytes(token_hash)) != 32 or not str(roles):
            found.problems.append(f"the session of {address} is malformed "
                                  f"(hash of {len(bytes(token_hash))} bytes, roles {roles!r})")


def _nonces(conn: Any, found: Consistency) -> None:
    rows = conn.execute(select(t.siwe_nonces.c.nonce, t.siwe_nonces.c.issued_at,
                               t.siwe_nonces.c.used_at)).all()
    found.counts["nonces"] = len(rows)
    for nonce, issued, used in rows:
        if used is not None and int(used) < int(issued):
            found.problems.append(f"nonce {nonce} used at {used}, before it was issued {issued}")


def _receipts(conn: Any, found: Consistency) -> None:
    records = {bytes(r[0]): (r[1], bytes(r[2])) for r in conn.execute(
        select(t.records.c.record_id, t.records.c.patient, t.records.c.scope_id))}
    batches = {bytes(r[0]): r for r in conn.execute(select(
        t.receipt_batches.c.root, t.receipt_batches.c.count, t.receipt_batches.c.from_time,
        t.receipt_batches.c.to_time, t.receipt_batches.c.tx_hash,
        t.receipt_batches.c.block_number, t.receipt_batches.c.anchored_at))}
    found.counts["receipt_batches"] = len(batches)
    leaves: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
    rows = conn.execute(select(
        t.receipts.c.seq, t.receipts.c.request_id, t.receipts.c.provider, t.receipts.c.patient,
        t.receipts.c.record_id, t.receipts.c.scope_id, t.receipts.c.request_json,
        t.receipts.c.signature, t.receipts.c.leaf, t.receipts.c.served_at,
        t.receipts.c.head_block, t.receipts.c.batch_root, t.receipts.c.leaf_index)).all()
    found.counts["receipts"] = len(rows)
    for (seq, request_id, provider, patient, record_id, scope_id, request_json, signature,
         leaf, served_at, head_block, batch_root, leaf_index) in rows:
        name = f"receipt #{seq}"
        request = ReadRequest.from_json(json.loads(request_json))
        if (request.request_id, request.provider, request.patient, bytes(request.record_id)) \
                != (bytes(request_id), provider, patient, bytes(record_id)):
            found.problems.append(f"{name}: its columns are not its stored request")
        if receipt_leaf(request, bytes(signature), served_at=int(served_at),
                        head_block=int(head_block)) != bytes(leaf):
            found.problems.append(f"{name}: its leaf is not the hash of what it stores")
        if records.get(bytes(record_id)) != (patient, bytes(scope_id)):
            found.problems.append(f"{name}: read record {_hx(record_id)} of scope "
                                  f"{_hx(scope_id)}, which is not {patient}'s")
        if (batch_root is None) != (leaf_index is None):
            found.problems.append(f"{name}: half-batched (root {batch_root!r}, index "
                                  f"{leaf_index!r})")
        elif batch_root is not None:
            if bytes(batch_root) not in batches:
                found.problems.append(f"{name}: its batch {_hx(batch_root)} does not exist")
            leaves[bytes(batch_root)].append((int(leaf_index), bytes(leaf)))
    for root, (_, count, from_time, to_time, tx_hash, block_number, anchored_at) \
            in batches.items():
        name = f"batch {_hx(root)}"
        members = sorted(leaves.get(root, []))
        if [i for i, _ in members] != list(range(int(count))):
            found.problems.append(f"{name}: counts {count} receipts, holds leaf indexes "
                                  f"{[i for i, _ in members][:10]}")
        elif not members:
            found.problems.append(f"{name}: an empty batch")
        elif MerkleTree.build([leaf for _, leaf in members]).root != root:
            found.problems.append(f"{name}: its receipts do not hash to its root")
        if len({tx_hash is None, block_number is None, anchored_at is None}) != 1:
            found.problems.append(f"{name}: half-anchored (tx {tx_hash!r}, block "
                                  f"{block_number!r}, at {anchored_at!r})")
        if int(from_time) > int(to_time):
            found.problems.append(f"{name}: from {from_time} after to {to_time}")
