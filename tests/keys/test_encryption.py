"""The X25519 encryption key, sealed at rest with scrypt and AES-256-GCM."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import KeyError_, WrongPassphraseError
from ailedger.keys import encryption

FAST_N = 2**4

# RFC 7748 section 6.1: Alice's and Bob's X25519 keys and their shared secret.
ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED_SECRET = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "encryption-key.json"
    encryption.create_encryption_key(path, "pw", scrypt_n=FAST_N)
    return path


def _edit(path: Path, **changes: object) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


def _flip_bit(hex_value: str, byte: int = 0) -> str:
    raw = bytearray(bytes.fromhex(hex_value))
    raw[byte] ^= 0x01
    return raw.hex()


def test_round_trip(key_file: Path) -> None:
    private_key = encryption.unlock_encryption_key(key_file, "pw")
    public_key = encryption.read_public_key(key_file)
    assert private_key.public_key().public_bytes_raw() == public_key
    assert len(public_key) == 32


def test_file_stores_public_key_in_clear_and_private_key_sealed(key_file: Path) -> None:
    document = json.loads(key_file.read_text())
    private_raw = encryption.unlock_encryption_key(key_file, "pw").private_bytes_raw()
    assert document["format"] == "ailedger-encryption-key" and document["version"] == 1
    assert document["kdf"] == "scrypt" and document["cipher"] == "aes-256-gcm"
    assert bytes.fromhex(document["public_key"]) == encryption.read_public_key(key_file)
    assert private_raw.hex() not in key_file.read_text()


def test_rfc7748_key_survives_sealing(tmp_path: Path) -> None:
    path = tmp_path / "alice.json"
    alice = X25519PrivateKey.from_private_bytes(bytes.fromhex(ALICE_PRIVATE))
    assert encryption.write_encryption_key(path, alice, "pw", scrypt_n=FAST_N).hex() == ALICE_PUBLIC
    unlocked = encryption.unlock_encryption_key(path, "pw")
    bob = X25519PublicKey.from_public_bytes(bytes.fromhex(BOB_PUBLIC))
    assert unlocked.exchange(bob).hex() == SHARED_SECRET


def test_wrong_passphrase(key_file: Path) -> None:
    with pytest.raises(WrongPassphraseError, match="AILEDGER_PASSPHRASE") as caught:
        encryption.unlock_encryption_key(key_file, "not it")
    assert str(key_file) in str(caught.value)


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_bit_flip_is_tampering_not_a_wrong_passphrase(key_file: Path, field: str) -> None:
    document = json.loads(key_file.read_text())
    _edit(key_file, **{field: _flip_bit(document[field], byte=5)})
    with pytest.raises(KeyError_, match="altered") as caught:
        encryption.unlock_encryption_key(key_file, "pw")
    assert not isinstance(caught.value, WrongPassphraseError)


def test_swapped_public_key_is_detected(key_file: Path) -> None:
    attacker = X25519PrivateKey.generate().public_key().public_bytes_raw()
    _edit(key_file, public_key=attacker.hex())
    assert encryption.read_public_key(key_file) == attacker  # readable, but...
    with pytest.raises(KeyError_, match="altered") as caught:
        encryption.unlock_encryption_key(key_file, "pw")
    assert not isinstance(caught.value, WrongPassphraseError)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"format": "something-else"},
        {"cipher": "aes-128-ctr"},
        {"kdf": "pbkdf2"},
        {"kdfparams": {"n": 2**30, "r": 8, "p": 1, "dklen": 64}},
        {"kdfparams": {"n": 3, "r": 8, "p": 1, "dklen": 64}},
        {"kdfparams": {"n": 16, "r": 1, "p": 1, "dklen": 64}},
        {"salt": "00"},
        {"nonce": "zz" * 12},
        {"public_key": None},
    ],
)
def test_malformed_fields_are_key_errors(key_file: Path, changes: dict[str, object]) -> None:
    _edit(key_file, **changes)
    with pytest.raises(KeyError_, match="cannot be used") as caught:
        encryption.unlock_encryption_key(key_file, "pw")
    assert not isinstance(caught.value, WrongPassphraseError)


@pytest.mark.parametrize("content", ["", "{", "[]", "null"])
def test_unreadable_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "encryption-key.json"
    path.write_text(content)
    with pytest.raises(KeyError_, match="restore it from your backup"):
        encryption.read_public_key(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="no encryption key"):
        encryption.read_public_key(tmp_path / "absent.json")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="empty"):
        encryption.create_encryption_key(tmp_path / "k.json", "", scrypt_n=FAST_N)


@settings(max_examples=25, deadline=None)
@given(passphrase=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=40))
def test_only_the_sealing_passphrase_opens(passphrase: str, other: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "k.json"
        public_key = encryption.create_encryption_key(path, passphrase, scrypt_n=FAST_N)
        unlocked = encryption.unlock_encryption_key(path, passphrase)
        assert unlocked.public_key().public_bytes_raw() == public_key
        if other != passphrase:
            with pytest.raises(WrongPassphraseError):
                encryption.unlock_encryption_key(path, other)
