"""Merkle tree hashing and proofs of RFC 6962 (Certificate Transparency), as revised by RFC 9162.

Hashing follows RFC 6962 §2.1: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``, the empty tree ``SHA-256("")``. A tree of ``n`` leaves
splits at ``k``, the largest power of two smaller than ``n``.

Proof *generation* is the recursive ``PATH`` and ``SUBPROOF`` of RFC 6962 §2.1.1 and §2.1.2,
written against a ``SubtreeHash`` callback ``(start, stop) -> MTH(D[start:stop])`` so the
same code serves an in-memory list of leaves (:func:`list_subtree_hasher`) and the audit
log's stored perfect-subtree hashes. Proof *verification* is the iterative algorithm of
RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency). Verifiers return ``False``
rather than raising: every malformed input (wrong lengths, sizes, garbage) is a rejection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""``(start, stop) -> MTH(D[start:stop])`` for ``0 <= start < stop <= size``."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes, in one left-to-right pass (O(n), O(log n) memory)."""
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes strictly decreasing
    for leaf in leaves:
        size, digest = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, digest = left_size + size, node_hash(left, digest)
        stack.append((size, digest))
    return fold_frontier([digest for _, digest in stack])


def fold_frontier(frontier: Sequence[bytes]) -> bytes:
    """Root of a tree given its perfect subtrees, largest (leftmost) first (RFC 6962 §2.1)."""
    if not frontier:
        return EMPTY_ROOT
    digest = frontier[-1]
    for left in reversed(frontier[:-1]):
        digest = node_hash(left, digest)
    return digest


def list_subtree_hasher(leaves: Sequence[bytes]) -> SubtreeHash:
    """A :data:`SubtreeHash` over an in-memory list of leaf hashes (recomputes each range)."""

    def subtree(start: int, stop: int) -> bytes:
        return root_from_leaves(leaves[start:stop])

    return subtree


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 §2.1.1 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    start, stop = 0, size
    while stop - start > 1:
        k = split_point(stop - start)
        if index - start < k:
            proof.append(subtree(start + k, stop))
            stop = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
    proof.reverse()  # PATH lists the deepest sibling first
    return proof


def consistency_proof(size1: int, size2: int, subtree: SubtreeHash) -> list[bytes]:
    """Proof that tree ``size1`` is a prefix of tree ``size2`` (RFC 6962 §2.1.2 SUBPROOF)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    start, stop, m, complete = 0, size2, size1, True
    while m != stop - start:
        k = split_point(stop - start)
        if m <= k:
            proof.append(subtree(start + k, stop))
            stop = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(subtree(start, stop))
    proof.reverse()
    return proof


def _valid_hashes(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show ``leaf`` at ``index`` in the tree ``root``?"""
    if not _valid_hashes(leaf, root, *proof) or not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def inclusion_steps(index: int, size: int, proof: Sequence[bytes]) -> list[str] | None:
    """Which side each proof hash joins on, walking RFC 9162 §2.1.3.2 from the leaf up:
    ``"left"`` (the hash is the left sibling: ``node_hash(p, r)``) or ``"right"``; None
    when ``proof`` has the wrong length for ``index`` in a tree of ``size``. A browser
    or any outside verifier recomputes the root with exactly these steps."""
    if not 0 <= index < size:
        return None
    fn, sn, sides = index, size - 1, []
    for _ in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            sides.append("left")
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sides.append("right")
        fn, sn = fn >> 1, sn >> 1
    return sides if sn == 0 else None


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root ``proof`` leads to from ``leaf`` at ``index`` in a tree of ``size``, or
    None when the proof cannot be one for that position (RFC 9162 §2.1.3.2)."""
    sides = inclusion_steps(index, size, proof)
    if sides is None or not _valid_hashes(leaf, *proof):
        return None
    r = leaf
    for side, p in zip(sides, proof, strict=True):
        r = node_hash(p, r) if side == "left" else node_hash(r, p)
    return r


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``root1`` of ``size1`` a prefix of ``root2`` of ``size2``?

    Consistency is defined for ``0 < size1 <= size2``; a proof from the empty tree proves
    nothing and is rejected. Equal sizes need an empty proof and equal roots.
    """
    if not 0 < size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof or not _valid_hashes(root1, root2, *proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a node of the tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0
