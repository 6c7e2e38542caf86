"""Batch manifests: leaves, roots, proofs and hostile manifests (kizuna.batch)."""

from __future__ import annotations

import os

import pytest

from kizuna.batch import (
    MANIFEST_MAGIC,
    BatchLeaf,
    BatchManifest,
    pack_proof,
    proof_leads_to,
    unpack_proof,
)
from kizuna.errors import InputError
from kizuna.merkle import keccak
from kizuna.types import Commitment, RecordId, ScopeId


def _leaf(n: int) -> BatchLeaf:
    return BatchLeaf(RecordId(keccak(b"r%d" % n)), ScopeId(keccak(b"s%d" % (n % 3))),
                     Commitment(keccak(b"c%d" % n)))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64, 1000])
def test_every_leaf_proves_against_the_root_and_no_other(count: int) -> None:
    manifest = BatchManifest.of(_leaf(n) for n in range(count))
    for index, leaf in enumerate(manifest.leaves):
        proof = manifest.proof(index)
        assert proof_leads_to(manifest.root, leaf, proof)
        assert proof_leads_to(manifest.root, leaf, unpack_proof(pack_proof(proof)))
        forged = BatchLeaf(leaf.record_id, ScopeId(keccak(b"other scope")), leaf.commitment)
        assert not proof_leads_to(manifest.root, forged, proof)
        assert manifest.index_of(leaf.record_id) == index


def test_the_leaf_is_the_double_keccak_of_the_three_words() -> None:
    leaf = _leaf(5)
    encoded = bytes(leaf.record_id) + bytes(leaf.scope_id) + bytes(leaf.commitment)
    assert leaf.hash == keccak(keccak(encoded))
    # A one-leaf batch's root is the leaf itself (OpenZeppelin: an empty proof).
    assert BatchManifest.of([leaf]).root == leaf.hash


def test_the_manifest_round_trips_and_is_bound_to_its_root() -> None:
    manifest = BatchManifest.of(_leaf(n) for n in range(10))
    data = manifest.encode()
    assert data.startswith(MANIFEST_MAGIC) and len(data) == 12 + 10 * 96
    again = BatchManifest.decode(data, root=manifest.root)
    assert again.leaves == manifest.leaves and again.root == manifest.root
    other = BatchManifest.of(_leaf(n) for n in range(1, 11))
    with pytest.raises(InputError, match="lead to root"):
        BatchManifest.decode(data, root=other.root)


@pytest.mark.parametrize("data, reason", [
    (b"", "bad magic"),
    (b"KZBATCH\x02" + bytes(100), "bad magic"),
    (MANIFEST_MAGIC + b"\x00", "truncated"),
    (MANIFEST_MAGIC + (0).to_bytes(4, "big"), "declares 0 records"),
    (MANIFEST_MAGIC + (2).to_bytes(4, "big") + bytes(96), "holds 96 bytes"),
    (MANIFEST_MAGIC + (10**9).to_bytes(4, "big"), "declares 1000000000"),
    (MANIFEST_MAGIC + (1).to_bytes(4, "big") + bytes(96), "record_id"),
])
def test_hostile_manifests_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        BatchManifest.decode(data)


def test_a_record_id_twice_an_empty_batch_and_bad_words_are_refused() -> None:
    with pytest.raises(InputError, match=r"leaves\[2\].record_id"):
        BatchManifest.of([_leaf(0), _leaf(1), _leaf(0)])
    with pytest.raises(InputError, match="at least one"):
        BatchManifest.of([])
    with pytest.raises(InputError, match="scope_id"):
        BatchLeaf(RecordId(os.urandom(32)), ScopeId(b"short"), Commitment(bytes(32)))
    with pytest.raises(InputError, match="proof"):
        unpack_proof(bytes(33))
    with pytest.raises(InputError, match="not in the batch"):
        BatchManifest.of([_leaf(0)]).index_of(keccak(b"nope"))
