"""RFC 9180 HPKE: Appendix A known answers, round trips, and every tamper case."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ailedger.crypto import hpke
from ailedger.crypto.errors import HpkeError

# Known answers from RFC 9180 Appendix A (https://www.rfc-editor.org/rfc/rfc9180#appendix-A,
# the same values as the CFRG test-vectors.json): A.1.1 base and A.1.3 auth for
# DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; A.2.1 base with ChaCha20Poly1305.
# Only the fields these tests use; ct is the first encryption (sequence number 0).
INFO = "4f6465206f6e2061204772656369616e2055726e"  # "Ode on a Grecian Urn"
PT = "4265617574792069732074727574682c20747275746820626561757479"
AAD = "436f756e742d30"  # "Count-0"
VECTORS = {
    "A.1.1": {
        "aead": hpke.AEAD_AES_128_GCM,
        "ikmE": "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
        "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
        "ikmR": "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
        "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
        "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
        "enc": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
        "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
        "6d8770ac83d07bea87e13c512a",
    },
    "A.1.3": {
        "aead": hpke.AEAD_AES_128_GCM,
        "ikmE": "6e6d8f200ea2fb20c30b003a8b4f433d2f4ed4c2658d5bc8ce2fef718059c9f7",
        "skEm": "ff4442ef24fbc3c1ff86375b0be1e77e88a0de1e79b30896d73411c5ff4c3518",
        "ikmR": "f1d4a30a4cef8d6d4e3b016e6fd3799ea057db4f345472ed302a67ce1c20cdec",
        "skRm": "fdea67cf831f1ca98d8e27b1f6abeb5b7745e9d35348b80fa407ff6958f9137e",
        "pkRm": "1632d5c2f71c2b38d0a8fcc359355200caa8b1ffdf28618080466c909cb69b2e",
        "ikmS": "94b020ce91d73fca4649006c7e7329a67b40c55e9e93cc907d282bbbff386f58",
        "skSm": "dc4a146313cce60a278a5323d321f051c5707e9c45ba21a3479fecdf76fc69dd",
        "pkSm": "8b0c70873dc5aecb7f9ee4e62406a397b350e57012be45cf53b7105ae731790b",
        "enc": "23fb952571a14a25e3d678140cd0e5eb47a0961bb18afcf85896e5453c312e76",
        "ct": "5fd92cc9d46dbf8943e72a07e42f363ed5f721212cd90bcfd072bfd9f44e06b8"
        "0fd17824947496e21b680c141b",
    },
    "A.2.1": {
        "aead": hpke.AEAD_CHACHA20_POLY1305,
        "ikmE": "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b",
        "skEm": "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600",
        "ikmR": "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df",
        "skRm": "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
        "pkRm": "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
        "enc": "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
        "ct": "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db"
        "21993c62ce81883d2dd1b51a28",
    },
}


def _raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key: X25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_derive_key_pair_matches_rfc(name: str) -> None:
    v = VECTORS[name]
    for ikm, sk in (("ikmE", "skEm"), ("ikmR", "skRm"), ("ikmS", "skSm")):
        if ikm in v:
            assert _raw_private(hpke.derive_key_pair(bytes.fromhex(str(v[ikm])))) == v[sk]
    assert _raw_public(hpke.derive_key_pair(bytes.fromhex(str(v["ikmR"])))).hex() == v["pkRm"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_seal_and_open_match_rfc(name: str) -> None:
    v = VECTORS[name]
    aead = int(v["aead"])
    sender = hpke.derive_key_pair(bytes.fromhex(str(v["ikmS"]))) if "ikmS" in v else None
    enc, ct = hpke._seal_with(
        bytes.fromhex(str(v["pkRm"])),
        bytes.fromhex(PT),
        info=bytes.fromhex(INFO),
        aad=bytes.fromhex(AAD),
        sender_private=sender,
        aead_id=aead,
        ephemeral=hpke.derive_key_pair(bytes.fromhex(str(v["ikmE"]))),
    )
    assert enc.hex() == v["enc"]
    assert ct.hex() == v["ct"]
    opened = hpke.open_(
        enc,
        ct,
        recipient_private=hpke.derive_key_pair(bytes.fromhex(str(v["ikmR"]))),
        info=bytes.fromhex(INFO),
        aad=bytes.fromhex(AAD),
        sender_public=bytes.fromhex(str(v["pkSm"])) if "pkSm" in v else None,
        aead_id=aead,
    )
    assert opened.hex() == PT


def _parties() -> tuple[X25519PrivateKey, X25519PrivateKey]:
    return X25519PrivateKey.generate(), X25519PrivateKey.generate()


@pytest.mark.parametrize("auth", [False, True])
def test_round_trip_default_suite(auth: bool) -> None:
    recipient, sender = _parties()
    enc, ct = hpke.seal(
        _raw_public(recipient),
        b"secret",
        info=b"i",
        aad=b"a",
        sender_private=sender if auth else None,
    )
    assert len(ct) == len(b"secret") + 16
    pt = hpke.open_(
        enc,
        ct,
        recipient_private=recipient,
        info=b"i",
        aad=b"a",
        sender_public=_raw_public(sender) if auth else None,
    )
    assert pt == b"secret"


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_tampering_and_wrong_parties_fail() -> None:
    recipient, sender = _parties()
    stranger = X25519PrivateKey.generate()
    enc, ct = hpke.seal(
        _raw_public(recipient), b"k" * 32, info=b"info", aad=b"aad", sender_private=sender
    )
    good = {
        "enc": enc,
        "ciphertext": ct,
        "recipient_private": recipient,
        "info": b"info",
        "aad": b"aad",
        "sender_public": _raw_public(sender),
    }
    assert hpke.open_(**good) == b"k" * 32  # type: ignore[arg-type]
    bad_cases = [
        {"enc": _flip(enc)},
        {"ciphertext": _flip(ct, 5)},
        {"ciphertext": _flip(ct, len(ct) - 1)},  # the tag
        {"aad": b"aae"},
        {"info": b"infp"},
        {"recipient_private": stranger},
        {"sender_public": _raw_public(stranger)},
        {"sender_public": None},  # opening an auth-mode seal in base mode
    ]
    for change in bad_cases:
        with pytest.raises(HpkeError):
            hpke.open_(**{**good, **change})  # type: ignore[arg-type]


def test_base_seal_does_not_open_in_auth_mode() -> None:
    recipient, sender = _parties()
    enc, ct = hpke.seal(_raw_public(recipient), b"x", info=b"", aad=b"")
    with pytest.raises(HpkeError):
        hpke.open_(
            enc,
            ct,
            recipient_private=recipient,
            info=b"",
            aad=b"",
            sender_public=_raw_public(sender),
        )


def test_small_order_and_malformed_keys_are_rejected() -> None:
    recipient = X25519PrivateKey.generate()
    with pytest.raises(HpkeError):
        hpke.seal(bytes(32), b"x", info=b"", aad=b"")  # all-zero DH output
    with pytest.raises(HpkeError):
        hpke.seal(b"short", b"x", info=b"", aad=b"")
    with pytest.raises(HpkeError):
        hpke.open_(b"\x00" * 31, b"x" * 17, recipient_private=recipient, info=b"", aad=b"")


OBJECT_ID = bytes(range(32))
REQUESTER = "0x" + "ab" * 20


def test_wrap_and_unwrap_data_key() -> None:
    requester_key, owner_key = _parties()
    data_key = os.urandom(32)
    wrapped = hpke.wrap_data_key(
        data_key,
        recipient_public=_raw_public(requester_key),
        owner_private=owner_key,
        object_id=OBJECT_ID,
        version=1,
        requester=REQUESTER,
    )
    assert len(wrapped) == 32 + 32 + 16
    good = {
        "recipient_private": requester_key,
        "owner_public": _raw_public(owner_key),
        "object_id": OBJECT_ID,
        "version": 1,
        "requester": REQUESTER.upper().replace("0X", "0x"),  # case does not matter
    }
    assert hpke.unwrap_data_key(wrapped, **good) == data_key  # type: ignore[arg-type]
    bad_cases = [
        {"object_id": bytes(32)},
        {"version": 2},
        {"requester": "0x" + "cd" * 20},
        {"owner_public": _raw_public(X25519PrivateKey.generate())},
        {"recipient_private": X25519PrivateKey.generate()},
    ]
    for change in bad_cases:
        with pytest.raises(HpkeError):
            hpke.unwrap_data_key(wrapped, **{**good, **change})  # type: ignore[arg-type]
    with pytest.raises(HpkeError):
        hpke.unwrap_data_key(_flip(wrapped, 40), **good)  # type: ignore[arg-type]
    with pytest.raises(HpkeError):
        hpke.unwrap_data_key(wrapped[:32], **good)  # type: ignore[arg-type]


def test_data_key_info_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        hpke.data_key_info(b"short", 1, REQUESTER)
    with pytest.raises(ValueError):
        hpke.data_key_info(OBJECT_ID, 1, "ab" * 20)
