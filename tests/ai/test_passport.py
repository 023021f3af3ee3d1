"""Model passports: signing, stock verification, the attacks, and incremental re-signing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import signing, verifying

from ailedger.ai._manifest import HashHook
from ailedger.ai.errors import (
    LineageError,
    ModelDirectoryError,
    PassportError,
    SignatureInvalidError,
)
from ailedger.ai.lineage import DatasetUse, Evaluation, Lineage, PrivacyCharge, TrainingJob
from ailedger.ai.passport import (
    CARD_FILE,
    LINEAGE_FILE,
    Passport,
    passport_key,
    sign_passport,
    verify_passport,
)

H1, H2 = "0x" + "11" * 32, "0x" + "22" * 32
LINEAGE = Lineage(
    name="sepsis-risk",
    version="1.0.0",
    training_jobs=(TrainingJob(7, H1),),
    datasets=(DatasetUse(H2, 3),),
    privacy=(PrivacyCharge(H2, 0, 0.5),),
    evaluation=Evaluation(H1, {"auc": 0.91}),
    created_at=1_780_000_000,
)
CARD = "# sepsis-risk 1.0.0\n\nGradient boosting on de-identified vitals.\n"
WEIGHTS = ("weights-0.bin", "nested/weights-1.bin")
Key = tuple[ec.EllipticCurvePrivateKey, bytes]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    directory = tmp_path / "models" / "sepsis-risk"
    for i, name in enumerate(WEIGHTS):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * 300_000 + os.urandom(1000))
        # Written long before signing, as real weights are: not "racily clean" entries.
        os.utime(path, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    return directory


@pytest.fixture
def key(tmp_path: Path) -> Key:
    return passport_key(tmp_path / "home")


def _sign(model: Path, key: Key, card: str = CARD, on_hash: HashHook | None = None) -> Passport:
    out = model.parent / "passport.sig"
    return sign_passport(model, LINEAGE, card, key[0], out, on_hash=on_hash)


def _stock_verify(model: Path, bundle: Path, public_pem: bytes, tmp_path: Path) -> None:
    pub = tmp_path / "stock-key.pub"
    pub.write_bytes(public_pem)
    config = verifying.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_verifier(public_key=pub).verify(model, bundle)


def test_passport_verifies_and_returns_lineage_and_card(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    verified = verify_passport(model, passport.path, key[1])
    assert verified.lineage == LINEAGE
    assert verified.card == CARD
    assert verified.sha256 == passport.sha256
    assert set(passport.files) == {CARD_FILE, LINEAGE_FILE, *WEIGHTS}
    assert verified.files == passport.files
    assert (model / LINEAGE_FILE).read_bytes() == LINEAGE.to_json()


def test_stock_api_and_cli_verify_our_passport(model: Path, key: Key, tmp_path: Path) -> None:
    passport = _sign(model, key)
    _stock_verify(model, passport.path, key[1], tmp_path)
    pub = tmp_path / "cli-key.pub"
    pub.write_bytes(key[1])
    cli = [sys.executable, "-m", "model_signing", "verify", "key", str(model)]
    ok = subprocess.run(
        [*cli, "--signature", str(passport.path), "--public_key", str(pub)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (model / CARD_FILE).write_text("edited")
    refused = subprocess.run(
        [*cli, "--signature", str(passport.path), "--public_key", str(pub)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0


def test_statement_is_the_one_stock_signing_makes(model: Path, key: Key, tmp_path: Path) -> None:
    passport = _sign(model, key)
    pem = tmp_path / "stock.pem"
    pem.write_bytes(
        key[0].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    stock = tmp_path / "stock.sig"
    signing.Config().use_elliptic_key_signer(private_key=pem).sign(model, stock)  # type: ignore[no-untyped-call]
    # ECDSA signatures are randomized: the signed statements must be equal, byte for byte.
    assert (
        json.loads(stock.read_bytes())["dsseEnvelope"]["payload"]
        == json.loads(passport.path.read_bytes())["dsseEnvelope"]["payload"]
    )


def test_card_edited_after_signing_is_refused_by_name(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    (model / CARD_FILE).write_text(CARD + "\nNow also approved for children.\n")
    with pytest.raises(SignatureInvalidError, match=CARD_FILE) as caught:
        verify_passport(model, passport.path, key[1])
    assert caught.value.files == (CARD_FILE,)


def test_weight_changed_is_refused(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    weights = model / WEIGHTS[1]
    data = bytearray(weights.read_bytes())
    data[12345] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(SignatureInvalidError, match="changed") as caught:
        verify_passport(model, passport.path, key[1])
    assert caught.value.files == (WEIGHTS[1],)


def test_extra_file_is_refused(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    (model / "backdoor.py").write_text("import os")
    with pytest.raises(SignatureInvalidError, match="added") as caught:
        verify_passport(model, passport.path, key[1])
    assert caught.value.files == ("backdoor.py",)


def test_missing_file_is_refused(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    (model / WEIGHTS[0]).unlink()
    with pytest.raises(SignatureInvalidError, match="removed"):
        verify_passport(model, passport.path, key[1])


def test_lineage_edited_is_refused(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    forged = LINEAGE.to_json().replace(b'"grant":3', b'"grant":4')
    assert forged != LINEAGE.to_json()
    (model / LINEAGE_FILE).write_bytes(forged)
    with pytest.raises(SignatureInvalidError, match=LINEAGE_FILE):
        verify_passport(model, passport.path, key[1])


def test_bundle_signed_by_another_key_is_refused(model: Path, key: Key, tmp_path: Path) -> None:
    other, _ = passport_key(tmp_path / "other-home")
    forged = sign_passport(model, LINEAGE, CARD, other, tmp_path / "forged.sig")
    with pytest.raises(SignatureInvalidError):
        verify_passport(model, forged.path, key[1])


def test_statement_edited_in_the_bundle_is_refused(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    bundle = json.loads(passport.path.read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"] = statement["predicate"]["resources"][:-1]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    passport.path.write_text(json.dumps(bundle))
    with pytest.raises(SignatureInvalidError):
        verify_passport(model, passport.path, key[1])


@pytest.mark.parametrize("garbage", [b"", b"not json", b'{"dsseEnvelope": 1}', b"[" * 5000])
def test_unreadable_bundle_is_refused(model: Path, key: Key, garbage: bytes) -> None:
    passport = _sign(model, key)
    passport.path.write_bytes(garbage)
    with pytest.raises(SignatureInvalidError):
        verify_passport(model, passport.path, key[1])


def test_unreadable_public_key_is_an_error(model: Path, key: Key) -> None:
    passport = _sign(model, key)
    with pytest.raises(PassportError, match="public key"):
        verify_passport(model, passport.path, b"not a key")


def test_resign_after_card_edit_hashes_only_the_card(
    model: Path,
    key: Key,
    tmp_path: Path,
) -> None:
    first: list[str] = []
    _sign(model, key, on_hash=lambda rel, size: first.append(rel))
    assert set(first) == {CARD_FILE, LINEAGE_FILE, *WEIGHTS}
    again: list[tuple[str, int]] = []
    passport = _sign(
        model, key, card=CARD + "\nEdited.\n", on_hash=lambda rel, size: again.append((rel, size))
    )
    # No weight is read again. The small files the last signing wrote may be: one
    # written within the same tick of the clock as that signing is re-hashed on purpose.
    hashed = [rel for rel, _ in again]
    assert CARD_FILE in hashed and set(hashed) <= {CARD_FILE, LINEAGE_FILE}
    _stock_verify(model, passport.path, key[1], tmp_path)
    assert verify_passport(model, passport.path, key[1]).card == CARD + "\nEdited.\n"


def test_weights_rewritten_with_same_size_and_mtime_are_rehashed(
    model: Path,
    key: Key,
    tmp_path: Path,
) -> None:
    _sign(model, key)
    weights = model / WEIGHTS[0]
    before = weights.stat()
    weights.write_bytes(b"\xff" * before.st_size)  # same size; the mtime is put back below
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    hashed: list[str] = []
    passport = _sign(model, key, on_hash=lambda rel, size: hashed.append(rel))
    assert WEIGHTS[0] in hashed
    _stock_verify(model, passport.path, key[1], tmp_path)


def test_passport_inside_the_model_directory_is_refused(model: Path, key: Key) -> None:
    with pytest.raises(PassportError, match="inside the model directory"):
        sign_passport(model, LINEAGE, CARD, key[0], model / "passport.sig")


def test_symlink_in_the_model_is_refused(model: Path, key: Key, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("x")
    (model / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelDirectoryError, match="symbolic link"):
        _sign(model, key)


def test_stock_signed_model_without_lineage_is_refused(
    model: Path,
    key: Key,
    tmp_path: Path,
) -> None:
    pem = tmp_path / "stock.pem"
    pem.write_bytes(
        key[0].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    bundle = tmp_path / "stock.sig"
    signing.Config().use_elliptic_key_signer(private_key=pem).sign(model, bundle)  # type: ignore[no-untyped-call]
    with pytest.raises(LineageError, match=LINEAGE_FILE):
        verify_passport(model, bundle, key[1])


def test_passport_key_is_private_and_stable(tmp_path: Path) -> None:
    private, public_pem = passport_key(tmp_path / "home")
    path = tmp_path / "home" / "keys" / "passport-signing.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "home" / "keys" / "passport-signing.pub.pem").read_bytes() == public_pem
    again, again_pem = passport_key(tmp_path / "home")
    assert again_pem == public_pem
    assert again.private_numbers() == private.private_numbers()


def test_damaged_passport_key_is_an_error(tmp_path: Path) -> None:
    passport_key(tmp_path / "home")
    (tmp_path / "home" / "keys" / "passport-signing.pem").write_text("not a key")
    with pytest.raises(PassportError, match="not a PEM private key"):
        passport_key(tmp_path / "home")
