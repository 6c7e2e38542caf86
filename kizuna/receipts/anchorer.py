"""``Anchorer``: puts receipt batches' Merkle roots on-chain (``AccessLog.anchor``).

``run_once()`` (on demand) first finishes pending batches -- made but not anchored, e.g. when
the process died between the two steps, and older than ``pending_grace_s`` (a younger one may
be another anchorer's, its transaction on the way): if the chain already has the root (the
transaction went through before the crash) only the database is updated, otherwise the root is
anchored now -- then makes and anchors new batches until no unbatched receipt is old enough.
``start()`` runs it every ``interval_s`` seconds on a daemon thread; ``stop()`` wakes the
thread, waits for the run in progress and returns (a clean stop).

Several instances may run anchorers on one database: batches are assigned in one write
transaction (SQLite's write lock, PostgreSQL's ``FOR UPDATE SKIP LOCKED``), so a receipt is in
one batch only; a root the chain already holds is recognised and not sent twice. The API runs
one anchorer per cluster, on the instance elected by :mod:`kizuna.services.leader`; this safety
is what makes a leader that has not yet noticed its replacement harmless.

The contract's rules are respected: ``toTime`` is never after the current time (receipts are
taken only if served at or before ``now - settle_s``; ``now`` is the later of this machine's
clock and the chain head's timestamp so a chain ahead of us -- a test's time travel -- is
fine), and each batch starts at or after the previous batch's ``toTime`` -- this anchorer's
own previous batch (read from the contract by the signer's address: the service and each
threshold proxy node anchor their own receipts with their own key, each in its own
sequence). A batch the contract refuses for its time range is dissolved and re-made: when the
chain's clock is behind ours (a node whose clock trails this machine's by a second, a batch
ending in the very second it is anchored), the pass waits ``retry_wait_s`` and tries again, up
to ``time_retries`` times, before leaving the receipts to the next pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kizuna.background import PeriodicTask
from kizuna.chain.connection import Chain
from kizuna.chain.signers import Signer
from kizuna.db import Database
from kizuna.errors import ChainError, ContractReverted
from kizuna.receipts.batching import (
    PendingBatch,
    assign_batch,
    dissolve,
    mark_anchored,
    pending_batches,
)

log = logging.getLogger(__name__)

_TOO_EARLY = "too early"
_OVERLAP = "overlap"


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    root: bytes
    count: int
    from_time: int
    to_time: int
    tx_hash: bytes | None
    block_number: int | None


class Anchorer(PeriodicTask):
    """Anchors receipt batches for one service database on one chain."""

    thread_name = "kizuna-anchorer"

    def __init__(self, *, db: Database, chain: Chain, signer: Signer,
                 interval_s: float = 60.0, settle_s: int = 0, max_batch: int = 100_000,
                 pending_grace_s: int = 30, time_retries: int = 3,
                 retry_wait_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(interval_s=interval_s)
        self.db = db
        self.pending_grace_s = pending_grace_s
        """A pending batch younger than this may still be in another anchorer's hands (made,
        its transaction on the way): leave it alone until then."""
        self.chain = chain
        self.signer = signer
        self.settle_s = settle_s
        self.max_batch = max_batch
        self.time_retries = time_retries
        self.retry_wait_s = retry_wait_s
        self.clock = clock
        """This machine's clock (unix seconds)."""
        self._lock = threading.Lock()

    # -- on demand ----------------------------------------------------------------------------

    def run_once(self) -> list[AnchoredBatch]:
        """Finish pending batches, then batch and anchor every receipt settled when the pass
        began."""
        with self._lock:
            cutoff = int(self.clock()) - self.pending_grace_s
            pending = pending_batches(self.db, made_before=cutoff)
            done = [b for b in (self._finish(p) for p in pending) if isinstance(b, AnchoredBatch)]
            retries = 0
            # Receipts served after the pass began are the next pass's: while reads keep
            # arriving, a pass that took them too never ended (POST /auditor/anchor ran past
            # any client's timeout under a steady stream of reads, one batch per loop).
            began = max(int(self.clock()), self.chain.head().timestamp)
            while True:
                _count, last_to = self.chain.access_log.batch_count(self.signer.address)
                batch = assign_batch(self.db, until=began - self.settle_s, not_before=last_to,
                                     max_size=self.max_batch)
                if batch is None:
                    return done
                anchored = self._finish(batch)
                if isinstance(anchored, AnchoredBatch):
                    done.append(anchored)
                    continue
                # Dissolved for its time range: re-made (an overlap at once, starting at the
                # contract's last toTime; too early once the chain's clock has moved on).
                if retries >= self.time_retries or self._stop.is_set():
                    log.warning("a receipt batch (%d..%d) was refused for its time range (%s) "
                                "%d times: left to the next pass", batch.from_time,
                                batch.to_time, anchored, retries + 1)
                    return done
                retries += 1
                if anchored == _TOO_EARLY:
                    self._stop.wait(self.retry_wait_s)

    def _finish(self, batch: PendingBatch) -> AnchoredBatch | str:
        """Anchor one pending batch (or record that the chain has it); if the contract refused
        its time range, the batch is dissolved and why is returned (``_TOO_EARLY`` when it
        ends after the chain's time, ``_OVERLAP`` when it starts before the last batch's end)."""
        log_agent = self.chain.access_log
        existing = log_agent.batch_of(batch.root)
        if existing is not None:
            tx_hash, block = self._find_anchor_tx(batch.root)
            mark_anchored(self.db, root=batch.root, tx_hash=tx_hash or bytes(32),
                          block_number=block or 0)
            return AnchoredBatch(batch.root, batch.count, batch.from_time, batch.to_time,
                                 tx_hash, block)
        _count, last_to = log_agent.batch_count(self.signer.address)
        if batch.from_time < last_to:
            dissolve(self.db, batch.root)  # re-made with from_time >= last_to
            return _OVERLAP
        try:
            made = log_agent.anchor(batch.root, batch.count, batch.from_time, batch.to_time,
                                    signer=self.signer)
        except ContractReverted as reverted:
            if reverted.name == "AccessLogRootExists":  # another anchorer was quicker
                tx_hash, block = self._find_anchor_tx(batch.root)
                mark_anchored(self.db, root=batch.root, tx_hash=tx_hash or bytes(32),
                              block_number=block or 0)
                return AnchoredBatch(batch.root, batch.count, batch.from_time, batch.to_time,
                                     tx_hash, block)
            if reverted.name == "AccessLogTimeRangeOverlap":  # another anchorer's batch first
                dissolve(self.db, batch.root)
                return _OVERLAP
            if reverted.name == "AccessLogInvalidTimeRange":  # toTime > the block's timestamp
                dissolve(self.db, batch.root)
                return _TOO_EARLY
            raise
        mark_anchored(self.db, root=batch.root, tx_hash=made.tx_hash or bytes(32),
                      block_number=made.block_number or 0)
        return AnchoredBatch(batch.root, batch.count, batch.from_time, batch.to_time,
                             made.tx_hash, made.block_number)

    def _find_anchor_tx(self, root: bytes) -> tuple[bytes | None, int | None]:
        """The tx that anchored ``root`` (from its ``ReceiptRootAnchored`` log), if findable."""
        contract = self.chain.access_log.contract
        try:
            logs = contract.events.ReceiptRootAnchored.get_logs(
                from_block=int(self.chain.deployment.deploy_block),
                argument_filters={"root": root})
        except (ValueError, ChainError):
            return None, None
        for entry in logs:
            return bytes(entry["transactionHash"]), int(entry["blockNumber"])
        return None, None

    # -- on a schedule ------------------------------------------------------------------------

    def _pass(self) -> None:
        self.run_once()


__all__ = ["AnchoredBatch", "Anchorer"]
