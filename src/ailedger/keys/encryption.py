"""The node's X25519 key pair, used to receive data keys wrapped with HPKE (RFC 9180).

X25519 (RFC 7748) keys are 32 raw bytes. The public key is stored in the clear (hex);
the private key is encrypted at rest:

* scrypt (RFC 7914) stretches the passphrase with a random 16-byte salt into 64 bytes;
* the first 32 are an AES-256-GCM key (NIST SP 800-38D) that seals the private key under
  a random 96-bit nonce (SP 800-38D section 8.2.2; each write has a fresh salt, so a fresh
  key, and the key seals one message only);
* the associated data is the format tag with its version followed by the public key, so
  a public key swapped in the file (an attacker redirecting data keys to their own key)
  or a version downgrade fails authentication;
* the last 32 bytes give ``passphrase_check = HMAC-SHA256(dk[32:], label)``. A failed GCM
  tag alone cannot tell a wrong passphrase from an altered file; with the check, a wrong
  passphrase raises :class:`WrongPassphraseError` and an altered file :class:`KeyError_`.
  The check gives an offline guesser nothing the GCM tag does not already give.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ailedger._durable import atomic_write_json
from ailedger.errors import KeyError_, WrongPassphraseError
from ailedger.keys._files import read_json_object
from ailedger.keys.wallet import DEFAULT_SCRYPT_N

FORMAT = "ailedger-encryption-key"
VERSION = 1
_SCRYPT_R, _SCRYPT_P = 8, 1
_MAX_SCRYPT_N = 2**20  # 1 GiB at r = 8: an altered file must not exhaust memory
_CHECK_LABEL = b"ailedger passphrase check v1"
_HEX_LENGTHS = {"public_key": 32, "salt": 16, "nonce": 12, "ciphertext": 48, "check": 32}


@dataclass(frozen=True)
class _Sealed:
    """The fields of an encryption-key file, decoded and length-checked."""

    public_key: bytes
    scrypt_n: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    check: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "public_key": self.public_key.hex(),
            "kdf": "scrypt",
            "kdfparams": {"n": self.scrypt_n, "r": _SCRYPT_R, "p": _SCRYPT_P, "dklen": 64},
            "salt": self.salt.hex(),
            "cipher": "aes-256-gcm",
            "nonce": self.nonce.hex(),
            "ciphertext": self.ciphertext.hex(),
            "check": self.check.hex(),
        }


def create_encryption_key(
    path: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> bytes:
    """Generate a fresh X25519 key pair, write it to ``path``, return the raw public key."""
    return write_encryption_key(path, X25519PrivateKey.generate(), passphrase, scrypt_n=scrypt_n)


def write_encryption_key(
    path: Path, private_key: X25519PrivateKey, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> bytes:
    """Encrypt ``private_key`` under ``passphrase`` into ``path``; return the raw public key."""
    if not passphrase:
        raise KeyError_("an empty passphrase would leave the key unprotected; choose one")
    public_key = private_key.public_key().public_bytes_raw()
    salt, nonce = os.urandom(16), os.urandom(12)
    aes_key, check = _derive(passphrase, salt, scrypt_n)
    ciphertext = AESGCM(aes_key).encrypt(nonce, private_key.private_bytes_raw(), _aad(public_key))
    sealed = _Sealed(public_key, scrypt_n, salt, nonce, ciphertext, check)
    atomic_write_json(path, sealed.to_json(), indent=2)  # 0600 from creation
    return public_key


def read_public_key(path: Path) -> bytes:
    """The raw 32-byte public key, read without the passphrase."""
    return _load(path).public_key


def unlock_encryption_key(path: Path, passphrase: str) -> X25519PrivateKey:
    """Decrypt the private key at ``path``.

    Raises :class:`WrongPassphraseError` if the passphrase is wrong and :class:`KeyError_`
    if the file was altered or damaged.
    """
    sealed = _load(path)
    aes_key, check = _derive(passphrase, sealed.salt, sealed.scrypt_n)
    if not hmac.compare_digest(check, sealed.check):
        raise WrongPassphraseError(
            f"the passphrase does not open {path}; check AILEDGER_PASSPHRASE"
        )
    try:
        raw = AESGCM(aes_key).decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.public_key))
    except InvalidTag:
        raise _damaged(path, "it was altered (authentication failed)") from None
    private_key = X25519PrivateKey.from_private_bytes(raw)
    if private_key.public_key().public_bytes_raw() != sealed.public_key:
        raise _damaged(path, "its public key does not belong to its private key")
    return private_key


def _aad(public_key: bytes) -> bytes:
    return f"{FORMAT}/v{VERSION}\x00".encode() + public_key


def _derive(passphrase: str, salt: bytes, scrypt_n: int) -> tuple[bytes, bytes]:
    kdf = Scrypt(salt=salt, length=64, n=scrypt_n, r=_SCRYPT_R, p=_SCRYPT_P)
    derived = kdf.derive(passphrase.encode("utf-8"))
    return derived[:32], hmac.new(derived[32:], _CHECK_LABEL, hashlib.sha256).digest()


def _load(path: Path) -> _Sealed:
    try:
        document = read_json_object(path)
    except FileNotFoundError:
        raise KeyError_(f"no encryption key at {path}; restore it from your backup") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, str(exc)) from exc
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise _damaged(path, f"it is not an {FORMAT} file of version {VERSION}")
    if document.get("cipher") != "aes-256-gcm":
        raise _damaged(path, "its cipher is not aes-256-gcm")
    fields = {name: _hex_field(document, name, size, path) for name, size in _HEX_LENGTHS.items()}
    return _Sealed(scrypt_n=_scrypt_n(document, path), **fields)


def _hex_field(document: dict[str, Any], name: str, size: int, path: Path) -> bytes:
    value = document.get(name)
    try:
        decoded = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        decoded = b""
    if len(decoded) != size:
        raise _damaged(path, f"its field {name!r} is not {size} bytes of hex")
    return decoded


def _scrypt_n(document: dict[str, Any], path: Path) -> int:
    params = document.get("kdfparams")
    expected = {"r": _SCRYPT_R, "p": _SCRYPT_P, "dklen": 64}
    if document.get("kdf") != "scrypt" or not isinstance(params, dict):
        raise _damaged(path, "its key derivation is not scrypt")
    if any(params.get(key) != value for key, value in expected.items()):
        raise _damaged(path, f"its scrypt parameters are not {expected}")
    n = params.get("n")
    # scrypt requires n to be a power of two greater than 1 (RFC 7914 section 2).
    if not isinstance(n, int) or n < 2 or n > _MAX_SCRYPT_N or n & (n - 1):
        raise _damaged(path, f"its scrypt cost n={n!r} is out of range")
    return n


def _damaged(path: Path, why: str) -> KeyError_:
    return KeyError_(
        f"the encryption key {path} cannot be used: {why}; restore it from your backup"
    )
