"""The owner's data gateway: who may read what, decided per request, recorded first.

For each signed request the gateway checks, in order: the EIP-712 signature and expiry,
that the nonce is new (replay), that the dataset lives here, the grant on chain at the
latest block (purpose, expiry, revocation, requester), the read limit, and that the
requester has an encryption key registered. Then it prepares the answer: the data key
wrapped to the requester (HPKE auth mode: the requester can check it came from the
owner) and the ciphertext found in the blob store.

Every request that reaches the gateway leaves exactly one audit entry, whose outcome is
what happened: ``served``; ``refused`` with the reason the requester is told; or
``failed`` with the reason this node could not serve an allowed request (a damaged stored
key, a missing blob). Each is appended *durably before* anything is sent, so no read is
ever served without its entry, and only ``served`` entries count as reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ailedger.chain.contracts.data_market import GrantStatus, purpose_names
from ailedger.crypto.errors import CryptoError
from ailedger.db import DatabaseError
from ailedger.db.types import UINT256_MAX
from ailedger.errors import (
    ChainError,
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RequestRefusedError,
    UnprocessableError,
)
from ailedger.sharing.access_request import (
    AccessRequest,
    Domain,
    InvalidRequestError,
    check_request,
    recover_signer,
)
from ailedger.sharing.reads import (
    COMPUTE_READ,
    READ,
    GrantReads,
    ReadLimitReachedError,
    counts_as_read,
)
from ailedger.store.errors import StoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from ailedger.chain.contracts import DataMarketClient, KeyRegistryClient
    from ailedger.sharing.owner_store import OwnedDataset, OwnerStore


class AccessDeniedError(ForbiddenError):
    """The gateway refused a request; ``reason`` says why (also in the audit log)."""

    def __str__(self) -> str:
        return f"access refused: {self.reason}"


class UnknownDatasetError(NotFoundError, AccessDeniedError):
    """The request names a dataset this node does not hold."""


class UnreadableRequestError(MalformedRequestError, AccessDeniedError):
    """The body is not a signed access request at all."""


class ServeFailedError(RequestRefusedError):
    """The request was allowed but this node could not serve it (its stored key or
    ciphertext is damaged or missing); logged as ``failed``, never counted as a read."""

    http_status = 500


class AuditAppender(Protocol):
    def append(self, entry: dict[str, Any]) -> int: ...

    def latest_checkpoint(self) -> Any: ...

    def receipt(self, index: int) -> dict[str, Any]: ...

    @property
    def public_key(self) -> Any: ...

    def entries(self, start: int, stop: int) -> Any: ...

    @property
    def size(self) -> int: ...


class BlobReader(Protocol):
    def open(self, blob_hash: str) -> Any: ...

    def size(self, blob_hash: str) -> int: ...


@dataclass(frozen=True)
class Authorization:
    dataset: OwnedDataset
    wrapped_key: bytes
    audit_index: int
    audit_entry: dict[str, Any]
    size: int  # of the ciphertext, found in the blob store before the read was logged


class Gateway:
    def __init__(
        self,
        *,
        owner_key: X25519PrivateKey,
        owner_address: str,
        domain: Domain,
        market: DataMarketClient,
        key_registry: KeyRegistryClient,
        store: OwnerStore,
        blobs: BlobReader,
        audit: AuditAppender,
        reads: GrantReads | None = None,
        is_private: Callable[[bytes], bool] | None = None,
    ) -> None:
        """``reads``: the counter of ``audit``'s reads, when others append reads to the
        same log (the owner's own compute-to-data runs); one is made otherwise.
        ``is_private(dataset)``: whether the dataset has a privacy budget, so that only
        differentially private releases may leave it, never its rows."""
        self.domain = domain
        self.store = store
        self.blobs = blobs
        self.audit = audit
        self._owner_key = owner_key
        self.owner_address = owner_address
        self._market = market
        self._keys = key_registry
        self.reads = reads or GrantReads(audit, market)
        self._is_private = is_private or (lambda dataset: False)

    def authorize(self, body: Any, peer: str = "") -> Authorization:
        """Decide one access request from ``peer`` (the client's address); raises
        :class:`AccessDeniedError` or :class:`ServeFailedError` after logging it.

        An entry names the account whose signature the request carries, never merely the
        requester its body names: a request signed by X that names R is logged under X,
        so no one can fill the log with refusals that blame R. A body that carries no
        signature at all is logged as unauthenticated, with the peer's address."""
        request: AccessRequest | None = None
        signer: str | None = None

        def log(outcome: str, reason: str) -> None:
            self.audit.append(_entry(request, signer, peer, outcome, reason))

        try:
            request, signature = _parse(body)
            signer = recover_signer(self.domain, request, signature)
            check_request(request, signer)
            if not self.store.use_nonce(request.nonce, request.expiry):
                raise AccessDeniedError("replayed request: this nonce was used before")
            dataset = self.store.get(request.dataset_id)
            if dataset is None:
                raise UnknownDatasetError("no such dataset at this node")
            if dataset.served_only:
                raise AccessDeniedError(
                    "this listing is used at its owner's node and never sent (a model sold "
                    "by the prediction: `ailedger market predict`)"
                )
            with self.reads.exclusive():  # the limit holds against concurrent reads
                recipient = self._check_grant(request)
                return self._serve(request, signer, dataset, recipient)
        except InvalidRequestError as exc:
            log("refused", str(exc))
            refusal = UnreadableRequestError if request is None else AccessDeniedError
            raise refusal(str(exc)) from exc
        except AccessDeniedError as exc:
            log("refused", exc.reason)
            raise
        except ServeFailedError as exc:
            log("failed", exc.reason)
            raise
        except (ChainError, DatabaseError) as exc:
            reason = "this node could not check the request (chain or database); retry later"
            log("failed", reason)
            raise ServeFailedError(reason) from exc

    def refuse_oversized(self, limit: int, peer: str = "") -> PayloadTooLargeError:
        """Log a body over ``limit`` bytes (not read further) from ``peer`` as refused,
        unauthenticated; returns the error to raise."""
        reason = f"request body too large (over {limit} bytes)"
        self.audit.append(_entry(None, None, peer, "refused", reason))
        return PayloadTooLargeError(reason)

    def append_own(self, entry: dict[str, Any]) -> int:
        """Log an entry of this node's own processes; a compute-to-data read first passes
        its grant's read limit, as a fetch does (raises
        :class:`~ailedger.sharing.reads.ReadLimitReachedError`, nothing logged)."""
        if entry.get("kind") == COMPUTE_READ:
            if not counts_as_read(entry):  # uncounted, a job could read without limit
                raise UnprocessableError("a compute-read entry names its grant and is served")
            return self.reads.append_read(entry)
        return self.audit.append(entry)

    def grant_reads(self, grant_id: int) -> dict[str, Any]:
        """How many reads a grant of a dataset held here has used and has left, for the
        requester to see before paying for a compute-to-data job."""
        grant = self._market.grant_info(grant_id) if 0 <= grant_id <= UINT256_MAX else None
        if grant is None or self.store.get(grant.dataset_id) is None:
            raise NotFoundError(f"no grant {grant_id} for a dataset at this node")
        return {
            "grant": grant_id,
            "reads": self.reads.count(grant_id),
            "max_reads": grant.max_reads,
            "remaining": self.reads.remaining(grant_id, grant.max_reads),
        }

    def _check_grant(self, request: AccessRequest) -> bytes:
        if self._is_private(request.dataset_id):
            raise AccessDeniedError(
                "this dataset is private: its owner releases only differentially private "
                "answers (`ailedger privacy query` or `ailedger privacy train`), never its rows"
            )
        granted = self._market.check_access(
            request.grant_id, request.requester, request.dataset_id, request.purpose
        )
        if not granted:
            raise AccessDeniedError(self._why_not(request))
        grant = self._market.grant_info(request.grant_id)
        try:
            self.reads.check(request.grant_id, grant.max_reads if grant else 0)
        except ReadLimitReachedError as exc:
            raise AccessDeniedError(exc.reason) from exc
        key = self._keys.key_of(request.requester)
        if key is None:
            raise AccessDeniedError(
                "the requester has no encryption key in the KeyRegistry; "
                "run `ailedger account register-key`"
            )
        return key

    def _why_not(self, request: AccessRequest) -> str:
        grant = self._market.grant_info(request.grant_id)
        if grant is None:
            return f"grant {request.grant_id} does not exist"
        if grant.requester.lower() != request.requester.lower():
            return f"grant {request.grant_id} belongs to another account"
        if grant.dataset_id != request.dataset_id:
            return f"grant {request.grant_id} is for another dataset"
        if grant.purpose != request.purpose:
            allowed = ", ".join(purpose_names(grant.purpose))
            return f"wrong purpose: grant {request.grant_id} allows {allowed}"
        return {
            GrantStatus.PENDING: "the request awaits the owner's approval",
            GrantStatus.DENIED: "the request was denied",
            GrantStatus.CANCELLED: "the request was cancelled",
            GrantStatus.REVOKED: "the grant was revoked",
            GrantStatus.EXPIRED: "the grant has expired",
            # Granted, unexpired, this requester's, this dataset and purpose: only the
            # patients' consent on chain (Patients.objecting_weight) can say no now.
            GrantStatus.GRANTED: "a patient whose records this dataset holds has withdrawn "
            "consent to this purpose: its owner must publish it again without them",
        }.get(grant.status, f"the grant is not valid (status {grant.status.name})")

    def _serve(
        self, request: AccessRequest, signer: str, dataset: OwnedDataset, recipient: bytes
    ) -> Authorization:
        try:
            wrapped = self._wrap_key(request, dataset, recipient)
            size = self.blobs.size(dataset.blob_hash)
        except CryptoError as exc:
            raise ServeFailedError(
                "this node's stored key for the dataset is damaged; the owner must publish it again"
            ) from exc
        except (StoreError, OSError) as exc:
            raise ServeFailedError(
                "this node cannot read the dataset's ciphertext; the owner must restore it"
            ) from exc
        entry = _entry(request, signer, "", "served")
        index = self.audit.append(entry)  # durable before a single byte is sent
        return Authorization(dataset, wrapped, index, entry, size)

    def _wrap_key(self, request: AccessRequest, dataset: OwnedDataset, recipient: bytes) -> bytes:
        from ailedger.crypto.hpke import unwrap_data_key, wrap_data_key

        own_public = self._owner_key.public_key().public_bytes_raw()
        data_key = unwrap_data_key(
            dataset.wrapped_key,
            recipient_private=self._owner_key,
            owner_public=own_public,
            object_id=dataset.dataset_id,
            version=dataset.version,
            requester=self.owner_address,
        )
        return wrap_data_key(
            data_key,
            recipient_public=recipient,
            owner_private=self._owner_key,
            object_id=dataset.dataset_id,
            version=dataset.version,
            requester=request.requester,
        )

    def stream(self, authorization: Authorization, chunk: int = 1 << 20) -> Iterator[bytes]:
        with self.blobs.open(authorization.dataset.blob_hash) as handle:
            while block := handle.read(chunk):
                yield block


def _parse(body: Any) -> tuple[AccessRequest, str]:
    if not isinstance(body, dict) or not isinstance(body.get("signature"), str):
        raise InvalidRequestError('the body must be {"request": {...}, "signature": "0x..."}')
    return AccessRequest.from_json(body.get("request")), body["signature"]


def _entry(
    request: AccessRequest | None, signer: str | None, peer: str, outcome: str, reason: str = ""
) -> dict[str, Any]:
    """An audit entry: who, which dataset and grant, what purpose, when, what happened.

    "Who" is the account that signed (``signer``); without a signature, the entry says
    so and gives the peer's network address instead. Account addresses, ids and that
    address only: never names, never data."""
    entry: dict[str, Any] = {"kind": READ, "outcome": outcome, "time": int(time.time())}
    if request is not None and signer is not None:
        entry.update(
            dataset="0x" + request.dataset_id.hex(),
            grant=request.grant_id,
            requester=signer,
            purpose=request.purpose,
        )
    else:
        entry.update(authenticated=False, peer=peer or "unknown")
    if reason:
        entry["reason"] = reason
    return entry
