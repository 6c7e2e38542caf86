"""Store garbage collection: the grace period (blocks written or reused recently are spared),
puts renewing the blocks they reuse, and the service's periodic collector."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.gc import StoreCollector, collect
from kizuna.storage.ipfs import IpfsStore


def _age(store: EmbeddedStore, seconds: float) -> None:
    """Make every block look ``seconds`` old."""
    then = time.time() - seconds
    for block in (store.root / "blocks").rglob("*"):
        if block.is_file():
            os.utime(block, (then, then))


def test_the_grace_period_spares_recent_unpinned_blocks(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    kept = store.put(os.urandom(300 * 1024))
    dropped = store.put(os.urandom(300 * 1024))
    store.unpin(dropped)
    spared = store.gc(grace_s=60)
    assert spared.blocks_removed == 0 and spared.blocks_spared >= 3
    assert store.has(dropped)
    _age(store, 120)
    done = store.gc(grace_s=60)
    assert done.blocks_removed == spared.blocks_spared and done.blocks_spared == 0
    assert not store.has(dropped) and store.has(kept)


def test_a_put_renews_the_blocks_it_reuses(tmp_path: Path) -> None:
    """A refused upload unpins an envelope; a concurrent upload of the same bytes reuses its
    blocks and re-pins them only after its chain step: gc within the grace must not take them."""
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    data = os.urandom(300 * 1024)
    cid = store.put(data, pin=False)
    _age(store, 3600)
    again = store.put(data, pin=False)  # the concurrent upload (not pinned yet)
    assert again == cid
    assert store.gc(grace_s=60).blocks_removed == 0
    store.pin(cid)
    assert b"".join(store.get(cid)) == data


def test_the_collector_runs_gc_periodically(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    dropped = store.put(b"refused upload")
    store.unpin(dropped)
    with StoreCollector(store, interval_s=0.05, grace_s=0) as collector:
        deadline = time.monotonic() + 10
        while store.has(dropped) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert not store.has(dropped)
    assert collector.last_result is not None and collector.last_error is None


def test_an_ipfs_node_collects_itself(tmp_path: Path) -> None:
    node = IpfsStore("http://127.0.0.1:9")  # never contacted
    assert collect(node, grace_s=0) is None
    node.close()
