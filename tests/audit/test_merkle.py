"""The Merkle tree helpers against RFC 9162's recursive definitions."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.audit import merkle


def _mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) written exactly as RFC 9162 section 2.1.1 defines it."""
    n = len(leaves)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"event {i}".encode()) for i in range(n)]


def test_root_and_frontier_match_the_rfc_definition_for_every_size_up_to_70() -> None:
    frontier = merkle.Frontier()
    for n in range(70):
        leaves = _leaves(n)
        assert merkle.root(leaves) == _mth(leaves)
        assert frontier.root() == _mth(leaves)
        restored = merkle.Frontier.from_bytes(frontier.size, frontier.to_bytes())
        assert restored.root() == frontier.root()
        frontier.append(merkle.leaf_hash(f"event {n}".encode()))


def test_known_answer_for_a_two_leaf_tree() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert a == sha256(b"\x00a").digest()
    assert merkle.root([a, b]) == sha256(b"\x01" + a + b).digest()


@given(st.integers(min_value=1, max_value=80), st.data())
def test_every_inclusion_path_proves_its_leaf_and_only_it(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root = merkle.root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = merkle.inclusion_path(leaves, index)

    assert merkle.root_from_inclusion(leaves[index], index, n, path) == root
    assert merkle.root_from_inclusion(merkle.leaf_hash(b"forged"), index, n, path) != root
    if n > 1:
        other = (index + 1) % n
        assert merkle.root_from_inclusion(leaves[index], other, n, path) != root
    assert merkle.root_from_inclusion(leaves[index], index, n, [*path, bytes(32)]) is None


@pytest.mark.parametrize("new_size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_consistency_proofs_between_every_pair_of_sizes(new_size: int) -> None:
    leaves = [merkle.leaf_hash(b"checkpoint %d" % i) for i in range(new_size)]
    new_root = merkle.root(leaves)
    for old_size in range(1, new_size + 1):
        old_root = merkle.root(leaves[:old_size])
        proof = merkle.consistency_path(old_size, new_size, lambda lo, hi: merkle.root(leaves[lo:hi]))
        assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
        assert not merkle.verify_consistency(old_size, new_size, merkle.leaf_hash(b"forged"), new_root, proof)
        if proof:
            bent = [*proof[:-1], merkle.leaf_hash(b"bent")]
            assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, bent)


def test_frontiers_give_the_root_of_their_trailing_nodes() -> None:
    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(13)]
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.spans() == [(0, 8), (8, 12), (12, 13)]
    assert frontier.root_from(0) == merkle.root(leaves)
    assert frontier.root_from(8) == merkle.root(leaves[8:])
    assert frontier.root_from(4) is None
