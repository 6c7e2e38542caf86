"""Garbage collection of the content store: blocks no pinned root reaches go.

An upload the service refuses (a quota, a bad signature, the chain saying no) unpins its
envelope; nothing else would ever delete those blocks. :class:`StoreCollector` runs
:func:`collect` every ``store_gc_interval_s`` in the service (started with the API), and
``kizuna store gc`` runs it once.

* The embedded store collects itself (:meth:`EmbeddedStore.gc`): every unpinned block older
  than the grace period (``store_gc_grace_s``; a put renews the blocks it reuses, see
  :mod:`kizuna.storage.embedded`) is deleted.
* An IPFS node collects its own repository: Kubo deletes unpinned blocks when it runs with
  ``--enable-gc`` or on ``ipfs repo gc``. Kizuna only pins and unpins there, so
  :func:`collect` does nothing for it (and says so): the node may hold other applications'
  unpinned content that is not Kizuna's to delete.
"""

from __future__ import annotations

import logging

from kizuna.background import PeriodicTask
from kizuna.storage.embedded import EmbeddedStore, GcResult
from kizuna.storage.store import ContentStore

log = logging.getLogger(__name__)

NODE_COLLECTS = ("the IPFS node collects its own unpinned blocks (run it with --enable-gc, or "
                 "`ipfs repo gc`): Kizuna only unpins there")


def collect(store: ContentStore, *, grace_s: float) -> GcResult | None:
    """Collect ``store``'s unpinned blocks older than ``grace_s``; ``None`` when the store is
    not Kizuna's to collect (an IPFS node: :data:`NODE_COLLECTS`)."""
    if isinstance(store, EmbeddedStore):
        return store.gc(grace_s=grace_s)
    return None


class StoreCollector(PeriodicTask):
    """:func:`collect` every ``interval_s`` seconds on a background thread."""

    thread_name = "kizuna-store-gc"

    def __init__(self, store: ContentStore, *, interval_s: float, grace_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.store = store
        self.grace_s = grace_s
        self.last_result: GcResult | None = None

    def _pass(self) -> None:
        result = collect(self.store, grace_s=self.grace_s)
        if result is None:
            return
        self.last_result = result
        if result.blocks_removed:
            log.info("store gc: %d unpinned blocks removed, %d bytes freed (%d kept, %d within "
                     "the grace period)", result.blocks_removed, result.bytes_freed,
                     result.blocks_kept, result.blocks_spared)


__all__ = ["NODE_COLLECTS", "StoreCollector", "collect"]
