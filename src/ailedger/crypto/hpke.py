"""Hybrid Public Key Encryption (RFC 9180), single-shot, modes base and auth.

Ciphersuite: DHKEM(X25519, HKDF-SHA256) (kem 0x0020, RFC 9180 §7.1), HKDF-SHA256
(kdf 0x0001, RFC 5869) and an RFC 5116 AEAD: AES-256-GCM (0x0002, ailedger's default),
AES-128-GCM (0x0001) and ChaCha20-Poly1305 (0x0003, RFC 8439) so the RFC's Appendix A
test vectors run. ``cryptography``'s own HPKE module offers base mode only; ailedger
needs mode_auth (§5.1.3): the recipient of a data key must know which data owner
wrapped it, so AuthEncap/AuthDecap (§4.1) and the key schedule (§5.1) are built here
from X25519, HMAC-SHA256 (LabeledExtract/LabeledExpand, §4) and the AEADs.

Single-shot (§6.1) uses sequence number 0 only, so the nonce is ``base_nonce``.
:func:`wrap_data_key` / :func:`unwrap_data_key` apply it to ailedger's data keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ailedger.crypto.errors import HpkeError

MODE_BASE = 0x00
MODE_AUTH = 0x02
KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_128_GCM = 0x0001
AEAD_AES_256_GCM = 0x0002
AEAD_CHACHA20_POLY1305 = 0x0003
_AEAD_KEY_SIZES = {AEAD_AES_128_GCM: 16, AEAD_AES_256_GCM: 32, AEAD_CHACHA20_POLY1305: 32}
_NN = 12  # nonce length of all three AEADs
_NH = 32  # SHA-256 output length
_N_SECRET = 32
_N_PK = 32
_KEM_SUITE_ID = b"KEM" + KEM_X25519_HKDF_SHA256.to_bytes(2, "big")
_VERSION_LABEL = b"HPKE-v1"
_DATA_KEY_INFO = b"ailedger data key v1"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _hpke_suite_id(aead_id: int) -> bytes:
    return (
        b"HPKE"
        + KEM_X25519_HKDF_SHA256.to_bytes(2, "big")
        + KDF_HKDF_SHA256.to_bytes(2, "big")
        + aead_id.to_bytes(2, "big")
    )


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """RFC 9180 §4: HKDF-Extract (RFC 5869 §2.2); an empty salt equals HashLen zeros."""
    return hmac.digest(salt, _VERSION_LABEL + suite_id + label + ikm, hashlib.sha256)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """RFC 9180 §4: HKDF-Expand (RFC 5869 §2.3) with the length-prefixed labeled info."""
    if length > 255 * _NH:
        raise ValueError("HKDF-Expand cannot produce more than 255 * Nh bytes")
    labeled_info = length.to_bytes(2, "big") + _VERSION_LABEL + suite_id + label + info
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + labeled_info + bytes([counter]), hashlib.sha256)
        out += block
        counter += 1
    return out[:length]


def derive_key_pair(ikm: bytes) -> X25519PrivateKey:
    """DeriveKeyPair for X25519 (RFC 9180 §7.1.3); used for the RFC's test vectors."""
    dkp_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = _labeled_expand(_KEM_SUITE_ID, dkp_prk, b"sk", b"", _N_SECRET)
    return X25519PrivateKey.from_private_bytes(sk)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _load_public(raw: bytes, what: str) -> X25519PublicKey:
    if len(raw) != _N_PK:
        raise HpkeError(f"{what} must be a {_N_PK}-byte X25519 public key, got {len(raw)} bytes")
    return X25519PublicKey.from_public_bytes(raw)


def _dh(private: X25519PrivateKey, public: X25519PublicKey) -> bytes:
    try:
        return private.exchange(public)
    except ValueError as exc:
        # §7.1.4: an all-zero DH output (small-order point) must abort.
        raise HpkeError("X25519 gave an all-zero shared secret: invalid public key") from exc


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, _N_SECRET)


def _encap(
    pk_r: X25519PublicKey, sk_s: X25519PrivateKey | None, sk_e: X25519PrivateKey
) -> tuple[bytes, bytes]:
    """Encap (§4.1) when ``sk_s`` is None, else AuthEncap; returns (shared_secret, enc)."""
    enc = _raw(sk_e.public_key())
    dh = _dh(sk_e, pk_r)
    kem_context = enc + _raw(pk_r)
    if sk_s is not None:
        dh += _dh(sk_s, pk_r)
        kem_context += _raw(sk_s.public_key())
    return _extract_and_expand(dh, kem_context), enc


def _decap(enc: bytes, sk_r: X25519PrivateKey, pk_s: X25519PublicKey | None) -> bytes:
    """Decap (§4.1) when ``pk_s`` is None, else AuthDecap."""
    pk_e = _load_public(enc, "enc")
    dh = _dh(sk_r, pk_e)
    kem_context = enc + _raw(sk_r.public_key())
    if pk_s is not None:
        dh += _dh(sk_r, pk_s)
        kem_context += _raw(pk_s)
    return _extract_and_expand(dh, kem_context)


def _key_schedule(
    mode: int, shared_secret: bytes, info: bytes, aead_id: int
) -> tuple[bytes, bytes]:
    """KeySchedule (§5.1) without PSK; returns (key, base_nonce)."""
    suite_id = _hpke_suite_id(aead_id)
    psk_id_hash = _labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite_id, b"", b"info_hash", info)
    context = bytes([mode]) + psk_id_hash + info_hash
    secret = _labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = _labeled_expand(suite_id, secret, b"key", context, _AEAD_KEY_SIZES[aead_id])
    base_nonce = _labeled_expand(suite_id, secret, b"base_nonce", context, _NN)
    return key, base_nonce


def _aead(aead_id: int, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return ChaCha20Poly1305(key) if aead_id == AEAD_CHACHA20_POLY1305 else AESGCM(key)


def _check_aead(aead_id: int) -> None:
    if aead_id not in _AEAD_KEY_SIZES:
        raise ValueError(f"unsupported HPKE AEAD id {aead_id:#06x}")


def _seal_with(
    recipient_public: bytes,
    plaintext: bytes,
    *,
    info: bytes,
    aad: bytes,
    sender_private: X25519PrivateKey | None,
    aead_id: int,
    ephemeral: X25519PrivateKey,
) -> tuple[bytes, bytes]:
    """:func:`seal` with the ephemeral key given: test vectors fix it, callers must not."""
    _check_aead(aead_id)
    pk_r = _load_public(recipient_public, "recipient public key")
    shared_secret, enc = _encap(pk_r, sender_private, ephemeral)
    mode = MODE_BASE if sender_private is None else MODE_AUTH
    key, nonce = _key_schedule(mode, shared_secret, info, aead_id)
    return enc, _aead(aead_id, key).encrypt(nonce, plaintext, aad)


def seal(
    recipient_public: bytes,
    plaintext: bytes,
    *,
    info: bytes,
    aad: bytes,
    sender_private: X25519PrivateKey | None = None,
    aead_id: int = AEAD_AES_256_GCM,
) -> tuple[bytes, bytes]:
    """SealBase / SealAuth (RFC 9180 §6.1): return ``(enc, ciphertext)``.

    With ``sender_private`` the mode is auth: only a recipient who names that sender's
    public key can open the result.
    """
    return _seal_with(
        recipient_public,
        plaintext,
        info=info,
        aad=aad,
        sender_private=sender_private,
        aead_id=aead_id,
        ephemeral=X25519PrivateKey.generate(),
    )


def open_(
    enc: bytes,
    ciphertext: bytes,
    *,
    recipient_private: X25519PrivateKey,
    info: bytes,
    aad: bytes,
    sender_public: bytes | None = None,
    aead_id: int = AEAD_AES_256_GCM,
) -> bytes:
    """OpenBase / OpenAuth (RFC 9180 §6.1); auth mode when ``sender_public`` is given.

    Raises :class:`HpkeError` if anything does not match: enc, ciphertext, aad, info,
    recipient key, claimed sender or mode.
    """
    _check_aead(aead_id)
    pk_s = None if sender_public is None else _load_public(sender_public, "sender public key")
    shared_secret = _decap(enc, recipient_private, pk_s)
    mode = MODE_BASE if pk_s is None else MODE_AUTH
    key, nonce = _key_schedule(mode, shared_secret, info, aead_id)
    try:
        return _aead(aead_id, key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        pass
    raise HpkeError(
        "HPKE open failed: the sealed data was altered, or it was not sealed to this key "
        "by the claimed sender for this context"
    )


def data_key_info(object_id: bytes, version: int, requester: str) -> bytes:
    """The HPKE info binding a wrapped data key to one object version and one requester.

    ``requester`` is an Ethereum address (``0x`` + 40 hex, any case); its 20 bytes are
    used so checksum-case differences cannot make two infos for the same party.
    """
    if len(object_id) != 32:
        raise ValueError(f"object id must be 32 bytes, got {len(object_id)}")
    if not _ADDRESS.fullmatch(requester):
        raise ValueError(f"requester must be an 0x-prefixed 20-byte address, got {requester!r}")
    return (
        _DATA_KEY_INFO
        + b"\x00"
        + object_id
        + version.to_bytes(8, "big")
        + bytes.fromhex(requester[2:])
    )


def wrap_data_key(
    data_key: bytes,
    *,
    recipient_public: bytes,
    owner_private: X25519PrivateKey,
    object_id: bytes,
    version: int,
    requester: str,
) -> bytes:
    """Seal ``data_key`` to the requester in auth mode; returns ``enc || ciphertext``."""
    info = data_key_info(object_id, version, requester)
    enc, ct = seal(recipient_public, data_key, info=info, aad=b"", sender_private=owner_private)
    return enc + ct


def unwrap_data_key(
    wrapped: bytes,
    *,
    recipient_private: X25519PrivateKey,
    owner_public: bytes,
    object_id: bytes,
    version: int,
    requester: str,
) -> bytes:
    """Open a key from :func:`wrap_data_key`, checking it came from ``owner_public``."""
    info = data_key_info(object_id, version, requester)
    if len(wrapped) <= _N_PK:
        raise HpkeError(f"wrapped data key is too short ({len(wrapped)} bytes)")
    return open_(
        wrapped[:_N_PK],
        wrapped[_N_PK:],
        recipient_private=recipient_private,
        info=info,
        aad=b"",
        sender_public=owner_public,
    )
