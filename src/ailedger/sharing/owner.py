"""A data owner's node: publish datasets, answer access requests, keep and anchor the log.

It keeps ciphertext in the home's blob store (``HomeLayout.blobs``, content-addressed),
the audit log in ``HomeLayout.audit``, and its records (datasets with their keys wrapped
to the owner's own key, request nonces) in the node's database. Other capabilities ask
about those records through :func:`owned_dataset`, never through the store itself.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.chain.contracts import Policy
from ailedger.errors import (
    ConfigError,
    ContractError,
    PeerUnreachableError,
    TransactionRejectedError,
    TransactionRevertedError,
)
from ailedger.sharing.access_request import Domain
from ailedger.sharing.owner_store import OwnedDataset, OwnerStore
from ailedger.sharing.reads import COMPUTE_READ, GrantReads, ReadLimitReachedError

if TYPE_CHECKING:
    from ailedger.audit.log import AuditLog
    from ailedger.session import Session
    from ailedger.sharing.gateway import Gateway
    from ailedger.sharing.stats import OwnerStats

Progress = Callable[[int], None]
FIRST_VERSION = 1


@dataclass(frozen=True)
class Published:
    dataset_id: bytes
    ciphertext_hash: str
    size: int
    tx_hash: str
    block: int


def audit_signing_key(session: Session) -> Any:
    """The Ed25519 key that signs audit checkpoints, derived from the home's X25519 key
    (HKDF, a separate label) so the home has one secret to protect, not two."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    seed = session.encryption_key().private_bytes_raw()
    derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"ailedger audit checkpoint key v1")
    return Ed25519PrivateKey.from_private_bytes(derived.derive(seed))


def register_checkpoint_key(session: Session) -> str | None:
    """Bind the key that signs this node's checkpoints to its account on chain
    (``AuditAnchor.set_checkpoint_key``); returns the tx hash, or None if already bound."""
    raw = audit_signing_key(session).public_key().public_bytes_raw()
    anchors = session.audit_anchor
    try:
        bound = anchors.checkpoint_key(session.address)
    except ContractError as exc:
        # A chain whose AuditAnchor was deployed before checkpoint keys existed: say so,
        # rather than let the node start with receipts nobody can check.
        raise ContractError(
            f"the AuditAnchor contract at {anchors.address} has no checkpoint keys (it predates "
            "them); deploy the current contracts (`ailedger chain deploy`, or a new embedded "
            f"chain) so receipts from this node can be verified ({exc})"
        ) from exc
    if bound == raw:
        return None
    return anchors.set_checkpoint_key(raw).tx_hash


def _records(session: Session) -> OwnerStore:
    """This home's owner records, with those of a home made before node.sqlite adopted."""
    store = OwnerStore(session.database, session.address)
    store.adopt_legacy_file(session.home.layout.legacy_owner_store)
    return store


def owned_dataset(session: Session, dataset_id: bytes) -> OwnedDataset | None:
    """This home's record of a dataset it published, or None if it holds no such dataset."""
    return _records(session).get(dataset_id)


def publish(
    session: Session,
    source: Path,
    policy: Policy,
    metadata: dict[str, Any],
    progress: Progress | None = None,
) -> Published:
    """Encrypt ``source`` (a file or a directory) at this home and register it on chain
    under ``policy``; ``metadata`` (title, tags, description: nothing personal) is served
    by the running node and checked against its hash by whoever reads the catalog.
    Needs a session opened with ``unlock=True``."""
    with OwnerNode(session) as node:
        return node.publish(source, policy, metadata, progress)


def is_private(session: Session, dataset_id: bytes) -> bool:
    """Whether the dataset has a privacy budget (only private answers leave it). A chain
    without the PrivacyLedger contract has no private dataset."""
    from ailedger.errors import NotDeployedError

    try:
        return bool(session.privacy_ledger.budget(dataset_id).private)
    except NotDeployedError:
        return False


class OwnerNode:
    """Everything a data owner's node holds, opened from an unlocked session."""

    def __init__(self, session: Session) -> None:
        from ailedger.store.blobs import DirectoryBlobStore

        self.session = session
        self.store = _records(session)
        self.blobs = DirectoryBlobStore(session.home.layout.blobs)
        self.market = session.data_market
        self._audit: AuditLog | None = None
        self._reads: GrantReads | None = None
        self._stats: OwnerStats | None = None
        self._closers: list[Callable[[], None]] = []

    @property
    def audit(self) -> AuditLog:
        """The audit log, opened on first use: one process (the running node) owns it."""
        if self._audit is None:
            from ailedger.audit.log import AuditLog

            self._audit = AuditLog(
                self.session.home.layout.audit,
                audit_signing_key(self.session),
                origin=f"ailedger/{self.session.address}",
            )
        return self._audit

    @property
    def reads(self) -> GrantReads:
        """The reads of every grant in this node's audit log (opened on first use), one
        counter shared by its gateway and its own compute-to-data reads."""
        if self._reads is None:
            self._reads = GrantReads(self.audit, self.market)
        return self._reads

    @property
    def stats(self) -> OwnerStats:
        """Reads per dataset and earnings, counted from this node's audit log."""
        if self._stats is None:
            from ailedger.sharing.stats import OwnerStats

            self._stats = OwnerStats(self.audit, self.market)
        return self._stats

    def append_own(self, entry: dict[str, Any]) -> None:
        """Append an entry this home's own processes make (an outgoing query, a
        compute-to-data read): directly, or through the running node when it holds the log.
        A compute-to-data read passes its grant's read limit first, either way; past it,
        :class:`~ailedger.sharing.reads.ReadLimitReachedError` and nothing is logged."""
        from ailedger.audit.errors import AuditLogError
        from ailedger.peer.client import SignedRequestError, log_via_own_node

        try:
            audit = self.audit
        except AuditLogError:  # the running node owns the log: hand it the entry instead
            try:
                log_via_own_node(self.session.require_account(), self._own_url(), entry)
            except SignedRequestError as exc:
                if exc.status == ReadLimitReachedError.http_status:
                    raise ReadLimitReachedError(str(exc)) from exc
                raise
            return
        if entry.get("kind") == COMPUTE_READ:
            self.reads.append_read(entry)
        else:
            audit.append(entry)

    def reads_left(self, grant_id: int) -> int | None:
        """The reads ``grant_id`` has left at this node (None: unlimited), counted from the
        audit log directly, or by the running node when it holds the log."""
        from ailedger.audit.log import AuditLogError
        from ailedger.sharing.requester import reads_left_at

        try:
            reads = self.reads
        except AuditLogError:  # the running node holds the log: it counts
            return reads_left_at(self._own_url(), grant_id)
        return reads.remaining(grant_id)

    def _own_url(self) -> str:
        url = self.session.node_registry.url_of(self.session.address)
        if url is None:
            raise PeerUnreachableError("this node has no gateway URL registered; start it first")
        return str(url)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the node closes (a desk's own store, say), before the log."""
        self._closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        if self._audit is not None:
            self._audit.close()

    def __enter__(self) -> OwnerNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ publish

    def publish(
        self, source: Path, policy: Policy, metadata: dict[str, Any], progress: Progress | None
    ) -> Published:
        """Encrypt ``source`` into the blob store, keep its key, register it on chain.
        A policy the contract cannot hold is refused before any work, and a registration
        the chain refuses leaves nothing behind: no ciphertext, no record."""
        from ailedger.crypto.hpke import wrap_data_key
        from ailedger.store.objects import encrypt_object

        _check_fits_contract(policy)
        if not source.exists():
            raise ConfigError(f"{source} does not exist; give a file or a directory to publish")
        dataset_id = secrets.token_bytes(32)  # random: an id reveals nothing about the data
        encrypted = encrypt_object(
            source, self.blobs, object_id=dataset_id, version=FIRST_VERSION, progress=progress
        )
        own = self.session.encryption_key()
        wrapped = wrap_data_key(
            encrypted.data_key,
            recipient_public=own.public_key().public_bytes_raw(),
            owner_private=own,
            object_id=dataset_id,
            version=FIRST_VERSION,
            requester=self.session.address,
        )
        canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
        # Kept before the chain knows: a crash after this leaves a local record that
        # can be registered again, never an on-chain dataset whose key is lost.
        self.store.add(
            OwnedDataset(dataset_id, encrypted.blob.hash_hex, FIRST_VERSION, wrapped, metadata)
        )
        try:
            result = self.market.register_dataset(
                dataset_id,
                bytes.fromhex(encrypted.blob.hash_hex),
                sha256(canonical).digest(),
                policy,
            )
        except (TransactionRejectedError, TransactionRevertedError):
            # Refused for certain, so nothing on chain needs the key. Any other failure
            # (a timeout) may still be mined: then the record and ciphertext stay.
            self.store.remove(dataset_id)
            self.blobs.delete(encrypted.blob.hash_hex)
            raise
        return Published(
            dataset_id,
            encrypted.blob.hash_hex,
            encrypted.blob.size,
            result.tx_hash,
            result.block_number,
        )

    def decrypt_own(self, dataset_id: bytes, dest: Path) -> None:
        """Decrypt one of this node's datasets to ``dest`` (compute-to-data: the data is
        read here, by the owner's own node, and never sent anywhere)."""
        from ailedger.crypto.hpke import unwrap_data_key
        from ailedger.store.objects import decrypt_object

        record = self.store.get(dataset_id)
        if record is None:
            raise ConfigError(f"dataset 0x{dataset_id.hex()} is not held by this node")
        own = self.session.encryption_key()
        key = unwrap_data_key(
            record.wrapped_key,
            recipient_private=own,
            owner_public=own.public_key().public_bytes_raw(),
            object_id=dataset_id,
            version=record.version,
            requester=self.session.address,
        )
        with self.blobs.open(record.blob_hash) as reader:
            decrypt_object(reader, key, object_id=dataset_id, version=record.version, dest=dest)

    # ------------------------------------------------------------------ gateway

    def gateway(self) -> Gateway:
        from ailedger.sharing.gateway import Gateway

        session = self.session
        domain = Domain(session.chain.chain_id, session.deployment.address("DataMarket"))
        return Gateway(
            owner_key=session.encryption_key(),
            owner_address=session.address,
            domain=domain,
            market=self.market,
            key_registry=session.key_registry,
            store=self.store,
            blobs=self.blobs,
            audit=self.audit,
            reads=self.reads,
            is_private=lambda dataset: is_private(session, dataset),
        )

    def anchor(self) -> tuple[int, str] | None:
        """Anchor the latest audit checkpoint on chain if it is ahead of the last anchor;
        returns (size, tx hash), or None when there was nothing new."""
        checkpoint = self.audit.latest_checkpoint()
        if checkpoint is None:
            return None
        anchors = self.session.audit_anchor
        latest = anchors.latest(self.session.address)
        if latest is not None and latest[0] >= checkpoint.size:
            return None
        register_checkpoint_key(self.session)  # an anchor is checked against this key
        result = anchors.anchor(checkpoint.size, checkpoint.root)
        return checkpoint.size, result.tx_hash

    def log_chain_decisions(self) -> int:
        """Append an audit entry for each registration, grant, denial and revocation of
        this owner's datasets seen on chain since the last call; returns how many.

        Decisions are taken on chain (by `data grant`, or automatically on payment), so
        the node reads them from the chain's events rather than trusting a local note:
        the log shows what the chain shows, even for decisions made while it was down.
        """
        web3 = self.session.chain.web3
        head = int(web3.eth.block_number)
        start = max(self.store.watched_block() + 1, self.session.deployment.block)
        if start > head:
            return 0
        events = self.market._contract.events
        me = self.session.address.lower()
        found: list[tuple[int, int, dict[str, Any]]] = []
        for name, kind in _DECISIONS.items():
            for log in getattr(events, name)().get_logs(from_block=start, to_block=head):
                args = dict(log["args"])
                if str(args["owner"]).lower() == me:
                    position = (int(log["blockNumber"]), int(log["logIndex"]))
                    found.append((*position, _decision_entry(kind, args, log)))
        for _, _, entry in sorted(found, key=lambda item: (item[0], item[1])):
            self.audit.append(entry)
        self.store.set_watched_block(head)
        return len(found)


def _check_fits_contract(policy: Policy) -> None:
    from ailedger.units import MAX_UINT256

    for name in ("purposes", "price", "duration_s", "max_reads"):
        value = getattr(policy, name)
        if not 0 <= value <= MAX_UINT256:
            raise ConfigError(f"the policy's {name} must be 0 .. 2**256 - 1, not {value}")


_DECISIONS = {
    "DatasetRegistered": "publish",
    "AccessGranted": "grant",
    "AccessDenied": "deny",
    "AccessRevoked": "revoke",
}


def _decision_entry(kind: str, args: dict[str, Any], log: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": kind,
        "dataset": "0x" + bytes(args["dataset_id"]).hex(),
        "outcome": "on chain",
        "tx": "0x" + bytes(log["transactionHash"]).hex(),
        "block": int(log["blockNumber"]),
        "time": _now(),
    }
    if "request_id" in args:
        entry.update(
            grant=int(args["request_id"]),
            requester=str(args["requester"]),
            purpose=int(args["purpose"]),
        )
    if kind == "grant":
        entry["amount"] = int(args["amount"])  # what the owner earned: the earnings chart
    return entry


def _now() -> int:
    import time

    return int(time.time())
