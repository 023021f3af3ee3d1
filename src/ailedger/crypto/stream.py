"""Streaming authenticated encryption of objects of any size, in constant memory.

The construction is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7),
as used by Tink's streaming AEAD and by age: the plaintext is cut into segments of a
fixed size and each segment is sealed with AES-256-GCM (NIST SP 800-38D, used as an
RFC 5116 AEAD) under the nonce ::

    nonce_prefix (7 random bytes) || segment counter (4 bytes, big-endian) || last flag (1)

The counter stops reordering, duplication and dropping of inner segments; the last
flag (1 only on the final segment) stops truncation at a segment boundary and
extension after the end. The stream starts with a clear-text header ::

    b"AILS" | format 1 (u8) | content type (u8) | segment size (u32) |
    object id (32 bytes) | object version (u64) | nonce prefix (7 bytes)

and the whole header is the associated data of *every* segment, so changing any field
(or pasting segments from another object or version) fails authentication. Each
segment is authenticated before its plaintext is written out; a truncated stream is
detected at its end, so callers that must not keep a partial result write to a
temporary file and rename it after :func:`decrypt_stream` returns (``store.objects``).

Keys are 32 random bytes, fresh for every object (:func:`new_data_key`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from hmac import compare_digest
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ailedger.crypto.errors import CiphertextFormatError, DecryptionError, WrongObjectError

MAGIC = b"AILS"
FORMAT_VERSION = 1
SEGMENT_SIZE = 64 * 1024
MAX_SEGMENT_SIZE = 16 * 1024 * 1024  # bounds the memory a hostile header can make us use
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
CONTENT_BYTES = 0  # a single file's bytes
CONTENT_TAR = 1  # a directory packed as a deterministic tar (store.objects)
_HEADER = struct.Struct(">4sBBI32sQ7s")
HEADER_SIZE = _HEADER.size
_MAX_SEGMENTS = 2**32  # the counter is 4 bytes; one more would repeat a nonce
_READ_SIZE = 1024 * 1024

Progress = Callable[[int], None]


class Reader(Protocol):
    """The part of a binary file this module reads from."""

    def read(self, size: int = -1, /) -> bytes: ...


class Writer(Protocol):
    """The part of a binary file this module writes to."""

    def write(self, data: bytes | memoryview, /) -> object: ...


def new_data_key() -> bytes:
    """A fresh random AES-256 key for one object; never reuse it for another object."""
    return os.urandom(KEY_SIZE)


@dataclass(frozen=True)
class StreamHeader:
    """The authenticated clear-text header that opens every encrypted stream."""

    content_type: int
    segment_size: int
    object_id: bytes
    version: int
    nonce_prefix: bytes

    def to_bytes(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.content_type,
            self.segment_size,
            self.object_id,
            self.version,
            self.nonce_prefix,
        )

    @classmethod
    def read_from(cls, reader: Reader) -> StreamHeader:
        """Parse and sanity-check a header; authenticity is checked with the segments."""
        raw = _read_exact(reader, HEADER_SIZE)
        if len(raw) < HEADER_SIZE or raw[:4] != MAGIC:
            raise CiphertextFormatError(
                "not an ailedger encrypted stream (bad or missing header); "
                "check that you passed the ciphertext blob"
            )
        _, fmt, content, seg, oid, version, prefix = _HEADER.unpack(raw)
        if fmt != FORMAT_VERSION:
            raise CiphertextFormatError(
                f"encrypted stream format {fmt} is not supported (this ailedger reads "
                f"{FORMAT_VERSION}); upgrade ailedger"
            )
        _check_segment_size(seg)
        return cls(content, seg, oid, version, prefix)


def _check_segment_size(segment_size: int) -> None:
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise CiphertextFormatError(
            f"segment size {segment_size} is outside 1..{MAX_SEGMENT_SIZE} bytes"
        )


def _check_identity(key: bytes, object_id: bytes, version: int) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"data key must be {KEY_SIZE} bytes, got {len(key)}")
    if len(object_id) != 32:
        raise ValueError(f"object id must be 32 bytes, got {len(object_id)}")
    if not 0 <= version < 2**64:
        raise ValueError(f"object version must fit in 64 bits, got {version}")


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _read_exact(reader: Reader, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at end of input (sockets return short reads)."""
    data = reader.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = reader.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class StreamEncryptor:
    """Push-style encryptor: ``write`` plaintext in any pieces, then ``close``.

    Holds at most one segment of plaintext, so memory is constant. A segment is sealed
    as non-final only once a byte after it is known to exist; ``close`` seals the rest
    (possibly empty, for an empty object) with the last flag.
    """

    def __init__(
        self,
        writer: Writer,
        key: bytes,
        *,
        object_id: bytes,
        version: int,
        segment_size: int = SEGMENT_SIZE,
        content_type: int = CONTENT_BYTES,
        nonce_prefix: bytes | None = None,
        progress: Progress | None = None,
    ) -> None:
        _check_identity(key, object_id, version)
        _check_segment_size(segment_size)
        # A caller-chosen prefix exists only for reproducible tests; in use it is random.
        prefix = os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else nonce_prefix
        if len(prefix) != NONCE_PREFIX_SIZE:
            raise ValueError(f"nonce prefix must be {NONCE_PREFIX_SIZE} bytes")
        self.header = StreamHeader(content_type, segment_size, object_id, version, prefix)
        self._aad = self.header.to_bytes()
        self._aead = AESGCM(key)
        self._writer = writer
        self._seg = segment_size
        self._pending = bytearray()
        self._out = bytearray(segment_size + TAG_SIZE)
        self._counter = 0
        self._done = 0
        self._progress = progress
        self._closed = False
        writer.write(self._aad)

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes accepted so far."""
        return self._done + len(self._pending)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed StreamEncryptor")
        view = memoryview(data).cast("B")
        size = len(view)
        seg = self._seg
        if self._pending:
            take = min(seg - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if not view:
                return size
            with memoryview(self._pending) as full:
                self._seal(full, last=False)
            self._pending.clear()
        # Seal full segments straight from the caller's buffer: no copy.
        start = 0
        while len(view) - start > seg:
            self._seal(view[start : start + seg], last=False)
            start += seg
        self._pending += view[start:]
        return size

    def close(self) -> None:
        """Seal the final segment. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with memoryview(self._pending) as rest:
            self._seal(rest, last=True)
        self._pending.clear()

    def _seal(self, chunk: memoryview, *, last: bool) -> None:
        if self._counter >= _MAX_SEGMENTS:
            raise ValueError("object too large for one stream: 2**32 segments used")
        nonce = _nonce(self.header.nonce_prefix, self._counter, last)
        # encrypt_into wants an output of exactly len + tag: slice the reused buffer.
        out = memoryview(self._out)[: len(chunk) + TAG_SIZE]
        self._aead.encrypt_into(nonce, chunk, self._aad, out)
        self._writer.write(out)
        self._counter += 1
        self._done += len(chunk)
        if self._progress is not None:
            self._progress(self._done)


def encrypt_stream(
    reader: Reader,
    writer: Writer,
    key: bytes,
    *,
    object_id: bytes,
    version: int,
    segment_size: int = SEGMENT_SIZE,
    content_type: int = CONTENT_BYTES,
    nonce_prefix: bytes | None = None,
    progress: Progress | None = None,
) -> StreamHeader:
    """Encrypt everything ``reader`` yields into ``writer``; return the header used."""
    enc = StreamEncryptor(
        writer,
        key,
        object_id=object_id,
        version=version,
        segment_size=segment_size,
        content_type=content_type,
        nonce_prefix=nonce_prefix,
        progress=progress,
    )
    # Large reads amortise Python overhead; a multiple of the segment avoids re-buffering.
    read_size = max(segment_size, _READ_SIZE // segment_size * segment_size)
    while chunk := reader.read(read_size):
        enc.write(chunk)
    enc.close()
    return enc.header


def decrypt_stream(
    reader: Reader,
    writer: Writer,
    key: bytes,
    *,
    object_id: bytes,
    version: int,
    progress: Progress | None = None,
) -> StreamHeader:
    """Decrypt a stream into ``writer``, releasing only authenticated segments.

    Raises :class:`WrongObjectError` if the header names another object or version,
    :class:`DecryptionError` on any failed segment (wrong key, bit flip, reordering,
    duplication, truncation, trailing data), :class:`CiphertextFormatError` on a
    malformed header.
    """
    _check_identity(key, object_id, version)
    header = StreamHeader.read_from(reader)
    if not compare_digest(header.object_id, object_id) or header.version != version:
        raise WrongObjectError(
            f"ciphertext is for object {header.object_id.hex()} version {header.version}, "
            f"not {object_id.hex()} version {version}; fetch the right object"
        )
    _SegmentOpener(header, key, writer, progress).run(reader)
    return header


class _SegmentOpener:
    """Reads one segment ahead, because only end-of-input tells which segment is last."""

    def __init__(
        self, header: StreamHeader, key: bytes, writer: Writer, progress: Progress | None
    ) -> None:
        self._header = header
        self._aad = header.to_bytes()
        self._aead = AESGCM(key)
        self._writer = writer
        self._progress = progress
        self._out = bytearray(header.segment_size)

    def run(self, reader: Reader) -> None:
        seg_ct = self._header.segment_size + TAG_SIZE
        current = _read_exact(reader, seg_ct)
        counter, done = 0, 0
        while True:
            following = _read_exact(reader, seg_ct)
            last = not following
            n = self._open(current, counter, last)
            self._writer.write(memoryview(self._out)[:n])
            done += n
            if self._progress is not None:
                self._progress(done)
            if last:
                return
            current, counter = following, counter + 1

    def _open(self, segment: bytes, counter: int, last: bool) -> int:
        if len(segment) < TAG_SIZE or counter >= _MAX_SEGMENTS:
            raise DecryptionError(
                f"encrypted stream is truncated inside segment {counter}; fetch it again"
            )
        prefix = self._header.nonce_prefix
        try:
            return self._aead.decrypt_into(
                _nonce(prefix, counter, last), segment, self._aad, self._out_for(segment)
            )
        except InvalidTag:
            pass
        raise DecryptionError(self._explain(segment, counter, last)) from None

    def _out_for(self, segment: bytes) -> memoryview:
        return memoryview(self._out)[: len(segment) - TAG_SIZE]

    def _explain(self, segment: bytes, counter: int, last: bool) -> str:
        """Name the likely cause by trying the other last-flag (cheap: failures only)."""
        try:
            self._aead.decrypt_into(
                _nonce(self._header.nonce_prefix, counter, not last),
                segment,
                self._aad,
                self._out_for(segment),
            )
        except InvalidTag:
            if counter == 0:
                return (
                    "encrypted stream does not authenticate: wrong data key, or the "
                    "header or first segment was altered"
                )
            return (
                f"segment {counter} of the encrypted stream does not authenticate "
                "(altered, reordered or duplicated); fetch the object again"
            )
        if last:
            return "encrypted stream is truncated: its final segment is missing"
        return "encrypted stream has data after its final segment"
