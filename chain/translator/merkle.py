"""Poseidon Merkle trees over felts, encoding ``keiko.merkle.v1``.

* **Leaves** are felts in ``[1, P)`` (see :mod:`chain.translator.leaves`); 0 is reserved.
* **Nodes**: ``parent = poseidon_hash(left, right)`` (Starknet's two-input Poseidon,
  ``hades_permutation(left, right, 2)[0]``; Cairo: the first output of
  ``core::poseidon::hades_permutation(left, right, 2)``). Pairs are **positional**, not
  sorted: the order of a pair is given by the position of the node.
* **Odd levels**: a level with an odd number of nodes pairs its last node with the felt
  ``0``: ``parent = poseidon_hash(last, 0)``. Nodes are never duplicated (so two leaf
  lists cannot share a root the way Bitcoin's duplication allows), and since 0 is never a
  leaf, padding cannot be mistaken for data.
* **Depth** of a tree of ``n`` leaves is ``ceil(log2(n))`` (0 for one leaf, whose root is
  the leaf itself); every proof in the tree has exactly that many siblings.
* **Proof**: ``(leaf index, siblings from the leaf level upwards)``. Bit ``k`` of the index
  (least significant first) says on which side the running node sits at level ``k``::

      node = leaf
      for k, sibling in enumerate(siblings):
          if (index >> k) & 1 == 0:  node = poseidon_hash(node, sibling)
          else:                      node = poseidon_hash(sibling, node)
      ok = node == root and index < 2 ** len(siblings)

  When the leaf count ``n`` is known (the chain stores it with the root), a verifier also
  requires ``index < n`` and ``len(siblings) == ceil(log2(n))``.
* The empty tree does not exist: building one raises ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.translator.felts import check_felt, is_felt
from chain.translator.poseidon import hash_pair, hash_pair_unchecked
from services.kit.errors import ValidationError

TREE_ENCODING = "keiko.merkle.v1"
PAD = 0
MAX_DEPTH = 32
MAX_LEAVES = 2**MAX_DEPTH


def depth_for(leaf_count: int) -> int:
    """Number of levels above the leaves (= proof length) for ``leaf_count`` leaves."""
    if type(leaf_count) is not int or leaf_count < 1:
        raise ValidationError("leaf_count", "must be a positive integer")
    if leaf_count > MAX_LEAVES:
        raise ValidationError("leaf_count", f"at most 2**{MAX_DEPTH} leaves")
    return (leaf_count - 1).bit_length()


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Everything needed to show one leaf is in the tree with ``root``."""

    leaf: int
    index: int
    siblings: tuple[int, ...]
    root: int
    leaf_count: int

    def verify(self) -> bool:
        return verify_inclusion(
            self.leaf, self.index, self.siblings, self.root, leaf_count=self.leaf_count
        )


class MerkleTree:
    """An immutable Poseidon Merkle tree; all levels are kept for O(log n) proofs."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[int]) -> None:
        items = list(leaves)
        if not items:
            raise ValidationError("leaves", "a Merkle tree needs at least one leaf")
        if len(items) > MAX_LEAVES:
            raise ValidationError("leaves", f"at most 2**{MAX_DEPTH} leaves")
        for i, leaf in enumerate(items):
            check_felt(leaf, f"leaves[{i}]")
            if leaf == PAD:
                raise ValidationError(f"leaves[{i}]", "0 is reserved for padding")
        levels = [items]
        level = items
        while len(level) > 1:
            if len(level) % 2:
                level = [*level, PAD]
            level = [hash_pair_unchecked(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            levels.append(level)
        self._levels: tuple[tuple[int, ...], ...] = tuple(tuple(lv) for lv in levels)

    @property
    def root(self) -> int:
        return self._levels[-1][0]

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0])

    @property
    def depth(self) -> int:
        return len(self._levels) - 1

    @property
    def leaves(self) -> tuple[int, ...]:
        return self._levels[0]

    def siblings(self, index: int) -> tuple[int, ...]:
        if type(index) is not int or not 0 <= index < self.leaf_count:
            raise ValidationError("index", f"must be in [0, {self.leaf_count})")
        out: list[int] = []
        position = index
        for level in self._levels[:-1]:
            sibling = position ^ 1
            out.append(level[sibling] if sibling < len(level) else PAD)
            position //= 2
        return tuple(out)

    def proof(self, index: int) -> InclusionProof:
        siblings = self.siblings(index)
        return InclusionProof(
            leaf=self._levels[0][index],
            index=index,
            siblings=siblings,
            root=self.root,
            leaf_count=self.leaf_count,
        )

    def proofs(self) -> list[InclusionProof]:
        return [self.proof(i) for i in range(self.leaf_count)]

    def __repr__(self) -> str:
        return f"MerkleTree(leaf_count={self.leaf_count}, root={hex(self.root)})"


def merkle_root(leaves: Sequence[int]) -> int:
    return MerkleTree(leaves).root


def compute_root(leaf: int, index: int, siblings: Sequence[int]) -> int:
    """Fold a proof up to the root it implies (no range checks on ``index``)."""
    node = check_felt(leaf, "leaf")
    for k, sibling in enumerate(siblings):
        check_felt(sibling, f"siblings[{k}]")
        node = hash_pair(node, sibling) if (index >> k) & 1 == 0 else hash_pair(sibling, node)
    return node


def verify_inclusion(
    leaf: int,
    index: int,
    siblings: Sequence[int],
    root: int,
    *,
    leaf_count: int | None = None,
) -> bool:
    """True iff ``leaf`` sits at ``index`` of a ``keiko.merkle.v1`` tree with ``root``.

    Values of the wrong type raise ``ValidationError``; anything well-typed that does not
    prove inclusion (out-of-range felts or index, wrong length, wrong root) is ``False``.
    With ``leaf_count`` (as anchored on chain) the index and proof length are pinned too.
    """
    for name, value in (("leaf", leaf), ("index", index), ("root", root)):
        if type(value) is not int:
            raise ValidationError(name, "must be an integer")
    if isinstance(siblings, str | bytes) or not isinstance(siblings, Sequence):
        raise ValidationError("siblings", "must be a sequence of felts")
    path = list(siblings)
    for k, sibling in enumerate(path):
        if type(sibling) is not int:
            raise ValidationError(f"siblings[{k}]", "must be an integer")
    if len(path) > MAX_DEPTH or not 0 <= index < 2 ** len(path):
        return False
    if leaf == PAD or not is_felt(leaf) or not is_felt(root):
        return False
    if not all(is_felt(s) for s in path):
        return False
    if leaf_count is not None:
        if type(leaf_count) is not int or not 1 <= leaf_count <= MAX_LEAVES:
            return False
        if index >= leaf_count or len(path) != depth_for(leaf_count):
            return False
    return compute_root(leaf, index, path) == root
