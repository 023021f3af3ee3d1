"""Hypothesis properties of the RFC 6962 / RFC 9162 Merkle code."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.audit.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    list_subtree_hasher,
    node_hash,
    root_from_leaves,
    split_point,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written exactly as the recursive definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _shape(fn: int, sn: int, length: int) -> tuple[int, ...] | None:
    """Left/right pattern the RFC 9162 loop follows; ``None`` if it fails on length alone.

    The verifier binds the tree size only through this pattern (the signed checkpoint
    binds the size itself), so a size change that keeps the pattern is not detectable
    from the hashes and is excluded from the bit-flip properties below.
    """
    pattern = []
    for _ in range(length):
        if sn == 0:
            return None
        right = bool(fn & 1 or fn == sn)
        pattern.append(int(right))
        if right:
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    return tuple(pattern) if sn == 0 else None


def _consistency_shape(m: int, n: int, length: int) -> tuple[int, ...] | None:
    if not 0 < m < n:
        return None
    extra = 1 if m & (m - 1) == 0 else 0
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return _shape(fn, sn, length + extra - 1)


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_hash_prefixes() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@given(st.integers(0, 300))
def test_root_matches_recursive_definition(n: int) -> None:
    leaves = _leaves(n)
    assert root_from_leaves(leaves) == _mth(leaves)


@settings(max_examples=200)
@given(st.integers(1, 600), st.data())
def test_inclusion_proofs_verify(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    index = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(index, n, list_subtree_hasher(leaves))
    assert verify_inclusion(leaves[index], index, n, proof, root_from_leaves(leaves))


@settings(max_examples=200)
@given(st.integers(1, 600), st.data())
def test_consistency_proofs_verify(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(m, n, list_subtree_hasher(leaves))
    assert verify_consistency(m, n, proof, root_from_leaves(leaves[:m]), root_from_leaves(leaves))


@settings(max_examples=300)
@given(st.integers(2, 300), st.data())
def test_inclusion_single_bit_changes_rejected(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    index = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(index, n, list_subtree_hasher(leaves))
    root, leaf = root_from_leaves(leaves), leaves[index]
    target = data.draw(st.sampled_from(["proof", "root", "leaf", "index", "size"]))
    bit = data.draw(st.integers(0, 255))
    if target == "proof" and proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        proof[at] = _flip(proof[at], bit)
    elif target == "root":
        root = _flip(root, bit)
    elif target == "leaf":
        leaf = _flip(leaf, bit)
    elif target == "index":
        index ^= 1 << (bit % 20)
    else:
        before = _shape(index, n - 1, len(proof))
        n ^= 1 << (bit % 20)
        if index < n and _shape(index, n - 1, len(proof)) == before:
            return  # same hash computation: only the signed checkpoint can tell
    assert not verify_inclusion(leaf, index, n, proof, root)


@settings(max_examples=300)
@given(st.integers(2, 300), st.data())
def test_consistency_single_bit_changes_rejected(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n - 1))
    proof = consistency_proof(m, n, list_subtree_hasher(leaves))
    root1, root2 = root_from_leaves(leaves[:m]), root_from_leaves(leaves)
    target = data.draw(st.sampled_from(["proof", "root1", "root2", "size1", "size2"]))
    bit = data.draw(st.integers(0, 255))
    if target == "proof":
        at = data.draw(st.integers(0, len(proof) - 1))
        proof[at] = _flip(proof[at], bit)
    elif target == "root1":
        root1 = _flip(root1, bit)
    elif target == "root2":
        root2 = _flip(root2, bit)
    elif target == "size1":
        before = _consistency_shape(m, n, len(proof))
        m ^= 1 << (bit % 20)
        if _consistency_shape(m, n, len(proof)) == before:
            return  # same hash computation: only the signed checkpoint can tell
    else:
        before = _consistency_shape(m, n, len(proof))
        n ^= 1 << (bit % 20)
        if _consistency_shape(m, n, len(proof)) == before:
            return  # same hash computation: only the signed checkpoint can tell
    assert not verify_consistency(m, n, proof, root1, root2)
