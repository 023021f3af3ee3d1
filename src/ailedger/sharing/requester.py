"""The requester's side: ask for access on chain, then fetch from the owner's gateway.

A fetch trusts nothing it receives: the ciphertext must hash to what the owner
registered on chain, the data key must open under the owner's registered X25519 key
(HPKE auth mode), and every segment must authenticate before plaintext is written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import atomic_write_json
from ailedger.errors import AiledgerError, ConfigError, PeerUnreachableError
from ailedger.peer import wire
from ailedger.peer.client import shared_client
from ailedger.sharing.access_request import Domain, new_request, sign_request
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from ailedger.session import Session

Progress = Callable[[int, int], None]  # (bytes done, total)
TIMEOUT_S = 60


class AccessRefusedError(AiledgerError):
    """The owner's gateway refused the request; the message carries its reason."""


class TamperedDataError(AiledgerError):
    """What the gateway sent does not match what the owner registered on chain."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    is_directory: bool
    audit_index: int
    audit_entry: dict[str, Any]


def request_access(session: Session, dataset_id: bytes, purpose: int) -> tuple[int, str]:
    """Approve the price and request access; returns (request id, tx hash)."""
    market = session.data_market
    record = market.dataset(dataset_id)
    if record is None:
        raise ConfigError(f"no dataset 0x{dataset_id.hex()} on chain; check the id")
    if record.policy.price:
        session.token.approve(market.address, record.policy.price)
    request_id, result = market.request_access(dataset_id, purpose)
    return request_id, result.tx_hash


def fetch(
    session: Session,
    dataset_id: bytes,
    grant_id: int,
    out: Path,
    progress: Progress | None = None,
) -> Fetched:
    """Download, verify and decrypt a dataset under ``grant_id`` into ``out``."""
    from ailedger.crypto.hpke import unwrap_data_key

    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new output path")
    market = session.data_market
    record = market.dataset(dataset_id)
    grant = market.grant_info(grant_id)
    if record is None or grant is None:
        raise ConfigError(
            f"unknown dataset or grant (dataset 0x{dataset_id.hex()}, grant {grant_id})"
        )
    url = session.node_registry.url_of(record.owner)
    if url is None:
        raise ConfigError(f"the owner {record.owner} has registered no gateway URL")
    owner_key = session.key_registry.key_of(record.owner)
    if owner_key is None:
        raise ConfigError(f"the owner {record.owner} has no encryption key registered")

    account = session.require_account()
    domain = Domain(session.chain.chain_id, market.address)
    request = new_request(account, dataset_id, grant_id, grant.purpose)
    body = {"request": request.to_json(), "signature": sign_request(account, domain, request)}
    key = session.encryption_key()
    with _gateway_response(url, body) as response:
        version = int(response.headers[wire.VERSION_HEADER])
        data_key = unwrap_data_key(
            bytes.fromhex(response.headers[wire.WRAPPED_KEY_HEADER]),
            recipient_private=key,
            owner_public=owner_key,
            object_id=dataset_id,
            version=version,
            requester=session.address,
        )
        total = int(response.headers.get("content-length", 0))
        stream = _HashingReader(response.iter_bytes(1 << 20), total, progress)
        is_dir = _decrypt_checked(
            stream, data_key, dataset_id, version, out, record.ciphertext_hash
        )
        entry = parse_untrusted(base64.b64decode(response.headers[wire.AUDIT_HEADER]))
    _keep_receipt(session, dataset_id, entry)
    return Fetched(out, record_size(out), is_dir, int(entry["index"]), entry["entry"])


def reads_left(session: Session, dataset_id: bytes, grant_id: int) -> int | None:
    """The reads ``grant_id`` has left at the dataset owner's node (None: unlimited),
    fetches and compute-to-data together, as its gateway counts them; raises
    :class:`PeerUnreachableError` if the owner's node does not say."""
    record = session.data_market.dataset(dataset_id)
    url = session.node_registry.url_of(record.owner) if record else None
    if url is None:
        raise PeerUnreachableError(f"no gateway known for dataset 0x{dataset_id.hex()}")
    return reads_left_at(url, grant_id)


def reads_left_at(url: str, grant_id: int) -> int | None:
    """What the node at ``url`` says ``grant_id`` has left (None: unlimited); its answer is
    a peer's word, parsed as untrusted."""
    import httpx

    try:
        path = wire.path(wire.GRANT_READS, grant_id=grant_id)
        response = shared_client().get(url + path, timeout=TIMEOUT_S)
        response.raise_for_status()
        remaining = parse_untrusted(response.content)["remaining"]
        return None if remaining is None else int(remaining)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise PeerUnreachableError(
            f"{url} did not say how many reads grant {grant_id} has left: {exc}"
        ) from exc


def _keep_receipt(session: Session, dataset_id: bytes, receipt: dict[str, Any]) -> None:
    """Remember what the gateway said it logged, to check its inclusion later."""
    folder = session.home.layout.receipts
    folder.mkdir(exist_ok=True)
    path = folder / f"0x{dataset_id.hex()}-{int(receipt['index'])}.json"
    atomic_write_json(path, receipt)


def kept_receipt(session: Session, dataset_id: bytes, index: int) -> dict[str, Any] | None:
    path = session.home.layout.receipts / f"0x{dataset_id.hex()}-{index}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def check_receipt(
    session: Session, dataset_id: bytes, index: int, expected: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Ask the owner's gateway to prove audit entry ``index`` is in its log, and check
    the proof: the checkpoint's signature under the key the owner bound to its account
    on chain (``AuditAnchor.checkpoint_key``, never a key the gateway offers), the
    inclusion path, and (if given) that the entry is the one the gateway handed us at
    fetch time. Returns the logged entry."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ailedger.audit.receipt import receipt_entry, verify_receipt

    record = session.data_market.dataset(dataset_id)
    url = session.node_registry.url_of(record.owner) if record else None
    if record is None or url is None:
        raise ConfigError(f"no gateway known for dataset 0x{dataset_id.hex()}")
    key_raw = session.audit_anchor.checkpoint_key(record.owner)
    if key_raw is None:
        raise TamperedDataError(
            f"the owner {record.owner} has bound no checkpoint key on chain, so no receipt "
            "of its log can be checked; ask it to start its node (which registers the key)"
        )
    try:
        receipt_path = wire.path(wire.AUDIT_RECEIPT, index=index)
        receipt = parse_untrusted(
            shared_client().get(url + receipt_path, timeout=TIMEOUT_S).content
        )
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise PeerUnreachableError(f"cannot get the receipt from {url}: {exc}") from exc
    key = Ed25519PublicKey.from_public_bytes(key_raw)
    if not isinstance(receipt, dict):
        raise TamperedDataError(f"the gateway's receipt for audit entry {index} is not JSON")
    if not verify_receipt(receipt, key) or receipt.get("index") != index:
        raise TamperedDataError(f"the gateway's receipt for audit entry {index} does not verify")
    entry = receipt_entry(receipt)
    if expected is not None and entry != expected:
        raise TamperedDataError(
            f"audit entry {index} is not the entry the gateway reported when serving the data"
        )
    return entry


def _decrypt_checked(
    stream: _HashingReader,
    data_key: bytes,
    dataset_id: bytes,
    version: int,
    out: Path,
    registered_hash: bytes,
) -> bool:
    """One pass over the download: hash and decrypt together; nothing reaches ``out``
    unless every segment authenticated *and* the ciphertext hash matches the chain."""
    from ailedger.crypto.errors import CryptoError
    from ailedger.store.objects import decrypt_object

    def matches_chain() -> None:
        if stream.digest() != registered_hash:
            raise TamperedDataError(
                "the ciphertext from the gateway does not match the hash registered on "
                "chain; nothing was written"
            )

    try:
        return decrypt_object(
            stream,
            data_key,
            object_id=dataset_id,
            version=version,
            dest=out,
            before_commit=matches_chain,
        )
    except CryptoError as exc:
        stream.drain()  # name the cause: altered in transit/at rest, or a bad key
        matches_chain()
        raise exc


class _HashingReader:
    """A file-like view of the response body that hashes what passes through it."""

    def __init__(self, chunks: Iterator[bytes], total: int, progress: Progress | None) -> None:
        self._chunks = chunks
        self._hash = sha256()
        self._buffer = b""
        self._offset = 0
        self._done = 0
        self._total = total
        self._progress = progress

    def read(self, size: int = -1, /) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._offset >= len(self._buffer) and not self._refill():
                break
            piece = self._buffer[self._offset : self._offset + wanted]
            self._offset += len(piece)
            wanted -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def _refill(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self._hash.update(chunk)
        self._buffer, self._offset = chunk, 0
        self._done += len(chunk)
        if self._progress:
            self._progress(self._done, self._total)
        return True

    def drain(self) -> None:
        while self._refill():
            pass

    def digest(self) -> bytes:
        return self._hash.digest()


@contextmanager
def _gateway_response(url: str, body: dict[str, Any]) -> Iterator[Any]:
    import httpx

    try:
        stream = shared_client().stream("POST", url + wire.ACCESS, json=body, timeout=TIMEOUT_S)
        with stream as response:
            if response.status_code != 200:
                response.read()
                raise AccessRefusedError(_reason(response))
            yield response
    except httpx.HTTPError as exc:
        raise PeerUnreachableError(f"cannot reach the owner's gateway at {url}: {exc}") from exc


def _reason(response: Any) -> str:
    try:
        return str(response.json()["error"])
    except Exception:  # a gateway that did not answer in JSON
        return f"HTTP {response.status_code}"


def record_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
