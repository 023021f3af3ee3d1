"""STREAM / AES-256-GCM streaming encryption: round trips, tampering, constant memory."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.crypto.errors import CiphertextFormatError, DecryptionError, WrongObjectError
from ailedger.crypto.stream import (
    HEADER_SIZE,
    SEGMENT_SIZE,
    TAG_SIZE,
    StreamEncryptor,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
)

KEY = bytes(range(32))
OID = b"\x07" * 32
SEG = 1000  # small segments keep the tamper tests fast


def _encrypt(data: bytes, segment_size: int = SEG, **kw: object) -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data),
        out,
        KEY,
        object_id=OID,
        version=1,
        segment_size=segment_size,
        **kw,  # type: ignore[arg-type]
    )
    return out.getvalue()


def _decrypt(ct: bytes, key: bytes = KEY, oid: bytes = OID, version: int = 1) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ct), out, key, object_id=oid, version=version)
    return out.getvalue()


def _segments(ct: bytes, segment_size: int = SEG) -> tuple[bytes, list[bytes]]:
    size = segment_size + TAG_SIZE
    body = ct[HEADER_SIZE:]
    return ct[:HEADER_SIZE], [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 5 * SEG + 7, 4 * SEG])
def test_round_trip_boundary_sizes(size: int) -> None:
    data = os.urandom(size)
    ct = _encrypt(data)
    segments = max(1, -(-size // SEG))
    assert len(ct) == HEADER_SIZE + size + segments * TAG_SIZE
    assert _decrypt(ct) == data


def test_default_segment_size_round_trip() -> None:
    data = os.urandom(3 * SEGMENT_SIZE + 5)
    assert _decrypt(_encrypt(data, SEGMENT_SIZE)) == data


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    segment_size=st.integers(1, 700),
    pieces=st.lists(st.integers(0, 900), max_size=8),
)
def test_round_trip_any_size_and_write_pattern(
    data: bytes, segment_size: int, pieces: list[int]
) -> None:
    out = io.BytesIO()
    enc = StreamEncryptor(out, KEY, object_id=OID, version=9, segment_size=segment_size)
    pos = 0
    for piece in pieces:  # arbitrary write sizes, then the rest
        enc.write(data[pos : pos + piece])
        pos += piece
    enc.write(data[pos:])
    enc.close()
    assert enc.plaintext_size == len(data)
    plain = io.BytesIO()
    decrypt_stream(io.BytesIO(out.getvalue()), plain, KEY, object_id=OID, version=9)
    assert plain.getvalue() == data


def test_same_nonce_prefix_is_deterministic_and_random_prefix_differs() -> None:
    data = os.urandom(3000)
    fixed = bytes(7)
    assert _encrypt(data, nonce_prefix=fixed) == _encrypt(data, nonce_prefix=fixed)
    assert _encrypt(data) != _encrypt(data)


def test_progress_reports_plaintext_bytes() -> None:
    seen: list[int] = []
    data = os.urandom(2500)
    ct = _encrypt(data, progress=seen.append)
    assert seen == [1000, 2000, 2500]
    done: list[int] = []
    decrypt_stream(
        io.BytesIO(ct), io.BytesIO(), KEY, object_id=OID, version=1, progress=done.append
    )
    assert done == [1000, 2000, 2500]


class _Recorder(io.BytesIO):
    """Collects what the decryptor released before failing."""


def _released_then_error(ct: bytes) -> tuple[bytes, DecryptionError]:
    out = _Recorder()
    with pytest.raises(DecryptionError) as info:
        decrypt_stream(io.BytesIO(ct), out, KEY, object_id=OID, version=1)
    return out.getvalue(), info.value


DATA = bytes(range(256)) * 20  # 5120 bytes: 6 segments of 1000


def test_truncation_at_segment_boundary_is_detected() -> None:
    header, segs = _segments(_encrypt(DATA))
    released, err = _released_then_error(header + b"".join(segs[:-1]))
    assert "truncated" in str(err)
    assert released == DATA[: 4 * SEG]  # only authenticated segments, never the 5th


def test_truncation_inside_segment_and_header_only() -> None:
    ct = _encrypt(DATA)
    _released_then_error(ct[:-5])
    _released_then_error(ct[: HEADER_SIZE + 3])
    _released_then_error(ct[:HEADER_SIZE])
    with pytest.raises(CiphertextFormatError):
        _decrypt(ct[: HEADER_SIZE - 1])


def test_reorder_duplicate_and_extension_are_detected() -> None:
    header, segs = _segments(_encrypt(DATA))
    swapped = [segs[1], segs[0], *segs[2:]]
    assert _released_then_error(header + b"".join(swapped))[0] == b""
    duplicated = [segs[0], segs[0], *segs[1:]]
    assert _released_then_error(header + b"".join(duplicated))[0] == DATA[:SEG]
    header, full = _segments(_encrypt(DATA[: 5 * SEG]))  # final segment is full-size
    released, err = _released_then_error(header + b"".join(full) + full[-1])
    assert "after its final segment" in str(err)
    assert released == DATA[: 4 * SEG]
    # pasting another object's final segment (same key, other nonce prefix) also fails
    _, other = _segments(_encrypt(DATA))
    _released_then_error(header + b"".join(segs[:-1]) + other[-1])


def test_every_bit_flip_region_is_detected() -> None:
    ct = _encrypt(DATA)
    for index in [0, 5, 6, 10, 20, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1500, len(ct) - 1]:
        bad = ct[:index] + bytes([ct[index] ^ 0x10]) + ct[index + 1 :]
        with pytest.raises((DecryptionError, CiphertextFormatError)):
            _decrypt(bad)


def test_wrong_key_object_or_version() -> None:
    ct = _encrypt(DATA)
    with pytest.raises(DecryptionError, match="wrong data key"):
        _decrypt(ct, key=new_data_key())
    with pytest.raises(WrongObjectError):
        _decrypt(ct, oid=b"\x08" * 32)
    with pytest.raises(WrongObjectError):
        _decrypt(ct, version=2)


def test_rewritten_header_identity_fails_authentication() -> None:
    ct = _encrypt(DATA)
    # header: magic(4) fmt(1) type(1) seg(4) oid(32) version(8) prefix(7)
    forged = ct[:10] + b"\x08" * 32 + ct[42:]
    with pytest.raises(DecryptionError):
        _decrypt(forged, oid=b"\x08" * 32)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        _encrypt(b"x", nonce_prefix=b"short")
    with pytest.raises(CiphertextFormatError):
        _encrypt(b"x", segment_size=0)
    with pytest.raises(ValueError):
        StreamEncryptor(io.BytesIO(), b"short", object_id=OID, version=1)
    with pytest.raises(CiphertextFormatError, match="not supported"):
        ct = bytearray(_encrypt(b"x"))
        ct[4] = 99
        _decrypt(bytes(ct))


class _Zeros:
    """A reader of ``size`` zero bytes that allocates only what each read returns."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


class _Sink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.size += len(data)
        return len(data)


def test_encrypt_and_decrypt_run_in_constant_memory() -> None:
    size = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        sink = _Sink()
        encrypt_stream(_Zeros(size), sink, KEY, object_id=OID, version=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == HEADER_SIZE + size + (size // SEGMENT_SIZE) * TAG_SIZE
    assert peak < 8 * 1024 * 1024, peak


def test_decrypt_runs_in_constant_memory() -> None:
    size = 64 * 1024 * 1024
    ct = io.BytesIO()
    encrypt_stream(_Zeros(size), ct, KEY, object_id=OID, version=1)
    ct.seek(0)
    tracemalloc.start()
    try:
        sink = _Sink()
        decrypt_stream(ct, sink, KEY, object_id=OID, version=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == size
    assert peak < 4 * 1024 * 1024, peak
