"""Model passports: a signed statement over a model version's files, card and lineage.

A passport is a bundle in the OpenSSF model-signing format (model-signing 1.1.1): a
Sigstore bundle whose DSSE envelope signs an in-toto Statement (predicate type
``https://model_signing/signature/v1.0``) listing the SHA-256 of every file of the model
directory. The card (``MODEL_CARD.md``) and the lineage (``ailedger-lineage.json``) are
written into the directory before signing, so they are signed like any other file and the
stock verifier (``model_signing verify key``) checks them with the weights. The bundle's
SHA-256 is what ModelRegistry records on chain.

The digests come from :mod:`ailedger.ai._manifest`, which re-reads only files changed since
the last signing; the manifest built from them is handed to model-signing's own signer, so
the bundle is byte-for-byte what a full stock signing would write (the tests compare both).
The signing key is a P-256 key of the node home (Sigstore's protobuf specs list P-256, and
model-signing refuses Ed25519).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import exceptions as crypto_exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, manifest, signing, verifying
from model_signing._hashing.hashing import Digest

from ailedger._durable import PUBLIC_FILE_MODE, atomic_write, fsync_file, replace_durably
from ailedger.ai._manifest import HashHook, digest_files
from ailedger.ai.errors import LineageError, PassportError, SignatureInvalidError
from ailedger.ai.lineage import MAX_LINEAGE_BYTES, Lineage
from ailedger.home_layout import HomeLayout
from ailedger.untrusted_json import parse_untrusted

LINEAGE_FILE = "ailedger-lineage.json"
CARD_FILE = "MODEL_CARD.md"
MAX_CARD_BYTES = 1 << 20
MAX_BUNDLE_BYTES = 64 << 20
"""A bundle lists one digest per file: 64 MiB is hundreds of thousands of files."""


@dataclass(frozen=True)
class Passport:
    """A signed passport: where its bundle is, the bundle's SHA-256 (``0x`` hex, the value
    registered on chain) and the signed digest of each file (hex, by relative path)."""

    path: Path
    sha256: str
    files: dict[str, str]


@dataclass(frozen=True)
class VerifiedPassport:
    """What a verified passport vouches for."""

    sha256: str
    lineage: Lineage
    card: str
    files: dict[str, str]


def passport_key(home_path: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """The home's passport signing key and its public PEM; made on first use (0600)."""
    layout = HomeLayout(home_path)
    path = layout.passport_key
    if not path.exists():
        # Only the owner may list the keys directory (mkdir's mode is narrowed by the umask).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = ec.generate_private_key(ec.SECP256R1())
        atomic_write(
            path,
            fresh.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    # Read back what is on disk: if two processes made a key at once, both use the winner.
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except ValueError as exc:
        raise PassportError(
            f"{path} is not a PEM private key ({exc}): restore it from a "
            "backup, or move it away to make a new key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PassportError(f"{path} is not a P-256 key: move it away to make a new key")
    public_pem = _public_pem(key)
    if not layout.passport_public_key.exists() or (
        layout.passport_public_key.read_bytes() != public_pem
    ):
        atomic_write(layout.passport_public_key, public_pem, mode=PUBLIC_FILE_MODE)
    return key, public_pem


def sign_passport(
    model_dir: Path,
    lineage: Lineage,
    card: str,
    key: ec.EllipticCurvePrivateKey,
    out: Path,
    *,
    digest_cache: Path | None = None,
    on_hash: HashHook | None = None,
) -> Passport:
    """Write the card and lineage into ``model_dir``, sign the directory and write the
    bundle to ``out`` (outside ``model_dir``). Files unchanged since the last signing are
    not read again: their digests are kept in ``digest_cache`` (by default
    ``.<model dir name>.ailedger-digests.json`` beside the directory)."""
    model_dir = model_dir.resolve()
    out = out.resolve()
    if out.is_relative_to(model_dir):
        raise PassportError(
            f"the passport {out} is inside the model directory, where it "
            "would be signed as a model file: write it elsewhere"
        )
    card_bytes = card.encode("utf-8")
    if len(card_bytes) > MAX_CARD_BYTES:
        raise PassportError(
            f"the model card is {len(card_bytes)} bytes, over "
            f"{MAX_CARD_BYTES}: link long material from it instead"
        )
    lineage_bytes = lineage.to_json()
    if len(lineage_bytes) > MAX_LINEAGE_BYTES:
        raise LineageError(
            f"the lineage is {len(lineage_bytes)} bytes, over "
            f"{MAX_LINEAGE_BYTES}: it would not read back"
        )
    _write_if_changed(model_dir / CARD_FILE, card_bytes)
    _write_if_changed(model_dir / LINEAGE_FILE, lineage_bytes)
    cache = digest_cache or model_dir.parent / f".{model_dir.name}.ailedger-digests.json"
    digests = digest_files(model_dir, cache, on_hash=on_hash)
    config = signing.Config().set_hashing_config(  # type: ignore[no-untyped-call]
        _Precomputed(_manifest(model_dir, digests))
    )
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        with _key_file(key) as key_path:
            config.use_elliptic_key_signer(private_key=key_path).sign(model_dir, tmp)
        bundle = tmp.read_bytes()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            fsync_file(fd)
        finally:
            os.close(fd)
        replace_durably(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Passport(out, "0x" + hashlib.sha256(bundle).hexdigest(), digests)


def verify_passport(model_dir: Path, bundle: Path, public_pem: bytes) -> VerifiedPassport:
    """Verify ``bundle`` over ``model_dir`` with model-signing's stock verifier (signature,
    every file's digest, no file extra or missing), then read the signed lineage and card."""
    try:
        with bundle.open("rb") as f:
            raw = f.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise SignatureInvalidError(f"the passport {bundle} cannot be read: {exc}") from None
    if len(raw) > MAX_BUNDLE_BYTES:
        raise SignatureInvalidError(f"{bundle} is {len(raw)} bytes: not a passport")
    with tempfile.TemporaryDirectory(prefix="ailedger-passport-") as scratch:
        # Verify a private copy, so the bytes checked are the bytes parsed below.
        copy, pub = Path(scratch) / "bundle.sig", Path(scratch) / "key.pub"
        copy.write_bytes(raw)
        pub.write_bytes(public_pem)
        _stock_verify(model_dir, copy, pub)
    files = _signed_files(raw)
    lineage_bytes = _signed_file(model_dir, LINEAGE_FILE, files, LineageError)
    card_bytes = _signed_file(model_dir, CARD_FILE, files, PassportError)
    try:
        card = card_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise PassportError(f"the signed {CARD_FILE} is not UTF-8 text") from None
    return VerifiedPassport(
        "0x" + hashlib.sha256(raw).hexdigest(), Lineage.from_json(lineage_bytes), card, files
    )


class _Precomputed(hashing.Config):
    """A hashing configuration that answers with a manifest built beforehand."""

    def __init__(self, built: manifest.Manifest) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._built = built

    def hash(self, model_path: Any, *, files_to_hash: Any = None) -> manifest.Manifest:
        return self._built


def _manifest(model_dir: Path, digests: dict[str, str]) -> manifest.Manifest:
    # The serialization block (method, hash type, ignored git paths) is taken from the stock
    # configuration hashing no file, so it matches what a stock signing records.
    empty = hashing.Config().hash(  # type: ignore[no-untyped-call]
        model_dir, files_to_hash=[]
    )
    kind = manifest.SerializationType.from_args(empty.serialization_type)
    items = [kind.new_item(rel, Digest("sha256", bytes.fromhex(d))) for rel, d in digests.items()]
    return manifest.Manifest(empty.model_name, items, kind)


@contextlib.contextmanager
def _key_file(key: ec.EllipticCurvePrivateKey) -> Iterator[Path]:
    """The key as a PEM file for model-signing's signer, which only reads paths: an
    anonymous memory file where Linux has them, else a file in a private temporary dir."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create("ailedger-passport-key")
        try:
            os.write(fd, pem)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ailedger-key-") as private:
        path = Path(private) / "key.pem"
        atomic_write(path, pem)
        yield path


def _stock_verify(model_dir: Path, bundle: Path, public_key: Path) -> None:
    try:
        config = verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
            public_key=public_key
        )
    except (ValueError, TypeError) as exc:
        raise PassportError(
            f"the public key is not a PEM P-256, P-384 or P-521 key ({exc}): pass the "
            "signer's passport-signing.pub.pem"
        ) from None
    try:
        config.verify(model_dir, bundle)
    except crypto_exceptions.InvalidSignature:
        raise SignatureInvalidError(
            f"{bundle} was not signed by this key, or was altered: do not use the model"
        ) from None
    except ValueError as exc:
        if not str(exc).startswith("Signature mismatch"):
            raise SignatureInvalidError(f"the passport does not verify: {exc}") from None
        # The signature held (model-signing checks it first): name the files that differ.
        raise _mismatch(model_dir, _signed_files(bundle.read_bytes())) from None
    except (OSError, KeyError, TypeError) as exc:
        raise SignatureInvalidError(f"{bundle} is not a readable passport: {exc}") from None


def _mismatch(model_dir: Path, signed: dict[str, str]) -> SignatureInvalidError:
    actual = digest_files(model_dir, None)
    changed = sorted(f for f in signed.keys() & actual.keys() if signed[f] != actual[f])
    extra = sorted(actual.keys() - signed.keys())
    missing = sorted(signed.keys() - actual.keys())
    parts = [
        f"{what}: {', '.join(names)}"
        for what, names in (("changed", changed), ("added", extra), ("removed", missing))
        if names
    ]
    return SignatureInvalidError(
        f"{model_dir} is not what was signed ({'; '.join(parts)}): the model was edited "
        "after signing; do not use it, or sign it again if the edit is yours",
        tuple(changed + extra + missing),
    )


def _signed_files(raw: bytes) -> dict[str, str]:
    """The per-file digests of a bundle that has been verified."""
    try:
        envelope = parse_untrusted(raw)["dsseEnvelope"]
        payload = parse_untrusted(base64.b64decode(envelope["payload"]))
        return {r["name"]: r["digest"] for r in payload["predicate"]["resources"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureInvalidError(f"the passport's statement cannot be read: {exc}") from None


def _signed_file(
    model_dir: Path, name: str, files: dict[str, str], error: type[PassportError]
) -> bytes:
    if name not in files:
        raise error(f"the passport signs no {name}: sign the model with ailedger")
    with (model_dir / name).open("rb") as f:
        data = f.read(MAX_CARD_BYTES + 1)
    if len(data) > MAX_CARD_BYTES:
        raise error(f"the signed {name} is over {MAX_CARD_BYTES} bytes: not a passport file")
    # Read once and checked against the signed digest: a change since verification is caught.
    if hashlib.sha256(data).hexdigest() != files[name]:
        raise SignatureInvalidError(f"{name} changed after verification: verify again", (name,))
    return data


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_if_changed(path: Path, data: bytes) -> None:
    # Rewriting identical bytes would change the file's stat and cost a re-hash.
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    atomic_write(path, data, mode=PUBLIC_FILE_MODE)
