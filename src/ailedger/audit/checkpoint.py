"""Signed checkpoints of the audit log in the C2SP ``tlog-checkpoint`` / ``signed-note`` format.

A checkpoint commits to the log's Merkle tree head (RFC 6962 §2.1 / RFC 9162 §2.1) at one
size. Its text is a C2SP signed note (https://c2sp.org/signed-note) whose body is a C2SP
checkpoint (https://c2sp.org/tlog-checkpoint)::

    <origin>\\n                       e.g. "ailedger.audit/node-1"
    <tree size, decimal>\\n
    <root hash, base64 (RFC 4648 §4)>\\n
    time <unix seconds>\\n            an extension line: when the log issued it
    \\n
    — <origin> <base64(key id[4] || Ed25519 signature[64])>\\n

The signature is Ed25519 over the body (every line up to and including the root and
extension lines, each ending in ``\\n``). The key id is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || public key)`` (signed-note, algorithm 0x01 =
Ed25519); the key name is the origin. Verifiers ignore signature lines from other keys,
as signed-note requires, and need exactly one valid signature from the log's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ailedger.audit.merkle import HASH_SIZE

_DASH = "\u2014"  # signed-note signature lines start with an em dash and a space
_ED25519 = b"\x01"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: ``root`` is MTH of the first ``size`` entries at ``timestamp``."""

    origin: str
    size: int
    root: bytes
    timestamp: int
    note: str  # the full signed-note text, as issued

    def body(self) -> bytes:
        return checkpoint_body(self.origin, self.size, self.root, self.timestamp)


def checkpoint_body(origin: str, size: int, root: bytes, timestamp: int) -> bytes:
    """The signed text of a checkpoint (C2SP tlog-checkpoint plus a ``time`` extension line)."""
    if not origin or "\n" in origin or origin != origin.strip():
        raise ValueError(f"invalid checkpoint origin {origin!r}: one non-blank line, no spaces")
    root_b64 = base64.b64encode(root).decode()
    return f"{origin}\n{size}\n{root_b64}\ntime {timestamp}\n".encode()


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note key id: ``SHA-256(name || 0x0A || 0x01 || raw public key)[:4]``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, size: int, root: bytes, timestamp: int
) -> Checkpoint:
    """Issue a checkpoint signed by ``key`` under the key name ``origin``."""
    body = checkpoint_body(origin, size, root, timestamp)
    signature = key_id(origin, key.public_key()) + key.sign(body)
    note = body.decode() + f"\n{_DASH} {origin} {base64.b64encode(signature).decode()}\n"
    return Checkpoint(origin, size, root, timestamp, note)


def _parse_body(lines: list[str]) -> tuple[str, int, bytes, int] | None:
    if len(lines) != 4 or not lines[3].startswith("time "):
        return None
    origin, size_text, root_text, time_text = lines[0], lines[1], lines[2], lines[3][5:]
    if not (size_text.isdigit() and time_text.isdigit()) or size_text != str(int(size_text)):
        return None
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        return None
    if len(root) != HASH_SIZE:
        return None
    return origin, int(size_text), root, int(time_text)


def _signatures(lines: list[str], origin: str) -> list[bytes]:
    found = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            raise ValueError("malformed signature line")
        if parts[1] == origin:
            found.append(base64.b64decode(parts[2], validate=True))
    return found


def parse_checkpoint(note: str, public_key: Ed25519PublicKey) -> Checkpoint | None:
    """The checkpoint in ``note`` if it is well formed and signed by ``public_key``, else None."""
    if not note.endswith("\n") or "\n\n" not in note:
        return None
    body_text, _, sig_text = note.partition("\n\n")
    parsed = _parse_body(body_text.split("\n"))
    if parsed is None:
        return None
    origin, size, root, timestamp = parsed
    body = checkpoint_body(origin, size, root, timestamp)
    if body != (body_text + "\n").encode():
        return None
    try:
        signatures = _signatures(sig_text[:-1].split("\n"), origin)
    except (ValueError, binascii.Error):
        return None
    wanted = key_id(origin, public_key)
    for signature in signatures:
        if len(signature) == 4 + 64 and signature[:4] == wanted:
            try:
                public_key.verify(signature[4:], body)
            except InvalidSignature:
                return None
            return Checkpoint(origin, size, root, timestamp, note)
    return None
