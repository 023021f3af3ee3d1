"""The Ethereum account keystore (keystore v3 / Web3 Secret Storage Definition)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailedger.errors import KeyError_, WrongPassphraseError
from ailedger.keys import wallet

FAST_N = 2**4  # tiny scrypt cost: these tests check behaviour, not strength

# The scrypt test vector of the Web3 Secret Storage Definition (passphrase
# "testpassword"). The spec's file has no "address" field; ours requires one, so the
# address of the published private key is added (it matches other wallets' fixtures).
SPEC_VECTOR = {
    "address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "r": 1,
            "p": 8,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
SPEC_PRIVATE_KEY = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"


def _edit(path: Path, **changes: object) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


def test_create_then_unlock_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    address = wallet.create_keystore(path, "correct horse", scrypt_n=FAST_N)
    account = wallet.unlock_account(path, "correct horse")
    assert account.address == address
    assert wallet.read_address(path) == address


def test_file_is_standard_keystore_v3_with_scrypt(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    address = wallet.create_keystore(path, "pw", scrypt_n=FAST_N)
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["kdfparams"]["n"] == FAST_N
    assert "0x" + document["address"].lower() == address.lower()


def test_default_cost_is_two_to_the_seventeen(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    wallet.create_keystore(path, "pw")
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == 2**17


def test_each_keystore_gets_a_fresh_key(tmp_path: Path) -> None:
    first = wallet.create_keystore(tmp_path / "a.json", "pw", scrypt_n=FAST_N)
    second = wallet.create_keystore(tmp_path / "b.json", "pw", scrypt_n=FAST_N)
    assert first != second


def test_wrong_passphrase_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    wallet.create_keystore(path, "right", scrypt_n=FAST_N)
    with pytest.raises(WrongPassphraseError) as caught:
        wallet.unlock_account(path, "wrong")
    message = str(caught.value)
    assert str(path) in message and "AILEDGER_PASSPHRASE" in message
    assert "\n" not in message
    assert caught.value.__suppress_context__


def test_altered_address_field_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    wallet.create_keystore(path, "pw", scrypt_n=FAST_N)
    _edit(path, address="11" * 20)
    assert wallet.read_address(path) == "0x" + "11" * 20
    with pytest.raises(KeyError_, match="address field") as caught:
        wallet.unlock_account(path, "pw")
    assert not isinstance(caught.value, WrongPassphraseError)


def test_spec_test_vector_opens(tmp_path: Path) -> None:
    path = tmp_path / "vector.json"
    path.write_text(json.dumps(SPEC_VECTOR))
    account = wallet.unlock_account(path, "testpassword")
    assert account.key.hex().removeprefix("0x") == SPEC_PRIVATE_KEY
    assert account.address == "0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b"
    with pytest.raises(WrongPassphraseError):
        wallet.unlock_account(path, "testpassword!")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not json", "cannot be used"),
        ("[1, 2]", "JSON object"),
        (json.dumps({**SPEC_VECTOR, "version": 4}), "keystore v3"),
        (json.dumps({**SPEC_VECTOR, "address": "nope"}), "address field"),
    ],
)
def test_damaged_keystore_is_a_key_error(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(content)
    with pytest.raises(KeyError_, match=why):
        wallet.unlock_account(path, "testpassword")


def test_excessive_kdf_cost_is_refused_before_deriving(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    crypto = json.loads(json.dumps(SPEC_VECTOR["crypto"]))
    crypto["kdfparams"]["n"] = 2**30
    path.write_text(json.dumps({**SPEC_VECTOR, "crypto": crypto}))
    with pytest.raises(KeyError_, match="out of range"):
        wallet.unlock_account(path, "testpassword")


def test_missing_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="no keystore"):
        wallet.read_address(tmp_path / "absent.json")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="empty"):
        wallet.create_keystore(tmp_path / "k.json", "", scrypt_n=FAST_N)
    assert not (tmp_path / "k.json").exists()
