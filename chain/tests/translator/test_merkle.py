"""Poseidon Merkle trees keiko.merkle.v1: vectors, properties, bad input."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

# cairo-lang's pure-Python Poseidon is the reference; its module needs no chain.cairo_compat.
from starkware.cairo.common.poseidon_hash import poseidon_hash as ref_hash_pair

from chain.translator.felts import FELT_PRIME
from chain.translator.merkle import (
    MerkleTree,
    compute_root,
    depth_for,
    merkle_root,
    verify_inclusion,
)
from services.kit.errors import ValidationError

leaf_values = st.integers(min_value=1, max_value=FELT_PRIME - 1)
leaf_lists = st.lists(leaf_values, min_size=1, max_size=40)
# Distinct leaves: with duplicates, "leaf x at another index" can be genuinely true.
unique_leaf_lists = st.lists(leaf_values, min_size=1, max_size=40, unique=True)


def H(a: int, b: int) -> int:
    return ref_hash_pair(a, b)


def test_small_trees_match_the_documented_construction() -> None:
    a, b, c, d, e = 11, 22, 33, 44, 55
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == H(a, b)
    assert merkle_root([a, b, c]) == H(H(a, b), H(c, 0))
    assert merkle_root([a, b, c, d]) == H(H(a, b), H(c, d))
    assert merkle_root([a, b, c, d, e]) == H(H(H(a, b), H(c, d)), H(H(e, 0), 0))
    assert merkle_root([1, 2]) == 0x5D44A3DECB2B2E0CC71071F7B802F45DD792D064F0FC7316C46514F70F9891A


def test_proofs_for_a_small_tree() -> None:
    a, b, c = 11, 22, 33
    tree = MerkleTree([a, b, c])
    assert tree.depth == 2 and tree.leaf_count == 3
    assert tree.siblings(0) == (b, H(c, 0))
    assert tree.siblings(2) == (0, H(a, b))
    proof = tree.proof(2)
    assert proof.leaf == c and proof.root == tree.root and proof.verify()


def test_positional_not_sorted() -> None:
    assert merkle_root([11, 22]) != merkle_root([22, 11])


def test_depth_for() -> None:
    assert [depth_for(n) for n in (1, 2, 3, 4, 5, 8, 9, 1024, 1025)] == [
        0,
        1,
        2,
        2,
        3,
        3,
        4,
        10,
        11,
    ]
    for bad in (0, -1, True):
        with pytest.raises(ValidationError):
            depth_for(bad)


def test_empty_tree_and_bad_leaves_rejected() -> None:
    with pytest.raises(ValidationError):
        MerkleTree([])
    with pytest.raises(ValidationError):
        MerkleTree([1, 0])  # 0 is reserved for padding
    with pytest.raises(ValidationError):
        MerkleTree([1, FELT_PRIME])
    with pytest.raises(ValidationError):
        MerkleTree([1, "2"])  # type: ignore[list-item]
    tree = MerkleTree([1, 2, 3])
    for bad in (-1, 3, True):
        with pytest.raises(ValidationError):
            tree.proof(bad)


def test_verify_inclusion_type_errors_and_false_cases() -> None:
    tree = MerkleTree([5, 6, 7])
    proof = tree.proof(1)
    with pytest.raises(ValidationError):
        verify_inclusion("6", 1, proof.siblings, tree.root)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        verify_inclusion(6, 1, "ab", tree.root)  # type: ignore[arg-type]
    assert not verify_inclusion(6, 1, [*proof.siblings, 0], tree.root)
    assert not verify_inclusion(6, -1, proof.siblings, tree.root)
    assert not verify_inclusion(6, 4, proof.siblings, tree.root)
    assert not verify_inclusion(6, 1, proof.siblings, tree.root + FELT_PRIME)
    assert not verify_inclusion(0, 1, proof.siblings, tree.root)
    # leaf_count pins the index and the proof length
    assert verify_inclusion(6, 1, proof.siblings, tree.root, leaf_count=3)
    assert not verify_inclusion(6, 1, proof.siblings, tree.root, leaf_count=5)
    # the padding slot (index 3) of a 3-leaf tree is not a leaf
    pad_proof = (tree.siblings(2)[0], tree.siblings(2)[1])
    assert compute_root(7, 2, pad_proof) == tree.root
    assert not verify_inclusion(0, 3, (7, pad_proof[1]), tree.root, leaf_count=3)


@settings(max_examples=50, deadline=None)
@given(leaf_lists)
def test_every_leaf_proof_verifies(leaves: list[int]) -> None:
    tree = MerkleTree(leaves)
    assert tree.depth == depth_for(len(leaves))
    for i, leaf in enumerate(leaves):
        siblings = tree.siblings(i)
        assert len(siblings) == tree.depth
        assert verify_inclusion(leaf, i, siblings, tree.root)
        assert verify_inclusion(leaf, i, siblings, tree.root, leaf_count=len(leaves))


@settings(max_examples=80, deadline=None)
@given(unique_leaf_lists, st.data())
def test_any_change_breaks_the_proof(leaves: list[int], data: st.DataObject) -> None:
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1), label="index")
    leaf, siblings, root = leaves[i], list(tree.siblings(i)), tree.root

    other_leaf = data.draw(leaf_values, label="other leaf")
    assume(other_leaf != leaf)
    assert not verify_inclusion(other_leaf, i, siblings, root)

    other_root = data.draw(st.integers(0, FELT_PRIME - 1), label="other root")
    assume(other_root != root)
    assert not verify_inclusion(leaf, i, siblings, other_root)

    if siblings:
        k = data.draw(st.integers(0, len(siblings) - 1), label="sibling")
        changed = data.draw(st.integers(0, FELT_PRIME - 1), label="new sibling")
        assume(changed != siblings[k])
        tampered = [*siblings]
        tampered[k] = changed
        assert not verify_inclusion(leaf, i, tampered, root)

        other_index = data.draw(st.integers(0, 2 ** len(siblings) - 1), label="other index")
        assume(other_index != i)
        assert not verify_inclusion(leaf, other_index, siblings, root)


@settings(max_examples=30, deadline=None)
@given(leaf_lists, leaf_lists)
def test_different_leaf_lists_have_different_roots(a: list[int], b: list[int]) -> None:
    assume(a != b)
    assert merkle_root(a) != merkle_root(b)


def test_tree_of_1024_leaves_all_proofs_verify() -> None:
    leaves = list(range(1, 1025))
    tree = MerkleTree(leaves)
    assert tree.depth == 10
    proofs = tree.proofs()
    assert all(p.verify() for p in proofs[::97])
    assert repr(tree).startswith("MerkleTree(leaf_count=1024")
