"""Batch registration on the wire: envelopes to stage, what was staged, a registered batch, and
the framing of ``POST /patient/staged`` (docs/service.md "Batches")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.types import Cid, Commitment, RecordId, ScopeId

FRAME_HEAD = 32 + 32 + 8 + 8
"""record id ‖ scope id ‖ epoch ‖ length."""


@dataclass(frozen=True, slots=True)
class StagedEnvelope:
    """One envelope to stage: its record id, blinded scope id, the key epoch it is encrypted
    to, and its bytes (or its chunks, read once, as a request body streams)."""

    record_id: RecordId
    scope_id: ScopeId
    epoch: int
    envelope: bytes | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class StagedInfo:
    """A staged envelope: what a batch leaf needs (id, commitment) and where it is stored."""

    record_id: RecordId
    commitment: Commitment
    cid: Cid
    size: int


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A registered batch: its root, how many records, the block and transaction."""

    root: bytes
    count: int
    block_number: int
    tx_hash: bytes


def frame_envelopes(items: Iterable[StagedEnvelope]) -> Iterator[bytes]:
    """The body of ``POST /patient/staged`` for ``items`` (envelopes given as bytes)."""
    for item in items:
        if not isinstance(item.envelope, bytes | bytearray | memoryview):
            raise TypeError("frame_envelopes needs each envelope as bytes")
        data = bytes(item.envelope)
        yield (bytes(item.record_id) + bytes(item.scope_id)
               + checked_epoch("epoch", item.epoch).to_bytes(8, "big")
               + len(data).to_bytes(8, "big"))
        yield data
