"""Faster nibble helpers for py-trie, the Merkle Patricia trie under py-evm's state.

Every trie read and write converts keys between bytes and nibbles (half-bytes) and back
through the hex-prefix encoding. py-trie does each conversion with a generator per
nibble wrapped in ``to_tuple``: about 1,400 calls per sealed transfer, a fifth of the
state root's time. The replacements here do the same in a few C-level operations
(``bytes.hex`` and ``bytes.translate``) and return the same values; the same input
checks raise the same ``InvalidNibbles``. A property test holds every replacement to
py-trie's original on arbitrary input.

Installed by :func:`install` into each py-trie module that imported the originals by
name; a name bound to anything else (a newer py-trie that changed them) is left alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from trie.exceptions import InvalidNibbles
from trie.utils import nibbles as _original

TERMINATOR = 16
_HEX_TO_NIBBLE = bytes.maketrans(b"0123456789abcdef", bytes(range(16)))
_USERS = ("trie.utils.nibbles", "trie.utils.nodes", "trie.hexary", "trie.fog", "trie.iter")


def bytes_to_nibbles(value: bytes) -> tuple[int, ...]:
    return tuple(value.hex().encode().translate(_HEX_TO_NIBBLE))


def nibbles_to_bytes(nibbles: Sequence[int]) -> bytes:
    if nibbles and (min(nibbles) < 0 or max(nibbles) > 15):
        raise InvalidNibbles(
            "Nibbles contained invalid value.  Must be constrained between [0, 15]"
        )
    if len(nibbles) % 2:
        raise InvalidNibbles("Nibbles must be even in length")
    return bytes.fromhex("".join("0123456789abcdef"[n] for n in nibbles))


def is_nibbles_terminated(nibbles: Sequence[int]) -> bool:
    return bool(nibbles) and nibbles[-1] == TERMINATOR


def add_nibbles_terminator(nibbles: Sequence[int]) -> tuple[int, ...]:
    if is_nibbles_terminated(nibbles):
        return tuple(nibbles)
    return (*nibbles, TERMINATOR)


def remove_nibbles_terminator(nibbles: Sequence[int]) -> tuple[int, ...]:
    if is_nibbles_terminated(nibbles):
        return tuple(nibbles[:-1])
    return tuple(nibbles)


def encode_nibbles(nibbles: Sequence[int]) -> bytes:
    """The hex-prefix encoding (Yellow Paper appendix C)."""
    flag = 2 if is_nibbles_terminated(nibbles) else 0
    raw = remove_nibbles_terminator(nibbles)
    prefixed = (flag + 1, *raw) if len(raw) % 2 else (flag, 0, *raw)
    return nibbles_to_bytes(prefixed)


def decode_nibbles(value: bytes) -> tuple[int, ...]:
    """The inverse of the hex-prefix encoding."""
    nibbles = bytes_to_nibbles(value)
    flag = nibbles[0]  # IndexError on empty input, as py-trie's
    raw = nibbles[1:] if flag in (1, 3) else nibbles[2:]
    return (*raw, TERMINATOR) if flag in (2, 3) else raw


REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "bytes_to_nibbles": bytes_to_nibbles,
    "nibbles_to_bytes": nibbles_to_bytes,
    "is_nibbles_terminated": is_nibbles_terminated,
    "add_nibbles_terminator": add_nibbles_terminator,
    "remove_nibbles_terminator": remove_nibbles_terminator,
    "encode_nibbles": encode_nibbles,
    "decode_nibbles": decode_nibbles,
}
ORIGINALS: dict[str, Callable[..., Any]] = {name: getattr(_original, name) for name in REPLACEMENTS}


def install() -> int:
    """Point py-trie's modules at the replacements; returns how many names changed."""
    changed = 0
    for module_name in _USERS:
        module = importlib.import_module(module_name)
        for name, fast in REPLACEMENTS.items():
            if getattr(module, name, None) is ORIGINALS[name]:
                setattr(module, name, fast)
                changed += 1
    return changed
