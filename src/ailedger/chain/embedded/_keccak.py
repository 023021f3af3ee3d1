"""Keccak-256 through the fastest backend installed.

Every trie node, address and transaction hash the chain computes goes through
``eth_hash.auto.keccak``. eth-hash picks pycryptodome when both backends are present, and
pycryptodome spends about 9 µs per call building a hash object; safe-pysha3 (a project
dependency) takes under 2 µs, which made sealing a block about a fifth faster. The
shared ``keccak`` object is re-initialised in place, so py-evm, eth-utils and
eth-account, which imported it by name, use the faster backend too. The digests are the
same; a test holds the two backends together.
"""

from __future__ import annotations

import importlib
import os

from eth_hash.auto import keccak


def prefer_native_keccak() -> bool:
    """Switch the shared ``keccak`` to pysha3 unless ETH_HASH_BACKEND names a backend.
    True when pysha3 is in use afterwards."""
    if os.environ.get("ETH_HASH_BACKEND"):
        return os.environ["ETH_HASH_BACKEND"] == "pysha3"
    try:
        backend = importlib.import_module("eth_hash.backends.pysha3").backend
    except ImportError:
        return False
    if getattr(keccak, "_backend", None) is not backend:
        keccak.__init__(backend)  # type: ignore[misc]  # resets the hasher it caches
    return True
