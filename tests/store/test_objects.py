"""encrypt_object / decrypt_object: files and directories, determinism, tamper safety."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ailedger.crypto.errors import DecryptionError, WrongObjectError
from ailedger.crypto.stream import CONTENT_TAR, TAG_SIZE, StreamEncryptor
from ailedger.store.blobs import DirectoryBlobStore
from ailedger.store.errors import StoreError, UnsafeArchiveError
from ailedger.store.objects import decrypt_object, encrypt_object

OID = b"\x01" * 32
KEY = b"\x02" * 32


@pytest.fixture
def store(tmp_path: Path) -> DirectoryBlobStore:
    return DirectoryBlobStore(tmp_path / "blobs")


def _tree(root: Path) -> Path:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "b" / "deep" / "data.bin").write_bytes(os.urandom(200_000))
    (root / "b" / "empty").mkdir()
    script = root / "run.sh"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o755)
    return root


def _files(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("size", [0, 1, 65536, 300_001])
def test_file_round_trip(tmp_path: Path, store: DirectoryBlobStore, size: int) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(size))
    seen: list[int] = []
    obj = encrypt_object(src, store, object_id=OID, version=3, progress=seen.append)
    assert obj.plaintext_size == size and not obj.is_directory
    assert seen[-1] == size
    assert store.size(obj.blob.hash_hex) == obj.blob.size
    dest = tmp_path / "out.bin"
    with store.open(obj.blob.hash_hex) as blob:
        assert not decrypt_object(blob, obj.data_key, object_id=OID, version=3, dest=dest)
    assert dest.read_bytes() == src.read_bytes()


def test_directory_round_trip(tmp_path: Path, store: DirectoryBlobStore) -> None:
    src = _tree(tmp_path / "src")
    obj = encrypt_object(src, store, object_id=OID, version=1)
    assert obj.is_directory
    dest = tmp_path / "out"
    with store.open(obj.blob.hash_hex) as blob:
        assert decrypt_object(blob, obj.data_key, object_id=OID, version=1, dest=dest)
    assert _files(dest) == _files(src)
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "a.txt", os.X_OK)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_directory_packing_is_deterministic(tmp_path: Path, store: DirectoryBlobStore) -> None:
    first = _tree(tmp_path / "one")
    second = tmp_path / "two"
    second.mkdir()
    # same content, created in another order and at another time, with other modes
    (second / "run.sh").write_bytes(b"#!/bin/sh\n")
    (second / "run.sh").chmod(0o700)
    (second / "b" / "empty").mkdir(parents=True)
    (second / "b" / "deep").mkdir()
    (second / "b" / "deep" / "data.bin").write_bytes((first / "b/deep/data.bin").read_bytes())
    (second / "a.txt").write_bytes(b"alpha")
    (second / "a.txt").chmod(0o600)
    os.utime(second / "a.txt", (1, 1))
    kw = {"object_id": OID, "version": 1, "data_key": KEY, "nonce_prefix": bytes(7)}
    one = encrypt_object(first, store, **kw)  # type: ignore[arg-type]
    two = encrypt_object(second, store, **kw)  # type: ignore[arg-type]
    assert one.blob == two.blob


def test_tampered_object_leaves_nothing(tmp_path: Path, store: DirectoryBlobStore) -> None:
    for source in (_tree(tmp_path / "src"), tmp_path / "f"):
        if not source.exists():
            source.write_bytes(os.urandom(150_000))
        obj = encrypt_object(source, store, object_id=OID, version=1)
        with store.open(obj.blob.hash_hex) as blob:
            ct = blob.read()
        for bad in (ct[:-1], ct[: len(ct) // 2], ct[:-40] + bytes([ct[-40] ^ 1]) + ct[-39:]):
            dest = tmp_path / "dest"
            with pytest.raises(DecryptionError):
                decrypt_object(io.BytesIO(bad), obj.data_key, object_id=OID, version=1, dest=dest)
            assert not dest.exists()
            assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        with pytest.raises(WrongObjectError):
            decrypt_object(
                io.BytesIO(ct), obj.data_key, object_id=OID, version=2, dest=tmp_path / "x"
            )


def test_existing_destination_is_refused(tmp_path: Path, store: DirectoryBlobStore) -> None:
    (tmp_path / "f").write_bytes(b"x")
    obj = encrypt_object(tmp_path / "f", store, object_id=OID, version=1)
    with pytest.raises(StoreError), store.open(obj.blob.hash_hex) as blob:
        decrypt_object(blob, obj.data_key, object_id=OID, version=1, dest=tmp_path / "f")


def test_symlinks_are_refused_when_packing(tmp_path: Path, store: DirectoryBlobStore) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchiveError):
        encrypt_object(src, store, object_id=OID, version=1)
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def _encrypted_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """An authentic ciphertext of a hostile tar: authentication cannot catch this."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out = io.BytesIO()
    enc = StreamEncryptor(out, KEY, object_id=OID, version=1, content_type=CONTENT_TAR)
    enc.write(raw.getvalue())
    enc.close()
    return out.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _info("/etc/evil"),
        _info("../evil"),
        _info("a/../../evil"),
        _info("link", tarfile.SYMTYPE, "/etc/passwd"),
        _info("hard", tarfile.LNKTYPE, "../../x"),
        _info("dev", tarfile.CHRTYPE),
        _info("fifo", tarfile.FIFOTYPE),
    ],
)
def test_hostile_archives_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    ct = _encrypted_tar([(member, b"payload")])
    dest = tmp_path / "out" / "dest"
    dest.parent.mkdir()
    with pytest.raises(UnsafeArchiveError):
        decrypt_object(io.BytesIO(ct), KEY, object_id=OID, version=1, dest=dest)
    assert list(dest.parent.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_duplicate_archive_entries_are_refused(tmp_path: Path) -> None:
    ct = _encrypted_tar([(_info("a"), b"one"), (_info("a"), b"two")])
    with pytest.raises(UnsafeArchiveError, match="twice"):
        decrypt_object(io.BytesIO(ct), KEY, object_id=OID, version=1, dest=tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_ciphertext_size_is_plaintext_plus_overhead(
    tmp_path: Path, store: DirectoryBlobStore
) -> None:
    (tmp_path / "f").write_bytes(bytes(3 * 65536 + 1))
    obj = encrypt_object(tmp_path / "f", store, object_id=OID, version=1)
    assert obj.blob.size == 57 + obj.plaintext_size + 4 * TAG_SIZE
