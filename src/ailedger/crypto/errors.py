"""Errors of ``ailedger.crypto``; all are :class:`~ailedger.errors.AiledgerError`.

Hierarchy (below ``AiledgerError``)::

    CryptoError                    a cryptographic operation failed
    ├── DecryptionError            ciphertext did not authenticate (tampered, truncated,
    │   │                          reordered, wrong key); nothing it covers was released
    │   └── WrongObjectError       the ciphertext is for another object id or version
    ├── CiphertextFormatError      not an ailedger stream, or an unsupported version
    └── HpkeError                  HPKE open/seal failed (tampered, wrong key or sender)
"""

from __future__ import annotations

from ailedger.errors import AiledgerError


class CryptoError(AiledgerError):
    """A cryptographic operation failed."""


class DecryptionError(CryptoError):
    """Ciphertext failed authentication; no plaintext of the failing part was released."""


class WrongObjectError(DecryptionError):
    """The ciphertext belongs to a different object id or version than expected."""


class CiphertextFormatError(CryptoError):
    """The input is not an ailedger encrypted stream of a supported version."""


class HpkeError(CryptoError):
    """An HPKE operation failed (RFC 9180): wrong key, wrong sender, or tampered data."""
