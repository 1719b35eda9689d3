"""A Merkle tree with RFC 9162 hashing: roots, inclusion and consistency proofs, and their checks.

Hashing (RFC 9162 §2.1.1, unchanged from RFC 6962): a leaf is ``SHA-256(0x00 || data)``, an inner
node ``SHA-256(0x01 || left || right)``, and the root of ``n`` leaves splits at ``k``, the largest
power of two below ``n``. The empty tree's root is ``SHA-256("")``.

``MerkleTree`` keeps the complete subtrees level by level (``levels[j][i]`` is the root of leaves
``[i·2^j, (i+1)·2^j)``), so appending is amortised O(1) and any proof costs O(log² n) hashes: every
subtree the RFC's recursion names is either such a complete, aligned subtree or the right edge.
The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and return a bool (they never
raise on bad input: a malformed proof is simply not valid).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of one leaf's bytes, domain-separated with 0x00."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an inner node, domain-separated with 0x01."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaf hashes; proofs for any prefix size up to ``size``."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append a leaf's bytes; returns its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h: bytes) -> int:
        """Append an already hashed leaf; returns its index."""
        levels = self._levels
        levels[0].append(h)
        index = len(levels[0]) - 1
        j, i = 0, index
        # Each time the new node completes a pair, its parent subtree is complete too.
        while i & 1:
            if j + 1 == len(levels):
                levels.append([])
            row = levels[j]
            levels[j + 1].append(node_hash(row[i - 1], row[i]))
            j, i = j + 1, i >> 1
        return index

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        self._check_size(n)
        return EMPTY_ROOT if n == 0 else self._mth(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), bottom-up."""
        n = self.size if size is None else size
        self._check_size(n)
        if not 0 <= index < n:
            raise ValueError(f"leaf {index} is not in a tree of size {n}")
        return self._path(index, 0, n)

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:size])."""
        n = self.size if size is None else size
        self._check_size(n)
        if not 0 <= old_size <= n:
            raise ValueError(f"cannot prove size {old_size} consistent with size {n}")
        if old_size in (0, n):
            return []
        return self._subproof(old_size, 0, n, True)

    # -- internals -------------------------------------------------------------------------

    def _check_size(self, n: int) -> None:
        if not 0 <= n <= self.size:
            raise ValueError(f"tree size {n} is beyond the {self.size} leaves held")

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            # A complete, aligned subtree: stored.
            return self._levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self._mth(start, start + k)]

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self._mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self._mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._mth(start, start + k)]


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root over a list of leaf hashes (level by level; the odd node is carried up)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is ``leaf`` (a leaf hash) at ``index`` of the tree with ``root``?"""
    # 1. The index must be inside the tree.
    if not 0 <= index < size:
        return False
    # 2. Walk up from the leaf; fn tracks our position, sn the last position at this level.
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A right-edge node without a sibling is carried up: skip those levels.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # 3. The proof must end exactly at the root.
    return sn == 0 and r == root


def verify_consistency(old_size: int, size: int, old_root: bytes, root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (size, root) an append-only extension of (old_size, old_root)?"""
    # 1. Sizes in order; equal sizes need equal roots and no proof; an empty old tree is a prefix of all.
    if not 0 <= old_size <= size:
        return False
    if old_size == size:
        return not proof and old_root == root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    # 2. When the old tree is a complete subtree, its root is the proof's implicit first node.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. Skip the levels where the old tree's last node is a right child.
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 4. Rebuild both roots at once.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # 5. Both must match and the walk must end at the top.
    return sn == 0 and fr == old_root and sr == root
