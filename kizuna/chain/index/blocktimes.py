"""Block timestamps, kept by block hash across requests.

A block's hash commits to its header, timestamp included, so a time kept under a hash can
never go stale: after a reorg the block at a height has another hash and is simply not found.
Keying by number would serve the replaced block's time. The cache is bounded (least recently
used out) since a long-running service sees an unbounded number of blocks.

The audit history (:mod:`kizuna.services.audit.history`) asks for the time of every block
holding an event it reports; without this, each ``GET /auditor/log`` asked the node again for
every block of a history that only grows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from kizuna.chain.models import BlockRef

BLOCK_TIMES_MAX = 65_536
"""How many block times a :class:`BlockTimes` keeps (about 4 MB)."""


class BlockTimes:
    """Block hash -> timestamp, least recently used out past ``max_size``; misses are asked
    of the node through ``fetch`` (a block number -> the node's block at that height)."""

    def __init__(self, fetch: Callable[[int], BlockRef], *,
                 max_size: int = BLOCK_TIMES_MAX) -> None:
        self._fetch = fetch
        self._max = max_size
        self._times: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()  # the API reads from several threads
        self.fetched = 0
        """How many blocks were asked of the node (for tests and metrics)."""

    def __len__(self) -> int:
        return len(self._times)

    def remember(self, block: BlockRef) -> None:
        """Keep ``block``'s time (a block the caller already holds, e.g. a sync's head)."""
        with self._lock:
            self._times[bytes(block.hash)] = int(block.timestamp)
            self._times.move_to_end(bytes(block.hash))
            while len(self._times) > self._max:
                self._times.popitem(last=False)

    def time(self, number: int, block_hash: bytes | None = None) -> int:
        """The timestamp of block ``number``: kept when ``block_hash`` is known and was seen
        before, else asked of the node by number. When the node's block at ``number`` has
        another hash than ``block_hash`` (a reorg since the caller read it), its time is
        returned as the node has it now (what a lookup by number always answered) and kept
        under its own hash only."""
        if block_hash is not None:
            with self._lock:
                known = self._times.get(bytes(block_hash))
                if known is not None:
                    self._times.move_to_end(bytes(block_hash))
                    return known
        block = self._fetch(number)
        self.fetched += 1
        self.remember(block)
        return int(block.timestamp)
