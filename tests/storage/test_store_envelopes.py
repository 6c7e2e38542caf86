"""Envelopes through the content stores, straight down the data path: the patient seals a record,
the store names it, and the same ciphertext comes back, decrypts, and matches its commitment —
from the embedded store, and through a real IPFS node (marked ipfs)."""

from __future__ import annotations

import io
import os
import threading

import pytest
from store_data import CHUNK, pseudo_random_bytes

from kizuna.crypto import pre
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.errors import IntegrityError
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import decrypt_stream, encrypt_stream
from kizuna.storage.ipfs import IpfsStore
from kizuna.storage.store import ContentStore
from kizuna.storage.unixfs import ContentIntegrityError, compute_cid
from kizuna.types import RecordId

RECORDS = [
    ("application/fhir+json", b'{"resourceType":"Observation","status":"final"}' * 300),
    ("application/pdf", b"%PDF-1.7\n" + pseudo_random_bytes(3 * CHUNK + 5, seed=21)),
    ("application/dicom", b"\0" * 128 + b"DICM" + pseudo_random_bytes(CHUNK, seed=22)),
    ("image/png", b""),
]


def _seal_and_store(
    store: ContentStore, owner: pre.UmbralSecretKey, content_type: str, plaintext: bytes
) -> tuple[str, bytes]:
    hasher = CommitmentHasher()
    cid = store.put(
        hasher.tap(
            encrypt_stream(
                io.BytesIO(plaintext),
                owner_key=owner.public_key,
                record_id=RecordId(os.urandom(32)),
                content_type=content_type,
            )
        )
    )
    return cid, hasher.commitment


def _round_trip(store: ContentStore) -> None:
    owner = pre.UmbralSecretKey.random()
    for content_type, plaintext in RECORDS:
        cid, commitment = _seal_and_store(store, owner, content_type, plaintext)
        with store.get(cid) as stream:
            got = b"".join(decrypt_stream(stream, owner_sk=owner, expected_commitment=commitment))
        assert got == plaintext, content_type
        with store.get(cid) as stream:
            ciphertext = stream.read()
        assert compute_cid(ciphertext).text() == cid
        if plaintext:
            assert plaintext[:64] not in ciphertext  # the store holds ciphertext only


def test_envelopes_round_trip_through_the_embedded_store(embedded: EmbeddedStore) -> None:
    _round_trip(embedded)


@pytest.mark.ipfs
def test_envelopes_round_trip_through_the_ipfs_node(ipfs_store: IpfsStore) -> None:
    _round_trip(ipfs_store)


def test_a_block_tampered_in_the_store_never_decrypts(embedded: EmbeddedStore) -> None:
    owner = pre.UmbralSecretKey.random()
    cid, _ = _seal_and_store(embedded, owner, "application/pdf", b"%PDF" * 1000)
    path = embedded.root / "blocks" / cid[-3:-1] / cid
    damaged = bytearray(path.read_bytes())
    damaged[-20] ^= 1
    path.write_bytes(bytes(damaged))
    # The store refuses first (verify on read); the envelope would refuse too.
    with pytest.raises(ContentIntegrityError), embedded.get(cid) as stream:
        b"".join(decrypt_stream(stream, owner_sk=owner))
    with pytest.raises(IntegrityError):
        b"".join(decrypt_stream(io.BytesIO(bytes(damaged)), owner_sk=owner))


def test_concurrent_puts_of_the_same_and_different_content(embedded: EmbeddedStore) -> None:
    shared = pseudo_random_bytes(4 * CHUNK + 1, seed=31)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            data = shared if index % 2 == 0 else shared + bytes([index])
            results[index] = embedded.put(data)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({results[i] for i in range(0, 8, 2)}) == 1
    for index, cid in results.items():
        expected = shared if index % 2 == 0 else shared + bytes([index])
        assert embedded.get(cid).read() == expected
    assert list((embedded.root / "tmp").iterdir()) == []
