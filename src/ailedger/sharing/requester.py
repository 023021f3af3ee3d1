"""The requester's side: ask for access on chain, then fetch from the owner's gateway.

A fetch trusts nothing it receives: the ciphertext must hash to what the owner
registered on chain, the data key must open under the owner's registered X25519 key
(HPKE auth mode), and every segment must authenticate before plaintext is written.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError, ChainUnreachableError, ConfigError
from ailedger.sharing.access_request import Domain, new_request, sign_request
from ailedger.sharing.market import DataMarketClient

if TYPE_CHECKING:
    from ailedger.session import Session

Progress = Callable[[int, int], None]  # (bytes done, total)
WRAPPED_KEY_HEADER = "X-Ailedger-Wrapped-Key"
VERSION_HEADER = "X-Ailedger-Object-Version"
AUDIT_HEADER = "X-Ailedger-Audit-Entry"
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
    market: DataMarketClient = session.client("DataMarket")
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
    from ailedger.store.objects import decrypt_object

    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new output path")
    market: DataMarketClient = session.client("DataMarket")
    record = market.dataset(dataset_id)
    grant = market.grant_info(grant_id)
    if record is None or grant is None:
        raise ConfigError(
            f"unknown dataset or grant (dataset 0x{dataset_id.hex()}, grant {grant_id})"
        )
    url = session.client("NodeRegistry").url_of(record.owner)
    if url is None:
        raise ConfigError(f"the owner {record.owner} has registered no gateway URL")
    owner_key = session.key_registry.key_of(record.owner)
    if owner_key is None:
        raise ConfigError(f"the owner {record.owner} has no encryption key registered")

    account = session.require_account()
    domain = Domain(session.chain.chain_id, market.address)
    request = new_request(account, dataset_id, grant_id, grant.purpose)
    body = {"request": request.to_json(), "signature": sign_request(account, domain, request)}
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".ailedger-fetch-") as tmp:
        headers, digest = _download(url, body, tmp, progress)
        if digest != record.ciphertext_hash:
            raise TamperedDataError(
                "the ciphertext from the gateway does not match the hash registered on chain; "
                "nothing was decrypted"
            )
        version = int(headers[VERSION_HEADER])
        data_key = unwrap_data_key(
            bytes.fromhex(headers[WRAPPED_KEY_HEADER]),
            recipient_private=session.encryption_key(),
            owner_public=owner_key,
            object_id=dataset_id,
            version=version,
            requester=session.address,
        )
        tmp.seek(0)
        is_dir = decrypt_object(tmp, data_key, object_id=dataset_id, version=version, dest=out)
    entry = json.loads(base64.b64decode(headers[AUDIT_HEADER]))
    return Fetched(out, record_size(out), is_dir, int(entry["index"]), entry["entry"])


def _download(
    url: str, body: dict[str, Any], sink: Any, progress: Progress | None
) -> tuple[Any, bytes]:
    """Stream the gateway's answer into ``sink``, hashing as it arrives (one pass)."""
    import httpx

    digest = sha256()

    try:
        with httpx.stream("POST", f"{url}/v1/access", json=body, timeout=TIMEOUT_S) as response:
            if response.status_code != 200:
                response.read()
                raise AccessRefusedError(_reason(response))
            total = int(response.headers.get("content-length", 0))
            done = 0
            for chunk in response.iter_bytes(1 << 20):
                sink.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            sink.flush()
            return response.headers, digest.digest()
    except httpx.HTTPError as exc:
        raise ChainUnreachableError(f"cannot reach the owner's gateway at {url}: {exc}") from exc


def _reason(response: Any) -> str:
    try:
        return str(response.json()["error"])
    except Exception:  # a gateway that did not answer in JSON
        return f"HTTP {response.status_code}"


def record_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
