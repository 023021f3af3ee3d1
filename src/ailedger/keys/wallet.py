"""The node's Ethereum account, kept in an encrypted keystore v3 file.

The file follows the Web3 Secret Storage Definition (keystore v3, the format of geth,
MetaMask exports and ``eth_account``): the secp256k1 private key is encrypted with
AES-128-CTR under a key derived from the passphrase by scrypt, and a MAC
(keccak-256 of half the derived key and the ciphertext) tells a wrong passphrase apart.
Keeping the standard format means the account can be imported into any Ethereum wallet.

The top-level ``address`` field is plaintext, so the address is known without the
passphrase. Because that field is not covered by the MAC, :func:`unlock_account` checks
that the decrypted key really belongs to it.

scrypt cost: ``n = 2**17`` with ``r = 8, p = 1`` (128 MiB of memory per guess) is the
minimum OWASP's Password Storage Cheat Sheet recommends for scrypt (RFC 7914), half of
geth's "standard" ``2**18``. Every CLI command unlocks the account, so the cost is paid
on each run: measured 0.33 s per unlock on the development machine (``2**18``: 0.65 s);
the encryption key uses the same cost, so a command that needs both keys pays about
0.67 s. Tests pass a tiny ``scrypt_n`` to stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import is_hex_address, to_checksum_address

from ailedger._durable import atomic_write_json
from ailedger.errors import KeyError_, WrongPassphraseError
from ailedger.keys._files import read_json_object

DEFAULT_SCRYPT_N = 2**17
"""scrypt CPU/memory cost of new keystores; see the module docstring for the choice."""

# Bounds on what a keystore may ask for, so an altered file cannot make an unlock
# allocate gigabytes or spin for minutes. 1 GiB covers geth's standard and the
# spec's test vector (n = 2**18).
_MAX_SCRYPT_BYTES = 2**30
_MAX_SCRYPT_P = 16
_MAX_PBKDF2_C = 10_000_000


def create_keystore(
    path: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> ChecksumAddress:
    """Generate a fresh random account, write it encrypted to ``path``, return its address."""
    if not passphrase:
        raise KeyError_("an empty passphrase would leave the key unprotected; choose one")
    account: LocalAccount = Account.create()
    keystore = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=scrypt_n)
    atomic_write_json(path, keystore, indent=2)  # 0600 from creation
    return account.address


def read_address(path: Path) -> ChecksumAddress:
    """The keystore's account address, read without the passphrase."""
    return _address_field(_load(path), path)


def unlock_account(path: Path, passphrase: str) -> LocalAccount:
    """Decrypt the keystore at ``path``; :class:`WrongPassphraseError` if it does not open."""
    keystore = _load(path)
    address = _address_field(keystore, path)
    _check_kdf_cost(keystore, path)
    try:
        private_key = Account.decrypt(keystore, passphrase)
    except ValueError as exc:
        # eth-keyfile signals a wrong passphrase only through this message.
        if "MAC mismatch" in str(exc):
            raise WrongPassphraseError(
                f"the passphrase does not open {path}; check AILEDGER_PASSPHRASE"
            ) from None
        raise _damaged(path, str(exc)) from exc
    account: LocalAccount = Account.from_key(private_key)
    if account.address != address:
        raise _damaged(path, f"its address field says {address} but its key is {account.address}")
    return account


def _load(path: Path) -> dict[str, Any]:
    try:
        keystore = read_json_object(path)
    except FileNotFoundError:
        raise KeyError_(f"no keystore at {path}; restore it from your backup") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, str(exc)) from exc
    if keystore.get("version") != 3:
        raise _damaged(path, "it is not a keystore v3 file")
    return keystore


def _address_field(keystore: dict[str, Any], path: Path) -> ChecksumAddress:
    address = keystore.get("address")
    if not isinstance(address, str) or not is_hex_address(address):
        raise _damaged(path, "its address field is missing or not an Ethereum address")
    return to_checksum_address(address)


def _check_kdf_cost(keystore: dict[str, Any], path: Path) -> None:
    crypto = keystore.get("crypto")
    params = crypto.get("kdfparams") if isinstance(crypto, dict) else None
    if not isinstance(crypto, dict) or not isinstance(params, dict):
        raise _damaged(path, "its crypto section is missing")
    kdf = crypto.get("kdf")
    if kdf == "scrypt":
        n, r, p = params.get("n"), params.get("r"), params.get("p")
        if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)):
            raise _damaged(path, "its scrypt parameters are not integers")
        if n < 2 or r < 1 or not 1 <= p <= _MAX_SCRYPT_P or 128 * n * r > _MAX_SCRYPT_BYTES:
            raise _damaged(path, f"its scrypt cost (n={n}, r={r}, p={p}) is out of range")
    elif kdf == "pbkdf2":
        c = params.get("c")
        if not isinstance(c, int) or not 1 <= c <= _MAX_PBKDF2_C:
            raise _damaged(path, f"its pbkdf2 iteration count {c!r} is out of range")
    else:
        raise _damaged(path, f"its key derivation function {kdf!r} is not scrypt or pbkdf2")


def _damaged(path: Path, why: str) -> KeyError_:
    return KeyError_(f"the keystore {path} cannot be used: {why}; restore it from your backup")
