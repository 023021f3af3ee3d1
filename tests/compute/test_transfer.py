"""Sealed log batches and encrypted outputs, provider to requester."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

from ailedger.compute.outputs import output_hash
from ailedger.compute.transfer import (
    OutputMismatchError,
    open_log_batch,
    open_output,
    output_object_id,
    seal_log_batch,
    seal_output,
)
from ailedger.crypto.errors import CryptoError, HpkeError

REQUESTER_KEY = X25519PrivateKey.generate()
PROVIDER_KEY = X25519PrivateKey.generate()
REQUESTER_PUB = REQUESTER_KEY.public_key().public_bytes_raw()
PROVIDER_PUB = PROVIDER_KEY.public_key().public_bytes_raw()
REQUESTER = Account.create().address
PROVIDER = Account.create().address
CHAIN, JOB = 31337, 42
TEXT = "epoch 1 loss 0.25\nünïcode ✓\n"


def sealed_log(**over: Any) -> bytes:
    args: dict[str, Any] = dict(
        requester_public=REQUESTER_PUB,
        provider_key=PROVIDER_KEY,
        chain_id=CHAIN,
        job_id=JOB,
        provider=PROVIDER,
        seq=3,
    )
    return seal_log_batch(TEXT, **{**args, **over})


def open_log(sealed: bytes, **over: Any) -> str:
    args: dict[str, Any] = dict(
        requester_key=REQUESTER_KEY,
        provider_public=PROVIDER_PUB,
        chain_id=CHAIN,
        job_id=JOB,
        provider=PROVIDER,
        seq=3,
    )
    return open_log_batch(sealed, **{**args, **over})


def test_log_batch_round_trip() -> None:
    sealed = sealed_log()
    assert TEXT.encode() not in sealed
    assert open_log(sealed) == TEXT
    # the provider's address is compared as 20 bytes, not as text
    assert open_log(sealed, provider=PROVIDER.lower()) == TEXT


@pytest.mark.parametrize(
    "over",
    [
        {"job_id": JOB + 1},
        {"seq": 4},
        {"provider": Account.create().address},
        {"chain_id": 1},
        {"provider_public": X25519PrivateKey.generate().public_key().public_bytes_raw()},
        {"requester_key": X25519PrivateKey.generate()},
    ],
)
def test_log_batch_bound_to_its_context(over: dict[str, Any]) -> None:
    with pytest.raises(HpkeError):
        open_log(sealed_log(), **over)


@pytest.mark.parametrize("index", [0, 31, 32, -1])
def test_log_batch_flipped_byte(index: int) -> None:
    sealed = bytearray(sealed_log())
    sealed[index] ^= 0x01
    with pytest.raises(CryptoError):
        open_log(bytes(sealed))


def test_log_batch_truncated() -> None:
    with pytest.raises(CryptoError):
        open_log(sealed_log()[:40])


# ---------------------------------------------------------------------- outputs


def make_output(root: Path) -> Path:
    files = {
        "ailedger-exit.json": b'{"exit_code": 0, "reason": "exited"}\n',
        "model.bin": bytes(range(256)) * 40,
        "metrics/summary.json": b'{"acc": 0.9}',
        "metrics/deep/er/empty.txt": b"",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def seal_to(tmp_path: Path, root: Path, **over: Any) -> Path:
    upload = tmp_path / "upload.bin"
    args: dict[str, Any] = dict(
        requester=REQUESTER,
        requester_public=REQUESTER_PUB,
        provider_key=PROVIDER_KEY,
        chain_id=CHAIN,
        job_id=JOB,
    )
    seal_output(root, upload, **{**args, **over})
    return upload


def open_to(upload: Path, dest: Path, expected: bytes, **over: Any) -> None:
    args: dict[str, Any] = dict(
        requester=REQUESTER,
        requester_key=REQUESTER_KEY,
        provider_public=PROVIDER_PUB,
        chain_id=CHAIN,
        job_id=JOB,
        expected_hash=expected,
    )
    open_output(upload, dest, **{**args, **over})


def assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def output(tmp_path: Path) -> tuple[Path, bytes, Path]:
    root = make_output(tmp_path / "out")
    return root, output_hash(root), seal_to(tmp_path, root)


def test_output_round_trip(tmp_path: Path, output: tuple[Path, bytes, Path]) -> None:
    root, digest, upload = output
    assert b"acc" not in upload.read_bytes()
    dest = tmp_path / "results" / "job-42"
    open_to(upload, dest, digest)
    assert output_hash(dest) == digest
    for path in root.rglob("*"):
        twin = dest / path.relative_to(root)
        assert twin.is_dir() if path.is_dir() else twin.read_bytes() == path.read_bytes()
    assert_nothing_left(tmp_path / "results" / "other")


def test_output_wrong_hash(tmp_path: Path, output: tuple[Path, bytes, Path]) -> None:
    _, _, upload = output
    dest = tmp_path / "results" / "job-42"
    with pytest.raises(OutputMismatchError, match="went on chain"):
        open_to(upload, dest, bytes(32))
    assert_nothing_left(dest)


@pytest.mark.parametrize(
    "over",
    [
        {"job_id": JOB + 1},
        {"chain_id": 1},
        {"requester": Account.create().address},
        {"provider_public": X25519PrivateKey.generate().public_key().public_bytes_raw()},
    ],
)
def test_output_bound_to_its_context(
    tmp_path: Path, output: tuple[Path, bytes, Path], over: dict[str, Any]
) -> None:
    _, digest, upload = output
    dest = tmp_path / "results" / "job"
    with pytest.raises(HpkeError):
        open_to(upload, dest, digest, **over)
    assert_nothing_left(dest)


def test_output_object_id_is_per_job_and_chain() -> None:
    ids = {output_object_id(CHAIN, JOB), output_object_id(CHAIN, JOB + 1), output_object_id(1, JOB)}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)


@pytest.mark.parametrize("cut", [1, 100])
def test_output_truncated(tmp_path: Path, output: tuple[Path, bytes, Path], cut: int) -> None:
    _, digest, upload = output
    upload.write_bytes(upload.read_bytes()[:-cut])
    dest = tmp_path / "results" / "job"
    with pytest.raises(CryptoError):
        open_to(upload, dest, digest)
    assert_nothing_left(dest)


def test_output_flipped_byte_in_body(tmp_path: Path, output: tuple[Path, bytes, Path]) -> None:
    _, digest, upload = output
    data = bytearray(upload.read_bytes())
    data[-50] ^= 0x01
    upload.write_bytes(bytes(data))
    dest = tmp_path / "results" / "job"
    with pytest.raises(CryptoError):
        open_to(upload, dest, digest)
    assert_nothing_left(dest)


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x00\x00\x00rest", b"\xff\xff\xff\xff" + b"x" * 64, b"\x00\x00\x10\x01"]
)
def test_output_garbage(tmp_path: Path, data: bytes) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(data)
    dest = tmp_path / "results" / "job"
    with pytest.raises(OutputMismatchError, match="not an ailedger job output"):
        open_to(upload, dest, bytes(32))
    assert_nothing_left(dest)


def test_output_garbage_key(tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes((80).to_bytes(4, "big") + b"k" * 80 + b"body")
    dest = tmp_path / "results" / "job"
    with pytest.raises(HpkeError):
        open_to(upload, dest, bytes(32))
    assert_nothing_left(dest)
