"""The directory blob store: content addressing, crash safety, name validation."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ailedger.store.blobs import BlobStore, DirectoryBlobStore, check_hash
from ailedger.store.errors import BlobNotFoundError, InvalidBlobHashError


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    # One abstract suite per interface: add other backends to this fixture's params.
    return DirectoryBlobStore(tmp_path / "blobs")


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 * 1024 + 1])
def test_put_open_exists_size_delete(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    ref = store.put_stream(io.BytesIO(data))
    assert ref.hash_hex == hashlib.sha256(data).hexdigest()
    assert ref.size == size
    assert store.exists(ref.hash_hex) and store.size(ref.hash_hex) == size
    with store.open(ref.hash_hex) as blob:
        assert blob.read() == data
    assert store.delete(ref.hash_hex) is True
    assert not store.exists(ref.hash_hex)
    assert store.delete(ref.hash_hex) is False
    with pytest.raises(BlobNotFoundError):
        store.open(ref.hash_hex)
    with pytest.raises(BlobNotFoundError):
        store.size(ref.hash_hex)


def test_layout_and_deduplication(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path)
    first = store.put_stream(io.BytesIO(b"same"))
    second = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert (tmp_path / first.hash_hex[:2] / first.hash_hex[2:]).read_bytes() == b"same"
    assert [p.name for p in tmp_path.iterdir()] == [first.hash_hex[:2]]  # no temp left


def test_abandoned_write_leaves_no_blob(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path)
    with pytest.raises(RuntimeError), store.create() as writer:
        writer.write(b"partial")
        raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []


def test_crash_leftovers_are_cleaned_on_open(tmp_path: Path) -> None:
    # A real crash: a child process dies (os._exit) in the middle of a blob write.
    script = (
        "import os, sys; from pathlib import Path;"
        "from ailedger.store.blobs import DirectoryBlobStore;"
        "w = DirectoryBlobStore(Path(sys.argv[1])).create();"
        "w.write(b'half a blob' * 1000); os._exit(3)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert done.returncode == 3
    leftovers = list(tmp_path.glob(".tmp-*"))
    assert len(leftovers) == 1
    store = DirectoryBlobStore(tmp_path)  # restart
    assert list(tmp_path.iterdir()) == []
    assert not store.exists(hashlib.sha256(b"half a blob" * 1000).hexdigest())


@pytest.mark.parametrize(
    "name",
    [
        "../" + "a" * 61,
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "a" * 64 + "\n",
        "/" + "a" * 63,
        "aa/" + "b" * 61,
        "",
    ],
)
def test_invalid_names_are_rejected(store: BlobStore, name: str) -> None:
    with pytest.raises(InvalidBlobHashError):
        check_hash(name)
    for call in (store.open, store.exists, store.size, store.delete):
        with pytest.raises(InvalidBlobHashError):
            call(name)
