"""Merkle trees as in RFC 9162 (Certificate Transparency 2.0), section 2.1, with SHA-256.

``MTH`` of a list of leaf hashes, inclusion paths and their verification, and the compact range
("frontier") that appends leaves one at a time keeping O(log n) hashes. Leaf and node hashes carry
the 0x00 / 0x01 prefixes of the RFC, so a leaf can never be passed off as an inner node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(_NODE + left + right).digest()


def split_hashes(blob: bytes) -> list[bytes]:
    if len(blob) % HASH_SIZE:
        raise ValueError("a list of hashes is a multiple of 32 bytes")
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, bottom up.

    Pairing neighbours level by level and carrying an unpaired last node up unchanged builds the
    same left-balanced tree as the RFC's recursive split at the largest power of two below n.
    """
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        paired = [sha256(_NODE + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# The root of the leaves [lo, hi) of one tree: from a list in memory, or from stored frontiers.
RangeRoot = Callable[[int, int], bytes]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1, nearest sibling first."""
    return inclusion_path_of(index, len(leaves), lambda lo, hi: root(leaves[lo:hi]))


def inclusion_path_of(index: int, size: int, range_root: RangeRoot) -> list[bytes]:
    """PATH(m, D[n]) when subtree roots come from ``range_root`` (a log too large to hold)."""
    if not 0 <= index < size:
        raise IndexError("leaf index outside the tree")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    # Walk down from the root, collecting the sibling subtree at each split; reversed at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(range_root(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_root(lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves ``leaf`` (a leaf hash) sits under at ``index`` of a tree of
    ``size`` leaves (RFC 9162 section 2.1.3.2), or None when the path cannot fit such a tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def consistency_path(old_size: int, new_size: int, range_root: RangeRoot) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1: that the tree of ``new_size`` leaves extends the
    tree of its first ``old_size`` leaves."""
    if not 0 < old_size <= new_size:
        raise ValueError("a consistency proof goes from a smaller non-empty tree to a larger one")

    def subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [range_root(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, whole), range_root(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), range_root(lo, lo + k)]

    return subproof(old_size, 0, new_size, True)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the path
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The compact range of a growing tree: the roots of its perfect subtrees, largest first."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError("a frontier holds one node per set bit of its size")
        self.size = size
        self.nodes = list(nodes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        return cls(size, split_hashes(blob))

    def to_bytes(self) -> bytes:
        return b"".join(self.nodes)

    def append(self, leaf: bytes) -> None:
        node, s = leaf, self.size
        while s & 1:
            node = node_hash(self.nodes.pop(), node)
            s >>= 1
        self.nodes.append(node)
        self.size += 1

    def spans(self) -> list[tuple[int, int]]:
        """The leaf range [lo, hi) each node covers, in order."""
        out, lo = [], 0
        for bit in reversed(range(self.size.bit_length())):
            if self.size >> bit & 1:
                out.append((lo, lo + (1 << bit)))
                lo += 1 << bit
        return out

    def root_from(self, lo: int) -> bytes | None:
        """The root of the leaves [lo, size) when ``lo`` is where one of the nodes starts."""
        spans = self.spans()
        starts = [a for a, _b in spans]
        if lo not in starts:
            return None
        nodes = self.nodes[starts.index(lo) :]
        r = nodes[-1]
        for node in reversed(nodes[:-1]):
            r = node_hash(node, r)
        return r

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node, r)
        return r
