"""What a provider sends back to a requester: sealed log batches and the encrypted output.

Both are readable only by the requester and provably from the provider: log batches are
HPKE (auth mode) sealed to the requester's registered X25519 key with the provider's key,
and the output is a STREAM-encrypted tar of the output tree whose data key is wrapped the
same way. The HPKE info binds each item to the chain, the job, the provider and (for logs)
the sequence number, so nothing can be moved to another job or reordered unnoticed.

Upload format of an output: ``len(wrapped key) (4 bytes, big-endian) || wrapped key ||
STREAM ciphertext``. The requester decrypts to a staging directory, recomputes the output
hash, and only then moves the tree into place (see :func:`open_output`).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger._durable import replace_durably
from ailedger.compute.outputs import output_hash
from ailedger.crypto.hpke import open_, seal, unwrap_data_key, wrap_data_key
from ailedger.crypto.stream import new_data_key
from ailedger.errors import AiledgerError
from ailedger.store.objects import decrypt_object, encrypt_into

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

_ENC_LEN = 32


class OutputMismatchError(AiledgerError):
    """A decrypted output does not hash to the value its provider revealed on chain."""


def output_object_id(chain_id: int, job_id: int) -> bytes:
    return hashlib.sha256(
        b"ailedger-job-output\0" + chain_id.to_bytes(8, "big") + job_id.to_bytes(32, "big")
    ).digest()


def _log_info(chain_id: int, job_id: int, provider: str, seq: int) -> bytes:
    return (
        b"ailedger-job-log\0"
        + chain_id.to_bytes(8, "big")
        + job_id.to_bytes(32, "big")
        + bytes.fromhex(provider[2:])
        + seq.to_bytes(8, "big")
    )


def seal_log_batch(
    text: str,
    *,
    requester_public: bytes,
    provider_key: X25519PrivateKey,
    chain_id: int,
    job_id: int,
    provider: str,
    seq: int,
) -> bytes:
    info = _log_info(chain_id, job_id, provider, seq)
    enc, ct = seal(
        requester_public, text.encode("utf-8"), info=info, aad=b"", sender_private=provider_key
    )
    return enc + ct


def open_log_batch(
    sealed: bytes,
    *,
    requester_key: X25519PrivateKey,
    provider_public: bytes,
    chain_id: int,
    job_id: int,
    provider: str,
    seq: int,
) -> str:
    info = _log_info(chain_id, job_id, provider, seq)
    plain = open_(
        sealed[:_ENC_LEN],
        sealed[_ENC_LEN:],
        recipient_private=requester_key,
        info=info,
        aad=b"",
        sender_public=provider_public,
    )
    return plain.decode("utf-8", errors="replace")


def seal_output(
    root: Path,
    upload: Path,
    *,
    requester: str,
    requester_public: bytes,
    provider_key: X25519PrivateKey,
    chain_id: int,
    job_id: int,
) -> None:
    """Encrypt the tree ``root`` for ``requester`` into the upload file ``upload``."""
    object_id = output_object_id(chain_id, job_id)
    key = new_data_key()
    wrapped = wrap_data_key(
        key,
        recipient_public=requester_public,
        owner_private=provider_key,
        object_id=object_id,
        version=1,
        requester=requester,
    )
    with upload.open("wb") as out:
        out.write(len(wrapped).to_bytes(4, "big") + wrapped)
        encrypt_into(root, out, key, object_id=object_id, version=1)


def open_output(
    upload: Path,
    dest: Path,
    *,
    requester: str,
    requester_key: X25519PrivateKey,
    provider_public: bytes,
    chain_id: int,
    job_id: int,
    expected_hash: bytes,
) -> None:
    """Decrypt an uploaded output to the new directory ``dest`` if, and only if, it
    authenticates and its tree hashes to ``expected_hash`` (what went on chain)."""
    object_id = output_object_id(chain_id, job_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ailedger-result-", dir=dest.parent))
    try:
        with upload.open("rb") as reader:
            size = int.from_bytes(reader.read(4), "big")
            if not 0 < size <= 4096:
                raise OutputMismatchError(f"{upload} is not an ailedger job output")
            key = unwrap_data_key(
                reader.read(size),
                recipient_private=requester_key,
                owner_public=provider_public,
                object_id=object_id,
                version=1,
                requester=requester,
            )
            decrypt_object(reader, key, object_id=object_id, version=1, dest=staging / "out")
        got = output_hash(staging / "out")
        if got != expected_hash:
            raise OutputMismatchError(
                f"the output of job {job_id} hashes to 0x{got.hex()}, but 0x{expected_hash.hex()} "
                "went on chain; do not accept it (dispute it if it is under review)"
            )
        replace_durably(staging / "out", dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
