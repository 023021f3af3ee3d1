"""The chain hashes through pysha3 when it is installed, with pycryptodome's digests."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak as reference
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ailedger.chain.embedded import node  # noqa: F401  - switches the backend on import
from ailedger.chain.embedded._keccak import prefer_native_keccak


def test_the_embedded_chain_uses_pysha3() -> None:
    assert prefer_native_keccak()
    assert type(keccak._backend).__name__ == "PySha3Backend"


def test_known_digest() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"").hex() == empty


@given(st.binary(max_size=300))
def test_same_digests_as_pycryptodome(data: bytes) -> None:
    assert keccak(data) == reference.new(digest_bits=256, data=data).digest()


def test_an_explicit_backend_choice_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETH_HASH_BACKEND", "pycryptodome")
    assert not prefer_native_keccak()
