"""1 GB through encrypt -> decrypt as streams, with flat memory. Marked slow; CI runs it.

The plaintext is made on the fly (a 1 MiB random block, each copy stamped with its index so
reordering would show), the envelope flows straight from the encryptor into the decryptor, and
both ends are hashed. Nothing of size ~1 GB is ever held: tracemalloc's peak of Python-level
allocations (bytes objects, buffers -- where a leak or a join would show) must stay small, and
so must the growth of the process's peak RSS.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from kizuna.crypto import pre
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.diagnostics import peak_rss_mib
from kizuna.storage.envelope import EnvelopeReader, encrypt_stream
from kizuna.types import RecordId

GIB = 1 << 30
BLOCK = 1 << 20


def _plaintext(total: int, digest: hashlib._Hash) -> Iterator[bytes]:
    base = os.urandom(BLOCK)
    for index in range(total // BLOCK):
        block = index.to_bytes(8, "big") + base[8:]
        digest.update(block)
        yield block


def _rss_mib() -> float:
    return peak_rss_mib()  # Linux: KiB


@pytest.mark.slow
def test_one_gigabyte_streams_in_flat_memory() -> None:
    owner = pre.UmbralSecretKey.random()
    sent, received = hashlib.sha256(), hashlib.sha256()
    rss_before = _rss_mib()
    tracemalloc.start()
    try:
        hasher = CommitmentHasher()
        envelope = hasher.tap(
            encrypt_stream(
                _plaintext(GIB, sent),
                owner_key=owner.public_key,
                record_id=RecordId(os.urandom(32)),
                content_type="application/dicom",
            )
        )
        reader = EnvelopeReader(envelope)
        total = 0
        for chunk in reader.decrypt(reader.header.unwrap_for_owner(owner)):
            received.update(chunk)
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == GIB
    assert received.digest() == sent.digest()
    assert hasher.size == reader.header.size + GIB + 16 * (GIB // BLOCK)
    assert len(hasher.commitment) == 32
    assert peak < 16 * BLOCK, f"peak traced allocation {peak / BLOCK:.1f} MiB"
    assert _rss_mib() - rss_before < 64, "peak RSS grew by more than 64 MiB"
