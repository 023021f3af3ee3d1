"""The faster nibble helpers give py-trie's own answers, and tries built with them the
same roots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trie import HexaryTrie
from trie.exceptions import InvalidNibbles

from ailedger.chain.embedded import _trie_speedups as fast

nibble_lists = st.lists(st.integers(0, 16), max_size=70)


def _same(name: str, *args: Any) -> None:
    def outcome(function: Callable[..., Any]) -> Any:
        try:
            return ("value", function(*args))
        except (InvalidNibbles, IndexError) as exc:
            return ("raises", type(exc))

    assert outcome(fast.REPLACEMENTS[name]) == outcome(fast.ORIGINALS[name])


@given(st.binary(max_size=40))
def test_bytes_and_hex_prefix_decoding(value: bytes) -> None:
    _same("bytes_to_nibbles", value)
    _same("decode_nibbles", value)


@given(st.lists(st.integers(-2, 18), max_size=70))
def test_nibbles_to_bytes_checks_what_py_trie_checks(nibbles: list[int]) -> None:
    _same("nibbles_to_bytes", nibbles)
    _same("nibbles_to_bytes", tuple(nibbles))


@given(nibble_lists)
def test_terminators_and_hex_prefix_encoding(nibbles: list[int]) -> None:
    for name in ("is_nibbles_terminated", "add_nibbles_terminator", "remove_nibbles_terminator"):
        _same(name, tuple(nibbles))
    valid = [n for n in nibbles if n < 16]
    _same("encode_nibbles", tuple(valid))
    _same("encode_nibbles", (*valid, 16))


@given(st.dictionaries(st.binary(min_size=1, max_size=33), st.binary(min_size=1, max_size=40)))
def test_tries_get_the_same_root(items: dict[bytes, bytes]) -> None:
    fast.install()
    sped_up = HexaryTrie({})
    for key, value in items.items():
        sped_up[key] = value
    for key in list(items)[::3]:
        del sped_up[key]
    assert all(sped_up[k] == v for k, v in list(items.items())[1::3])
    # the reference: py-trie with its own helpers
    import trie.hexary
    import trie.utils.nodes

    saved = {m: dict(vars(m)) for m in (trie.hexary, trie.utils.nodes)}
    try:
        for module in saved:
            for name, original in fast.ORIGINALS.items():
                if name in vars(module):
                    setattr(module, name, original)
        reference = HexaryTrie({})
        for key, value in items.items():
            reference[key] = value
        for key in list(items)[::3]:
            del reference[key]
    finally:
        for module, names in saved.items():
            for name in fast.REPLACEMENTS:
                if name in names:
                    setattr(module, name, names[name])
    assert sped_up.root_hash == reference.root_hash


def test_install_replaces_the_names_py_trie_imported() -> None:
    import trie.hexary

    fast.install()
    assert trie.hexary.bytes_to_nibbles is fast.bytes_to_nibbles
    assert fast.install() == 0  # idempotent


def test_an_unknown_function_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import trie.fog

    def newer(value: bytes) -> tuple[int, ...]:
        return ()

    monkeypatch.setattr(trie.fog, "decode_nibbles", newer)
    fast.install()
    assert trie.fog.decode_nibbles is newer
