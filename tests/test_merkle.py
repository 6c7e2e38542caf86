"""Merkle trees of read receipts (kizuna.merkle)."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from kizuna.errors import InputError
from kizuna.merkle import MerkleTree, hash_pair, leaf_hash, process_proof, verify

words = st.binary(min_size=32, max_size=32)


@given(st.lists(words, min_size=1, max_size=70), st.data())
def test_every_leaf_proves_against_the_root(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.build(leaves)
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    assert verify(tree.proof(index), tree.root, leaves[index])


@given(st.lists(words, min_size=2, max_size=40, unique=True), st.data())
def test_a_proof_does_not_prove_another_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.build(leaves)
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    other = data.draw(words.filter(lambda w: w not in leaves))
    assert not verify(tree.proof(index), tree.root, other)


def test_pair_hash_is_commutative_and_sorted() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(a + b)


def test_odd_levels_carry_the_last_node_up() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(3)]
    tree = MerkleTree.build(leaves)
    assert tree.root == hash_pair(hash_pair(leaves[0], leaves[1]), leaves[2])
    assert tree.proof(2) == [hash_pair(leaves[0], leaves[1])]
    assert process_proof(tree.proof(0), leaves[0]) == tree.root


def test_single_leaf_is_its_own_root() -> None:
    leaf = leaf_hash(b"only")
    tree = MerkleTree.build([leaf])
    assert tree.root == leaf and tree.proof(0) == []


def test_leaf_hash_is_double_keccak() -> None:
    assert leaf_hash(b"x") == keccak(keccak(b"x"))


@pytest.mark.parametrize(
    ("leaves", "field"),
    [([], "leaves"), ([b"short"], "leaves[0]")],
)
def test_bad_leaves_name_the_field(leaves: list[bytes], field: str) -> None:
    with pytest.raises(InputError) as caught:
        MerkleTree.build(leaves)
    assert caught.value.field == field


def test_proof_of_a_missing_index_is_refused() -> None:
    tree = MerkleTree.build([leaf_hash(b"a")])
    with pytest.raises(InputError, match="no leaf 1"):
        tree.proof(1)
