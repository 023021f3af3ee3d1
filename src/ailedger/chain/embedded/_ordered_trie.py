"""Roots of the per-block transaction and receipt tries, built in one pass.

These tries are keyed by ``rlp(index)`` and written once. py-evm builds them by
inserting item after item into a general HexaryTrie, re-encoding and re-hashing the
path at every insert; for a block of hundreds of transactions that was a third of the
sealing time. Here the sorted keys are split recursively, so each node is encoded and
hashed exactly once. The result (root and hash -> node map) is the same as py-evm's
``make_trie_root_and_nodes``; a property test holds the two together.

Node encoding per the Yellow Paper, appendix D (hex-prefix encoding, leaf, extension,
branch; nodes under 32 bytes embedded in their parent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak

Node = list[Any]


def ordered_trie_root(values: Sequence[bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    """Root hash and nodes of the trie mapping ``rlp(i)`` to ``values[i]``."""
    if not values:
        return BLANK_ROOT_HASH, {}
    items = sorted((_nibbles(rlp.encode(i)), value) for i, value in enumerate(values))
    nodes: dict[bytes, bytes] = {}
    encoded = rlp.encode(_build(items, 0, nodes))
    root = keccak(encoded)
    nodes[root] = encoded  # the root is stored by hash even when short
    return root, nodes


def _build(items: list[tuple[bytes, bytes]], depth: int, nodes: dict[bytes, bytes]) -> Node:
    if len(items) == 1:
        key, value = items[0]
        return [_hex_prefix(key[depth:], leaf=True), value]
    shared = _common_prefix_length(items, depth)
    if shared:
        child = _build(items, depth + shared, nodes)
        return [_hex_prefix(items[0][0][depth : depth + shared], leaf=False), _ref(child, nodes)]
    branch: Node = [b""] * 17
    start = 0
    if len(items[0][0]) == depth:  # a key ending here (cannot happen for rlp keys)
        branch[16] = items[0][1]
        start = 1
    while start < len(items):
        nibble = items[start][0][depth]
        end = start
        while end < len(items) and items[end][0][depth] == nibble:
            end += 1
        branch[nibble] = _ref(_build(items[start:end], depth + 1, nodes), nodes)
        start = end
    return branch


def _ref(node: Node, nodes: dict[bytes, bytes]) -> Any:
    encoded = rlp.encode(node)
    if len(encoded) < 32:
        return node
    digest = keccak(encoded)
    nodes[digest] = encoded
    return digest


def _common_prefix_length(items: list[tuple[bytes, bytes]], depth: int) -> int:
    # keys are sorted, so the first and last share the prefix all of them share
    first, last = items[0][0], items[-1][0]
    limit = min(len(first), len(last))
    length = 0
    while depth + length < limit and first[depth + length] == last[depth + length]:
        length += 1
    return length


def _nibbles(key: bytes) -> bytes:
    return bytes(n for byte in key for n in (byte >> 4, byte & 0x0F))


def _hex_prefix(nibbles: bytes, *, leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        head = bytes([((flag + 1) << 4) | nibbles[0]])
        rest = nibbles[1:]
    else:
        head = bytes([flag << 4])
        rest = nibbles
    return head + bytes((rest[i] << 4) | rest[i + 1] for i in range(0, len(rest), 2))
