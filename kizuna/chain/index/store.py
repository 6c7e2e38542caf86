"""The event index: every Kizuna event in SQLite, incrementally, reorg-safe, resumable.

:meth:`EventIndex.sync` reads logs of the three Kizuna contracts from the last indexed block
(initially the deploy block) to the chain head in parts (block ranges of ``eth_getLogs``, sized
by :class:`~kizuna.chain.index.parts.PartPlanner`), decodes them, stores them raw
(``raw_logs``) and applies them to the projections the queries read, one SQL transaction per
part together with the new "last block" — so a crash never leaves half a part, and a restart
resumes where the last committed part ended. On a node reached over JSON-RPC the next parts are
fetched (on worker threads, :class:`~kizuna.chain.index.parts.Prefetcher`) while the part that
arrived is stored, and an ``http(s)://`` node is asked through :class:`~kizuna.chain.rpc.LeanRpc`
(a kept-alive connection per thread, far less CPU per request than web3's HTTP provider).

**Reorgs.** The index keeps the hashes of recent indexed blocks (each stored part's last block and
every block that held a Kizuna log). Before reading forward it compares the last one with the
node's; on a mismatch it walks back through the kept hashes to the newest block the node still
agrees on, deletes everything indexed above it, rebuilds the projections from ``raw_logs`` and
reads forward again. A reorg deeper than the kept window re-indexes from the deploy block. Each
part's last block hash is read before and after its ``eth_getLogs``; if it changed under us, the
part is read again.

**The head rule.** ``sync()`` returns the block the index is complete up to (its *head*): an
access decision must be made at that block or later, never earlier — see
:class:`kizuna.chain.index.fresh.FreshIndex` and :meth:`EventIndex.require_fresh`.
"""

from __future__ import annotations

import gc
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3

from kizuna.chain.index import projections, queries
from kizuna.chain.index.batches import ManifestSource, project_batches
from kizuna.chain.index.blocktimes import BlockTimes
from kizuna.chain.index.events import (
    Blob,
    DecodedEvent,
    EventDecoder,
    RawRow,
    _int,
    _unhex,
    raw_row,
)
from kizuna.chain.index.parts import (
    COMMIT_LOGS,
    SPARSE_IN_FLIGHT,
    TARGET_PART_LOGS,
    Part,
    PartPlanner,
    Prefetcher,
)
from kizuna.chain.index.schema import PROJECTION_TABLES, SCHEMA_VERSION, ddl
from kizuna.chain.models import (
    AccessRequest,
    BlockRef,
    CareEvent,
    CareEventKind,
    EmergencyAccess,
    Grant,
    Guardian,
    Provider,
    ReceiptBatch,
    Record,
)
from kizuna.chain.reverts import RevertDecoder
from kizuna.chain.rpc import LeanRpc
from kizuna.chain.transactions import node_errors
from kizuna.errors import ChainError, ConfigError, NodeUnreachable
from kizuna.filemodes import private_sqlite
from kizuna.locks import WriterLock
from kizuna.types import Address, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain

@dataclass(frozen=True, slots=True)
class _Fetched:
    start: int
    end: int
    end_block: BlockRef
    logs: list[Mapping[str, Any]]
    parent_hash: bytes | None = None
    """The hash of block ``start - 1`` as the node had it once the logs were read (``None``
    before the chain's first block): it must be the hash the part before ended on."""


class _UnknownBlock(NodeUnreachable):
    """The node has no block of that number (beyond its head, e.g. after a reorg to a shorter
    branch)."""


class _Discontinuity(ChainError):
    """A part does not follow on from the part before it: the chain reorganised between
    their fetches. The catch-up stops before storing it; the sync rolls back and resumes."""


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a catch-up.

    Parsing and decoding thousands of logs allocates tens of thousands of small acyclic objects
    (freed by reference counting anyway), which would otherwise trigger full collections that
    walk the whole heap — measured at about half of the catch-up time. Re-enabled right after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class StaleRead(ChainError):
    """A read was asked at a block older than the head the index has already seen."""

    def __init__(self, asked: int, head: int) -> None:
        super().__init__(
            f"refusing to decide at block {asked}: the index has seen block {head} already"
        )
        self.asked = asked
        self.head = head


@dataclass(frozen=True, slots=True)
class IndexSource:
    """What to index: the chain, the contracts (address → name, ABI) and the first block."""

    chain_id: int
    contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]
    start_block: int

    @property
    def fingerprint(self) -> str:
        """Identifies the chain and deployment an index file belongs to."""
        names = ",".join(f"{name}@{address.lower()}"
                         for address, (name, _) in sorted(self.contracts.items()))
        return f"{self.chain_id}:{self.start_block}:{names}"


@dataclass(frozen=True, slots=True)
class Standing:
    """What the chain says of one account at one block: whether it is an active provider in
    the ``ProviderRegistry`` and which AccessControl roles it holds, as (contract name, role
    id) pairs (e.g. ``("AccessLog", keccak256("KIZUNA_AUDITOR_ROLE"))``)."""

    account: Address
    block: BlockRef
    """The index head the answer is at (every event up to it applied, none after)."""
    provider_active: bool
    roles: frozenset[tuple[str, bytes]]

    def has_role(self, contract: str, role: bytes) -> bool:
        return (contract, bytes(role)) in self.roles


def _hex(value: int) -> str:
    return hex(value)


def _lean_rpc(w3: Web3) -> LeanRpc | None:
    """A :class:`LeanRpc` for a web3 on an ``http(s)://`` node without credentials (with the
    provider's timeout); ``None`` for any other provider (those go through web3)."""
    provider = w3.provider
    if not isinstance(provider, HTTPProvider):
        return None
    url = str(provider.endpoint_uri or "")
    if not LeanRpc.usable(url):
        return None
    timeout = provider.get_request_kwargs().get("timeout", 10.0)
    return LeanRpc(url, timeout=float(timeout) if isinstance(timeout, int | float) else 10.0)


class EventIndex:
    """An incrementally synced, reorg-safe SQLite cache of every Kizuna event.

    ``path`` is a file (kept across restarts) or ``":memory:"``. ``chunk_size`` bounds each
    ``eth_getLogs`` range (a part); ``reorg_window`` is how many recent blocks keep their hash;
    ``lag`` indexes only up to ``head - lag`` (0: up to the head itself); ``part_logs`` is about
    how many logs a catch-up part should hold (see :mod:`kizuna.chain.index.parts`).
    ``manifests`` gives record batches' manifests by root (:mod:`kizuna.chain.index.batches`);
    without one, every batch stays pending (its records are not in ``records``).
    """

    def __init__(
        self,
        w3: Web3,
        source: IndexSource,
        path: str | Path = ":memory:",
        *,
        chunk_size: int = 2_000,
        reorg_window: int = 128,
        lag: int = 0,
        part_logs: int = TARGET_PART_LOGS,
        manifests: ManifestSource | None = None,
    ) -> None:
        if chunk_size < 1 or reorg_window < 1 or lag < 0 or part_logs < 1:
            raise ConfigError("chunk_size, reorg_window and part_logs must be positive, "
                              "lag not negative")
        self.w3 = w3
        self.source = source
        self.chunk_size = chunk_size
        self.reorg_window = reorg_window
        self.lag = lag
        self.part_logs = part_logs
        self.manifests = manifests
        self.decoder = EventDecoder(source.contracts, args_for=projections.HANDLERS)
        self._errors = RevertDecoder()
        self._lock = threading.RLock()
        self._addresses = self.decoder.addresses
        # In-process providers (eth-tester) take no raw JSON-RPC; HTTP/IPC nodes do, and the
        # raw path skips web3's per-field formatting of thousands of logs.
        self._raw = not isinstance(w3.provider, EthereumTesterProvider)
        self._lean = _lean_rpc(w3)
        self.block_times = BlockTimes(self._block)
        """Block timestamps by hash, kept across requests (the audit log's block times)."""
        self.reorgs = 0
        self._previous_end: bytes | None = None  # the hash the next stored part must follow
        """How many reorgs this instance has rolled back (for tests and metrics)."""
        memory = str(path) == ":memory:"
        # Several processes may share one index file (service instances of one home): writers
        # take turns on an flock beside it, and a sync reads where the index stands only once
        # it holds that lock, so no block range is ever indexed twice.
        if not memory:
            private_sqlite(path)  # 0600 (and its -wal / -shm): who granted whom, and reads
        self._writer = WriterLock.beside(None if memory else path)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                  timeout=30.0)
        self.db.execute("PRAGMA journal_mode = WAL" if not memory
                        else "PRAGMA journal_mode = MEMORY")
        self.db.execute("PRAGMA synchronous = NORMAL")
        # Checkpoint the WAL every 64 MiB rather than every 4 MiB: a catch-up part writes
        # megabytes, and a checkpoint (with its fsync) on nearly every commit doubled its cost.
        self.db.execute("PRAGMA wal_autocheckpoint = 16384")
        self._create()

    @classmethod
    def for_chain(cls, chain: Chain, path: str | Path = ":memory:",
                  **options: Any) -> EventIndex:
        """An index of a :class:`kizuna.chain.connection.Chain`'s deployment."""
        deployment = chain.deployment
        contracts: dict[str, tuple[str, Sequence[Mapping[str, Any]]]] = {
            str(address): (name, chain.abis[name])
            for name, address in deployment.addresses.items()
        }
        source = IndexSource(chain.chain_id, contracts, int(deployment.deploy_block))
        return cls(chain.w3, source, path, **options)

    # -- storage -----------------------------------------------------------------------------

    def _create(self) -> None:
        with self._transaction() as cur:
            if cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'index_meta'").fetchone() is not None:
                schema = cur.execute("SELECT value FROM index_meta WHERE key = 'schema'"
                                     ).fetchone()
                if schema is not None and schema[0] in ("1", "2"):
                    # Older projection tables lack columns (records.batch_root, ...): they are
                    # derived data, recreated below and replayed from raw_logs.
                    for table in PROJECTION_TABLES:
                        cur.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in ddl("sqlite"):
                cur.execute(statement)
            meta = dict(cur.execute("SELECT key, value FROM index_meta").fetchall())
            if not meta:
                cur.executemany("INSERT INTO index_meta (key, value) VALUES (?, ?)", [
                    ("schema", str(SCHEMA_VERSION)),
                    ("source", self.source.fingerprint),
                    ("last_block", str(self.source.start_block - 1)),
                ])
            elif meta.get("source") != self.source.fingerprint:
                raise ConfigError("this index file belongs to another chain or deployment "
                                  f"({meta.get('source')}); use another path or delete it")
            elif meta.get("schema") not in ("1", "2", "3", str(SCHEMA_VERSION)):
                raise ConfigError(f"index schema {meta.get('schema')} is not {SCHEMA_VERSION}: "
                                  "delete the index file, it is rebuilt from the chain")
            projected = ",".join(f"{c}.{e}" for c, e in projections.projected_events())
            if meta and (meta.get("schema") != str(SCHEMA_VERSION)
                         or meta.get("projected") != projected):
                # An index written by an older Kizuna (an older schema, or fewer projected events,
                # e.g. before scope epochs, roles or record batches were projected): every log is
                # in raw_logs, so the projections are replayed from there once instead of
                # re-reading the chain.
                self._rebuild(cur)
            cur.executemany("INSERT INTO index_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value",
                            [("schema", str(SCHEMA_VERSION)), ("projected", projected)])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock, self._writer:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.db.close()
            self._writer.close()
            if self._lean is not None:
                self._lean.close()

    def __enter__(self) -> EventIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def last_block(self) -> int:
        """The last block fully indexed (``start_block - 1`` before the first sync)."""
        with self._lock:
            row = self.db.execute(
                "SELECT value FROM index_meta WHERE key = 'last_block'").fetchone()
        return int(row[0])

    @property
    def head(self) -> BlockRef | None:
        """The block the index is complete up to, with its hash and time; ``None`` if unsynced."""
        with self._lock:
            return queries.head(self.db)[1]

    def require_fresh(self, block_number: int) -> None:
        """:class:`StaleRead` unless ``block_number`` is at or after the index's head."""
        head = self.last_block
        if block_number < head:
            raise StaleRead(block_number, head)

    # -- node access -------------------------------------------------------------------------

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """A plain JSON-RPC request: no web3 formatters on the (large) answers."""
        if self._lean is not None:
            return self._lean.call(method, params)
        with node_errors(self._errors):
            answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise ChainError(f"{method} failed: {answer['error']}")
        return answer["result"]

    def _block(self, number: int | str) -> BlockRef:
        if self._raw:
            tag = _hex(number) if isinstance(number, int) else number
            raw = self._rpc("eth_getBlockByNumber", [tag, False])
        else:
            with node_errors(self._errors):
                raw = self.w3.eth.get_block(number)  # type: ignore[arg-type]
        if raw is None:
            raise _UnknownBlock(f"the node does not know block {number}")
        return BlockRef(number=_int(raw["number"]), hash=_unhex(raw["hash"]),
                        timestamp=_int(raw["timestamp"]))

    def _logs(self, start: int, end: int) -> list[Mapping[str, Any]]:
        if self._raw:
            return list(self._rpc("eth_getLogs", [{
                "fromBlock": _hex(start), "toBlock": _hex(end), "address": self._addresses,
            }]))
        with node_errors(self._errors):
            return list(self.w3.eth.get_logs({
                "fromBlock": start, "toBlock": end,
                "address": [to_checksum_address(a) for a in self._addresses],
            }))

    # -- sync --------------------------------------------------------------------------------

    def sync(self, *, to_block: int | None = None) -> BlockRef:
        """Index every new event up to the chain head (or ``to_block``); the index's head.

        Detects and rolls back reorgs first. Returns the block the index is now complete up to.
        """
        with self._lock, self._writer:  # another process may have indexed meanwhile
            latest = self._block("latest")
            target = latest.number - self.lag
            if to_block is not None:
                target = min(target, to_block)
            for _ in range(5):
                self._handle_reorg(latest)
                try:
                    self._catch_up(self.last_block + 1, target)
                    break
                except _Discontinuity:
                    # A reorg between two parts' fetches (the parts stored before it are on
                    # the old branch): roll back against the node's new head, then resume.
                    latest = self._block("latest")
                    target = latest.number - self.lag
                    if to_block is not None:
                        target = min(target, to_block)
            else:
                raise ChainError("the chain keeps reorganising under the index's catch-up")
            head = self.head
            if head is None:  # nothing indexed yet (the deploy block is ahead of the head)
                head = self._block(max(self.last_block, 0))
            return head

    def _catch_up(self, start: int, target: int) -> None:
        """Index blocks ``start..target`` part by part, in chain order.

        Parts are sized by :class:`PartPlanner` (the observed density of logs). On a JSON-RPC
        node a few parts (:attr:`PartPlanner.in_flight`) are fetched on worker threads while
        the one that arrived is decoded and stored; in-process providers (eth-tester,
        not thread-safe) and a catch-up that fits in one part are fetched on this thread.

        Each SQL transaction holds whole parts and moves ``last_block`` to its last part's end:
        one part, or — while the next part has already arrived when one is stored, up to
        :data:`COMMIT_LOGS` logs — a run of them (a commit rewrites every page the run
        touched, so fewer commits when the store is what the catch-up waits for).
        """
        planner = PartPlanner(start, target, limit=self.chunk_size,
                              target_logs=self.part_logs)
        first = planner.next()
        if first is None:
            return
        row = self.db.execute("SELECT hash FROM index_blocks WHERE number = ?",
                              (start - 1,)).fetchone()
        self._previous_end = bytes(row[0]) if row is not None else None
        with _collector_paused():
            if not self._raw or planner.done:
                part: Part | None = first
                while part is not None:
                    fetched = self._fetch(part.first, part.last)
                    planner.observe(part, len(fetched.logs))
                    with self._transaction() as cur:
                        self._store_part(cur, fetched)
                        self._advance(cur, fetched)
                    part = planner.next()
                return
            on_exit = self._lean.close if self._lean is not None else None
            with Prefetcher(self._fetch_part, workers=SPARSE_IN_FLIGHT,
                            on_thread_exit=on_exit) as ahead:

                def arrived(fetched: _Fetched) -> None:
                    # size and ask for the next parts before storing: the node works meanwhile
                    planner.observe(Part(fetched.start, fetched.end), len(fetched.logs))
                    while (ahead.pending < planner.in_flight
                           and (part := planner.next()) is not None):
                        ahead.submit(part)

                ahead.submit(first)
                while ahead.pending < planner.in_flight and (part := planner.next()) is not None:
                    ahead.submit(part)
                while ahead.pending:
                    fetched = ahead.next()  # waits (and raises) outside any transaction
                    with self._transaction() as cur:
                        logs = 0
                        while True:
                            arrived(fetched)
                            logs += self._store_part(cur, fetched)
                            if logs >= COMMIT_LOGS or not ahead.ready:
                                break
                            fetched = ahead.next()  # arrived meanwhile: same transaction
                        self._advance(cur, fetched)

    def _fetch_part(self, part: Part) -> _Fetched:
        return self._fetch(part.first, part.last)

    def _fetch(self, start: int, end: int) -> _Fetched:
        """Logs of ``start..end``, with the hash of ``end`` unchanged across the request, and
        the hash of ``start - 1`` read after them (what :meth:`_store_part` links to the part
        before: a reorg that replaced the part before also replaces that hash)."""
        for _ in range(5):
            try:
                before = self._block(end)
                logs = self._logs(start, end)
                after = self._block(end)
                parent = self._block(start - 1).hash if start > 0 else None
            except _UnknownBlock:  # the chain became shorter since the catch-up began
                raise _Discontinuity(f"block {end} went away during the catch-up (a reorg "
                                     "to a shorter branch)") from None
            if before.hash == after.hash:
                return _Fetched(start, end, after, logs, parent)
        raise ChainError(f"blocks {start}..{end} keep changing under the index (reorgs)")

    def _decode(self, fetched: _Fetched) -> tuple[list[RawRow], list[DecodedEvent]]:
        """A part's ``raw_logs`` rows and projected events, in chain order."""
        if self._raw:  # JSON as the node sent it: arguments decoded only where projected
            rows, events = self.decoder.index_json_many(fetched.logs)
        else:
            events = [e for e in (self.decoder.decode_raw(log) for log in fetched.logs
                                  if not log.get("removed")) if e is not None]
            rows = [raw_row(e) for e in events]
        if not all(a[0] < b[0] or (a[0] == b[0] and a[1] < b[1])
                   for a, b in itertools.pairwise(rows)):
            # nodes return logs in chain order; sort if one does not
            rows.sort(key=lambda r: (r[0], r[1]))
            events.sort(key=lambda e: (e.block_number, e.log_index))
        return rows, events

    def _store_part(self, cur: sqlite3.Cursor, fetched: _Fetched) -> int:
        """Store one part's logs, projections and block hashes (in the caller's transaction);
        how many logs it held. :class:`_Discontinuity` (nothing stored) when the part does not
        follow on from the one stored before it."""
        if (self._previous_end is not None and fetched.parent_hash is not None
                and fetched.parent_hash != self._previous_end):
            raise _Discontinuity(f"block {fetched.start - 1} changed between two parts of "
                                 "the catch-up (a reorg)")
        self._previous_end = fetched.end_block.hash
        rows, events = self._decode(fetched)
        blocks: dict[int, tuple[Blob, int]] = {
            fetched.end: (fetched.end_block.hash, fetched.end_block.timestamp)}
        last = -1
        for row in rows:
            if row[0] != last:
                last = row[0]
                blocks.setdefault(last, (row[2], -1))
        self._store(cur, rows, events)
        cur.executemany(
            "INSERT INTO index_blocks (number, hash, timestamp) VALUES (?, ?, ?) "
            "ON CONFLICT (number) DO UPDATE SET hash = excluded.hash, "
            "timestamp = excluded.timestamp",
            [(n, h, t) for n, (h, t) in blocks.items()],
        )
        return len(fetched.logs)

    def _advance(self, cur: sqlite3.Cursor, fetched: _Fetched) -> None:
        """Move ``last_block`` to the end of ``fetched`` (the last part stored in this
        transaction) and forget block hashes older than the reorg window."""
        end = fetched.end
        cur.execute("DELETE FROM index_blocks WHERE number < ? AND number <> ?",
                    (end - self.reorg_window, end))
        cur.execute("UPDATE index_meta SET value = ? WHERE key = 'last_block'", (str(end),))

    def _store(self, cur: sqlite3.Cursor, rows: Sequence[RawRow],
               events: Sequence[DecodedEvent]) -> None:
        """Every log's raw row, and the projected events applied (in the caller's
        transaction)."""
        cur.executemany(
            "INSERT INTO raw_logs (block_number, log_index, block_hash, tx_hash, address, topics,"
            " data) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        projections.apply(cur, events)
        self._project_new_batches(cur, events)

    def _project_new_batches(self, cur: sqlite3.Cursor, events: Sequence[DecodedEvent]) -> None:
        """The records of the batches ``events`` registered, where the manifest source has
        their manifests (the others stay in ``pending_batches``)."""
        roots = [e.args["root"] for e in events if e.name == "RecordBatchRegistered"
                 and e.contract == "ConsentLedger"]
        if roots:
            project_batches(cur, roots, self.manifests)

    # -- reorgs ------------------------------------------------------------------------------

    def _handle_reorg(self, latest: BlockRef) -> None:
        last = self.last_block
        if last < self.source.start_block:
            return
        kept = self.db.execute(
            "SELECT number, hash FROM index_blocks ORDER BY number DESC").fetchall()
        if not kept:
            return
        number, stored = int(kept[0][0]), bytes(kept[0][1])
        if number <= latest.number:
            canonical = latest if number == latest.number else self._block(number)
            if canonical.hash == stored:
                return
        fork = self.source.start_block - 1
        for number, stored_hash in kept:
            if int(number) > latest.number:
                continue
            if self._block(int(number)).hash == bytes(stored_hash):
                fork = int(number)
                break
        self._rollback_to(fork)

    def _rollback_to(self, fork: int) -> None:
        """Forget everything above block ``fork`` and rebuild the projections from raw logs."""
        self.reorgs += 1
        with self._transaction() as cur:
            cur.execute("DELETE FROM raw_logs WHERE block_number > ?", (fork,))
            cur.execute("DELETE FROM index_blocks WHERE number > ?", (fork,))
            cur.execute("UPDATE index_meta SET value = ? WHERE key = 'last_block'", (str(fork),))
            self._rebuild(cur)

    def _rebuild(self, cur: sqlite3.Cursor) -> None:
        for table in PROJECTION_TABLES:
            cur.execute(f"DELETE FROM {table}")
        rows = cur.execute(
            "SELECT block_number, log_index, block_hash, tx_hash, address, topics, data "
            "FROM raw_logs ORDER BY block_number, log_index").fetchall()
        replay: list[DecodedEvent] = []
        for block_number, log_index, block_hash, tx_hash, address, topics, data in rows:
            raw_topics = bytes(topics)
            decoded = self.decoder.decode_raw({
                "address": address,
                "topics": [raw_topics[i:i + 32] for i in range(0, len(raw_topics), 32)],
                "data": bytes(data), "blockNumber": int(block_number),
                "blockHash": bytes(block_hash), "transactionHash": bytes(tx_hash),
                "logIndex": int(log_index),
            })
            if decoded is not None:
                replay.append(decoded)
        projections.apply(cur, replay)
        self._project_new_batches(cur, replay)

    # -- record batches (kizuna.chain.index.batches) -----------------------------------------

    def manifest_arrived(self, root: bytes) -> bool:
        """The manifest of batch ``root`` can now be had from the manifest source (the service
        stored it): project the batch's records if the batch is pending. True when it was
        projected now; False when the index has not seen the batch yet (the sync that does
        projects it then), has projected it already, or the manifest is still not available
        or not the batch's (logged)."""
        with self._transaction() as cur:
            return bool(project_batches(cur, [bytes(root)], self.manifests))

    def use_manifests(self, source: ManifestSource) -> list[bytes]:
        """Take manifests from ``source`` from now on, and project the pending batches it has
        manifests for; their roots."""
        with self._transaction() as cur:
            self.manifests = source
            pending = queries.pending_batches(self.db)
            return project_batches(cur, pending, source)

    def pending_batches(self) -> list[bytes]:
        """Roots of the batches registered on-chain whose records are not projected yet (no
        manifest, or only wrong ones, so far), in chain order."""
        with self._lock:
            return queries.pending_batches(self.db)

    # -- queries (the cache as of ``head``; see FreshIndex for reads that sync first) -------

    def _now(self, at: BlockRef | None) -> int:
        if at is not None:
            return at.timestamp
        head = self.head
        return head.timestamp if head is not None else 0

    def grants_of(self, patient: Address, *, live_only: bool = True,
                  at: BlockRef | None = None) -> list[Grant]:
        """A patient's grants (live ones at the head, unless ``live_only=False``)."""
        with self._lock:
            return queries.grants_of(self.db, patient, now=self._now(at), live_only=live_only)

    def grants_to(self, provider: Address, *, at: BlockRef | None = None) -> list[Grant]:
        """Every live grant held by ``provider``."""
        with self._lock:
            return queries.grants_to(self.db, provider, now=self._now(at))

    def grantees(self, provider: Address, *, at: BlockRef | None = None) -> list[Address]:
        """Patients who granted ``provider`` at least one live scope, sorted."""
        with self._lock:
            return queries.grantees(self.db, provider, now=self._now(at))

    def has_access(self, patient: Address, provider: Address, scope_id: ScopeId, *,
                   at: BlockRef | None = None) -> bool:
        """The index's view of ``hasAccess`` (a live grant or an open emergency access)."""
        with self._lock:
            return queries.has_access(self.db, patient, provider, scope_id, now=self._now(at))

    def scope_epoch(self, patient: Address, scope_id: ScopeId) -> int:
        """The key epoch of (patient, scope) as of the index's head (docs/keys.md "Epochs");
        0 for a scope never revoked."""
        with self._lock:
            return queries.scope_epoch(self.db, patient, scope_id)

    def records_of(self, patient: Address, *, include_superseded: bool = False) -> list[Record]:
        with self._lock:
            return queries.records_of(self.db, patient, include_superseded=include_superseded)

    def record(self, record_id: RecordId) -> Record | None:
        """One record by id (superseded or not), ``None`` when the index has none."""
        with self._lock:
            return queries.record(self.db, record_id)

    def care_events(self, *, patient: Address | None = None, provider: Address | None = None,
                    kind: CareEventKind | None = None, limit: int = 1000) -> list[CareEvent]:
        """Care events, newest first, filtered by patient, provider and/or kind."""
        with self._lock:
            return queries.care_events(self.db, patient=patient, provider=provider, kind=kind,
                                       limit=limit)

    def emergency_accesses(self, *, patient: Address | None = None,
                           provider: Address | None = None,
                           awaiting_review: bool | None = None) -> list[EmergencyAccess]:
        """Emergency (break-glass) accesses, newest first; ``awaiting_review=True``: not yet
        marked reviewed."""
        with self._lock:
            return queries.emergency_accesses(self.db, patient=patient, provider=provider,
                                              awaiting_review=awaiting_review)

    def mark_reviewed(self, access: EmergencyAccess, *, reviewer: Address, at: int) -> None:
        """Record (locally) that ``reviewer`` reviewed an emergency access at time ``at``."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO emergency_reviews (tx_hash, log_index, reviewer, reviewed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (tx_hash, log_index) DO UPDATE SET "
                "reviewer = excluded.reviewer, reviewed_at = excluded.reviewed_at",
                (access.tx_hash, access.log_index, reviewer, at))

    def access_requests(self, *, patient: Address | None = None,
                        provider: Address | None = None,
                        at: BlockRef | None = None) -> list[AccessRequest]:
        """Open access requests (at the head's time)."""
        with self._lock:
            return queries.access_requests(self.db, patient=patient, provider=provider,
                                           now=self._now(at))

    def guardians_of(self, patient: Address, *, at: BlockRef | None = None) -> list[Guardian]:
        with self._lock:
            return queries.guardians_of(self.db, patient, now=self._now(at))

    def wards_of(self, guardian: Address, *, at: BlockRef | None = None) -> list[Guardian]:
        """The live appointments of ``guardian`` (the patients it may act for)."""
        with self._lock:
            return queries.wards_of(self.db, guardian, now=self._now(at))

    def providers(self, *, active_only: bool = False) -> list[Provider]:
        with self._lock:
            return queries.providers(self.db, active_only=active_only)

    def _require_head(self, at: BlockRef | None) -> None:
        """The projections hold the state at the index's head: a question about another
        block (``at``) cannot be answered from them."""
        if at is None:
            return
        head = self.last_block
        if at.number < head:
            raise StaleRead(at.number, head)
        if at.number > head:
            raise ChainError(f"the index has reached block {head}, not {at.number}: sync first")

    def provider_active(self, provider: Address, *, at: BlockRef | None = None) -> bool:
        """Whether ``provider`` is registered and not suspended, at the index head (``at``:
        which must be that head)."""
        with self._lock:
            self._require_head(at)
            return queries.provider_active(self.db, provider)

    def has_role(self, contract: str, role: bytes, account: Address, *,
                 at: BlockRef | None = None) -> bool:
        """Whether ``account`` holds AccessControl ``role`` in ``contract`` (a name of the
        deployment: ``ProviderRegistry``, ``AccessLog``), at the index head."""
        with self._lock:
            self._require_head(at)
            return queries.has_role(self.db, contract, role, account)

    def role_holders(self, contract: str, role: bytes) -> list[Address]:
        """Every account holding ``role`` in ``contract`` at the index head, sorted."""
        with self._lock:
            return queries.role_holders(self.db, contract, role)

    def standing(self, account: Address) -> Standing:
        """Provider activity and roles of ``account``, with the head they are at (read
        together under the index's lock: no sync can move the head in between)."""
        with self._lock:
            head = self.head
            if head is None:
                raise ChainError("the index has not been synced yet")
            return Standing(account=account, block=head,
                            provider_active=queries.provider_active(self.db, account),
                            roles=frozenset(queries.roles_of(self.db, account)))

    def receipt_batches(self) -> list[ReceiptBatch]:
        """Every anchored receipt batch, in order."""
        with self._lock:
            return queries.receipt_batches(self.db)

    def event_count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM raw_logs").fetchone()[0])

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every chain-derived table's rows, sorted (to compare two indexes in tests)."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self._lock:
            for table in ("raw_logs", *PROJECTION_TABLES):
                rows = self.db.execute(f"SELECT * FROM {table}").fetchall()
                out[table] = sorted(rows, key=lambda r: json.dumps(r, default=bytes.hex))
        return out


__all__ = ["EventIndex", "IndexSource", "StaleRead", "Standing"]
