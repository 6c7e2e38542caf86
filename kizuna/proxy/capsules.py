"""``CapsuleCache``: a record's Umbral capsule, read once from the content store.

The proxy needs only the capsule of a record's envelope, which sits in the preamble: the first
``MAX_PREAMBLE_SIZE`` bytes at most (``kizuna.storage.envelope.read_header``); the rest of the
blob is never fetched. Content is addressed by CID, so a CID's capsule never changes and the
cache needs no invalidation (only a size bound).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kizuna.crypto import pre
from kizuna.errors import IntegrityError
from kizuna.storage.envelope import read_header
from kizuna.storage.store import ContentStore
from kizuna.types import RecordId


class CapsuleCache:
    """Capsules by CID, LRU-bounded, shared by the read path's threads."""

    def __init__(self, store: ContentStore, *, max_entries: int = 50_000) -> None:
        self.store = store
        self.max_entries = max_entries
        self._cache: OrderedDict[str, pre.Capsule] = OrderedDict()
        self._lock = threading.Lock()

    def capsule(self, cid: str, *, record_id: RecordId) -> pre.Capsule:
        """The capsule of the envelope under ``cid``; ``IntegrityError`` if that envelope is not
        the one of ``record_id`` (the header binds the record id), store errors as raised."""
        with self._lock:
            cached = self._cache.get(cid)
            if cached is not None:
                self._cache.move_to_end(cid)
                return cached
        with self.store.get(cid) as stream:
            header = read_header(stream)
        if bytes(header.record_id) != bytes(record_id):
            raise IntegrityError(f"the envelope under {cid} is not record 0x{record_id.hex()}")
        capsule = header.capsule
        with self._lock:
            self._cache[cid] = capsule
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return capsule


__all__ = ["CapsuleCache"]
