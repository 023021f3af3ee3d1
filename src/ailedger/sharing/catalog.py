"""The dataset catalog: an index of DataMarket events, plus metadata verified against chain.

The chain holds only hashes and policies; titles and tags are served by each owner's
gateway and accepted only if they hash to the ``metadata_hash`` registered on chain. The
catalog keeps the verified metadata (its canonical JSON, the bytes that were hashed), so
``data list`` still shows titles when the owner's node is down; what it reads back is
hashed again, so a row edited in the database shows as unavailable, never as a lie.
Indexing resumes from the last block seen, so ``data list`` stays fast as the chain grows.

The tables live in the node's database (:mod:`ailedger.db`): the users of one
organisation can share one index.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    String,
    Table,
    Text,
    exc,
    func,
    select,
    update,
)

from ailedger.db import metadata, transaction, upsert
from ailedger.db.types import Uint256, as_uint256
from ailedger.untrusted_json import parse_untrusted

if TYPE_CHECKING:
    from ailedger.session import Session

# A page view syncs the catalog, so fetching missing metadata must not make it wait on
# nodes that are away: one address lookup per owner, a short timeout, and a node that
# did not answer at a URL is asked there again only after RETRY_UNANSWERED_S (at once
# if its owner registers another URL). Known to every catalog of this process.
METADATA_TIMEOUT_S = 3.0
METADATA_MAX_BYTES = 64 * 1024  # a title, tags and a description
RETRY_UNANSWERED_S = 30.0
_unanswered: dict[tuple[str, str], float] = {}  # (owner, url) -> when it last failed
_unanswered_lock = threading.Lock()

sync_state = Table(
    "sharing_catalog_sync",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("block", BigInteger, nullable=False),
)
datasets = Table(
    "sharing_catalog_datasets",
    metadata,
    Column("dataset_id", String(66), primary_key=True),
    Column("owner", String(42), nullable=False),
    Column("ciphertext_hash", String(64), nullable=False),
    Column("metadata_hash", String(64), nullable=False),
    Column("purposes", Uint256, nullable=False),
    Column("needs_approval", Boolean, nullable=False),
    Column("price", Uint256, nullable=False),
    Column("duration", Uint256, nullable=False),
    Column("max_reads", Uint256, nullable=False),
    Column("retired", Boolean, nullable=False),
    Column("block", BigInteger, nullable=False, index=True),
    Column("metadata_json", Text, nullable=True),  # canonical JSON, as verified
)
requests_table = Table(
    "sharing_catalog_requests",
    metadata,
    Column("request_id", Uint256, primary_key=True, autoincrement=False),
    Column("dataset_id", String(66), nullable=False),
    Column("requester", String(42), nullable=False),
    Column("owner", String(42), nullable=False),
    Column("purpose", Uint256, nullable=False),
    Column("status", String(16), nullable=False),
    Column("block", BigInteger, nullable=False),
)

_log = logging.getLogger(__name__)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

MARKET_EVENTS = (
    "DatasetRegistered",
    "PolicyUpdated",
    "DatasetRetired",
    "RequestCreated",
    "AccessGranted",
    "AccessDenied",
    "RequestCancelled",
    "AccessRevoked",
)
_STATUS_OF_EVENT = {
    "AccessGranted": "granted",
    "AccessDenied": "denied",
    "RequestCancelled": "cancelled",
    "AccessRevoked": "revoked",
}


@dataclass(frozen=True)
class CatalogEntry:
    dataset_id: str
    owner: str
    purposes: int
    needs_approval: bool
    price: int
    duration: int
    max_reads: int
    retired: bool
    metadata: dict[str, Any] | None

    @property
    def title(self) -> str:
        return str((self.metadata or {}).get("title", "(metadata unavailable)"))

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in (self.metadata or {}).get("tags", [])]


MarketEvent = tuple[str, dict[str, Any], int]
"""(event name, its arguments as web3 decodes them, block number)."""


def canonical_metadata(document: Any) -> bytes:
    """The bytes whose sha256 an owner registers as ``metadata_hash``."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class Catalog:
    """The catalog in ``database``; safe to share between threads and processes."""

    def __init__(self, database: Engine) -> None:
        self._db = database

    def sync(self, session: Session) -> int:
        """Index every DataMarket event since the last sync, then fetch the metadata still
        missing (an owner offline last time may be back); returns the head indexed."""
        market = session.data_market
        head = int(session.chain.web3.eth.block_number)
        last = self.indexed_block()
        start = last + 1 if last is not None else session.deployment.block
        if start <= head:
            contract_events = market._contract.events
            found: list[tuple[int, int, MarketEvent]] = []
            for name in MARKET_EVENTS:
                logs = getattr(contract_events, name)().get_logs(from_block=start, to_block=head)
                for log in logs:
                    block = int(log["blockNumber"])
                    found.append((block, int(log["logIndex"]), (name, dict(log["args"]), block)))
            found.sort(key=lambda item: (item[0], item[1]))
            self.record_events([event for _, _, event in found], head)
        self._fetch_missing_metadata(session)
        return head

    def indexed_block(self) -> int | None:
        """The last block indexed, or None before the first sync."""
        with transaction(self._db) as conn:
            block = conn.execute(
                select(sync_state.c.block).where(sync_state.c.name == "market")
            ).scalar_one_or_none()
        return None if block is None else int(block)

    def record_events(self, events: Iterable[MarketEvent], head: int) -> int:
        """Apply ``events`` in chain order and remember ``head``, all in one transaction:
        a crash leaves the index at the old head or the new one, never in between.

        An event the catalog cannot hold is skipped with a warning and the rest are kept:
        any account can register a dataset, so one hostile record must not stop every
        node's sync at its block forever. Returns how many were skipped."""
        skipped = 0
        with transaction(self._db) as conn:
            for name, args, block in events:
                try:
                    with conn.begin_nested():  # a savepoint: a failed write leaves no trace
                        _apply(conn, name, args, block)
                except (KeyError, TypeError, ValueError, exc.DataError, exc.IntegrityError) as e:
                    skipped += 1
                    _log.warning("catalog: skipped %s at block %d: %s", name, block, e)
            upsert(conn, sync_state, {"name": "market", "block": head}, key=("name",))
        return skipped

    def keep_metadata(self, dataset_id: str, document: Any) -> bool:
        """Keep ``document`` as the dataset's metadata if it hashes to the registered
        ``metadata_hash``; False (and nothing kept) otherwise."""
        canonical = canonical_metadata(document)
        with transaction(self._db) as conn:
            registered = conn.execute(
                select(datasets.c.metadata_hash).where(datasets.c.dataset_id == dataset_id)
            ).scalar_one_or_none()
            if registered is None or sha256(canonical).hexdigest() != registered:
                return False
            conn.execute(
                update(datasets)
                .where(datasets.c.dataset_id == dataset_id)
                .values(metadata_json=canonical.decode())
            )
        return True

    def _fetch_missing_metadata(self, session: Session) -> None:
        with transaction(self._db) as conn:
            missing = conn.execute(
                select(datasets.c.dataset_id, datasets.c.owner).where(
                    datasets.c.metadata_json.is_(None)
                )
            ).all()
        by_owner: dict[str, list[str]] = {}
        for dataset_id, owner in missing:
            by_owner.setdefault(str(owner), []).append(str(dataset_id))
        registry = session.node_registry
        for owner, ids in by_owner.items():
            url = registry.url_of(owner)
            if url is not None and not _recently_unanswered(owner, url):
                self._fetch_from(owner, url, ids)

    def _fetch_from(self, owner: str, url: str, dataset_ids: list[str]) -> None:
        import httpx

        from ailedger.peer import wire
        from ailedger.peer.client import AnswerTooLargeError, bounded_request

        for dataset_id in dataset_ids:
            path = wire.path(wire.DATASET_METADATA, dataset_id=dataset_id)
            try:
                _, raw = bounded_request(
                    "GET", url + path, METADATA_MAX_BYTES, timeout=METADATA_TIMEOUT_S
                )
            except (httpx.HTTPError, AnswerTooLargeError):
                with _unanswered_lock:  # away: its other datasets wait for the next try too
                    _unanswered[(owner.lower(), url)] = time.monotonic()
                return
            try:
                document = parse_untrusted(raw)
            except ValueError:
                continue  # this answer is unreadable; the dataset stays unavailable
            self.keep_metadata(dataset_id, document)  # not what was registered: never shown
        with _unanswered_lock:
            _unanswered.pop((owner.lower(), url), None)

    def search(
        self,
        *,
        text: str = "",
        tag: str = "",
        purpose: int = 0,
        owner: str = "",
        max_price: int | None = None,
        include_retired: bool = False,
    ) -> list[CatalogEntry]:
        found, _ = self.search_page(
            text=text,
            tag=tag,
            purpose=purpose,
            owner=owner,
            max_price=max_price,
            include_retired=include_retired,
        )
        return found

    def search_page(
        self,
        *,
        text: str = "",
        tag: str = "",
        purpose: int = 0,
        owner: str = "",
        max_price: int | None = None,
        include_retired: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[CatalogEntry], int]:
        """The matching datasets from ``offset`` (at most ``limit``), oldest first, and
        how many match in all. Owner and retirement are filtered in the database; text,
        tag and purpose on the verified metadata and policy."""
        query = select(datasets).order_by(datasets.c.block, datasets.c.dataset_id)
        if owner:
            query = query.where(func.lower(datasets.c.owner) == owner.lower())
        if not include_retired:
            query = query.where(datasets.c.retired.is_(False))
        if not (text or tag or purpose) and max_price is None:  # one page, read as one
            counted = select(func.count()).select_from(query.order_by(None).subquery())
            with transaction(self._db) as conn:
                total = int(conn.execute(counted).scalar_one())
                rows = conn.execute(query.offset(offset).limit(limit)).all()
            return [_entry(r) for r in rows], total
        with transaction(self._db) as conn:
            rows = conn.execute(query).all()
        entries = (_entry(r) for r in rows)
        matching = [
            e for e in entries if _matches(e, text, tag, purpose, owner, max_price, include_retired)
        ]
        stop = None if limit is None else offset + limit
        return matching[offset:stop], len(matching)

    def get_many(self, dataset_ids: Iterable[str]) -> dict[str, CatalogEntry]:
        """The entries of ``dataset_ids`` that the catalog holds, by id, in one query."""
        wanted = sorted({d.lower() for d in dataset_ids})
        if not wanted:
            return {}
        with transaction(self._db) as conn:
            rows = conn.execute(select(datasets).where(datasets.c.dataset_id.in_(wanted))).all()
        return {row.dataset_id: _entry(row) for row in rows}

    def get(self, dataset_id: str) -> CatalogEntry | None:
        with transaction(self._db) as conn:
            row = conn.execute(
                select(datasets).where(datasets.c.dataset_id == dataset_id.lower())
            ).one_or_none()
        return None if row is None else _entry(row)

    def requests(
        self,
        *,
        owner: str = "",
        requester: str = "",
        status: str = "",
        offset: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Requests to ``owner``'s datasets and/or by ``requester``, in ``status`` if
        given, by request id."""
        t = requests_table
        order = t.c.request_id.desc() if newest_first else t.c.request_id
        query = self._requests_where(
            select(
                t.c.request_id, t.c.dataset_id, t.c.requester, t.c.owner, t.c.purpose, t.c.status
            ),
            owner,
            requester,
            status,
        ).order_by(order)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with transaction(self._db) as conn:
            rows = conn.execute(query).all()
        return [dict(row._mapping) for row in rows]

    def count_requests(self, *, owner: str = "", requester: str = "", status: str = "") -> int:
        query = self._requests_where(
            select(func.count()).select_from(requests_table), owner, requester, status
        )
        with transaction(self._db) as conn:
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _requests_where(query: Any, owner: str, requester: str, status: str) -> Any:
        t = requests_table
        if owner:
            query = query.where(func.lower(t.c.owner) == owner.lower())
        if requester:
            query = query.where(func.lower(t.c.requester) == requester.lower())
        if status:
            query = query.where(t.c.status == status)
        return query


def _apply(conn: Connection, name: str, args: dict[str, Any], block: int) -> None:
    """Write one event; ValueError (or KeyError, TypeError) if its arguments are not what
    the contract's ABI can carry, before anything is written."""
    if name in ("DatasetRegistered", "PolicyUpdated"):
        policy = {
            "purposes": as_uint256(args["purposes"]),
            "needs_approval": _flag(args["needs_approval"]),
            "price": as_uint256(args["price"]),
            "duration": as_uint256(args["duration"]),
            "max_reads": as_uint256(args["max_reads"]),
        }
        dataset = "0x" + _bytes32(args["dataset_id"]).hex()
        if name == "DatasetRegistered":
            row = {
                "dataset_id": dataset,
                "owner": _address(args["owner"]),
                "ciphertext_hash": _bytes32(args["ciphertext_hash"]).hex(),
                "metadata_hash": _bytes32(args["metadata_hash"]).hex(),
                **policy,
                "retired": False,
                "block": block,
                "metadata_json": None,
            }
            upsert(conn, datasets, row, key=("dataset_id",))
        else:
            conn.execute(update(datasets).where(datasets.c.dataset_id == dataset).values(**policy))
    elif name == "DatasetRetired":
        dataset = "0x" + _bytes32(args["dataset_id"]).hex()
        conn.execute(update(datasets).where(datasets.c.dataset_id == dataset).values(retired=True))
    elif name == "RequestCreated":
        row = {
            "request_id": as_uint256(args["request_id"]),
            "dataset_id": "0x" + _bytes32(args["dataset_id"]).hex(),
            "requester": _address(args["requester"]),
            "owner": _address(args["owner"]),
            "purpose": as_uint256(args["purpose"]),
            "status": "pending" if _flag(args["needs_approval"]) else "granted",
            "block": block,
        }
        upsert(conn, requests_table, row, key=("request_id",))
    else:
        conn.execute(
            update(requests_table)
            .where(requests_table.c.request_id == as_uint256(args["request_id"]))
            .values(status=_STATUS_OF_EVENT[name])
        )


def _bytes32(value: Any) -> bytes:
    # bytes(n) of an int would allocate n zero bytes: only bytes are taken here
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {value!r:.80}")
    return bytes(value)


def _address(value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"expected a 0x-prefixed 20-byte address, got {value!r:.80}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a bool, got {value!r:.80}")
    return value


def _entry(row: Any) -> CatalogEntry:
    return CatalogEntry(
        row.dataset_id,
        row.owner,
        int(row.purposes),
        bool(row.needs_approval),
        int(row.price),
        int(row.duration),
        int(row.max_reads),
        bool(row.retired),
        _verified_metadata(row.metadata_json, row.metadata_hash),
    )


def _verified_metadata(stored: str | None, metadata_hash: str) -> dict[str, Any] | None:
    """The kept metadata, only if it still hashes to the on-chain ``metadata_hash``."""
    if stored is None or sha256(stored.encode()).hexdigest() != metadata_hash:
        return None
    # Verified against the chain, yet written by the owner: still parsed as untrusted.
    try:
        document = parse_untrusted(stored)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _matches(
    entry: CatalogEntry,
    text: str,
    tag: str,
    purpose: int,
    owner: str,
    max_price: int | None,
    include_retired: bool,
) -> bool:
    if entry.retired and not include_retired:
        return False
    if text and text.lower() not in (entry.title + " " + " ".join(entry.tags)).lower():
        return False
    if tag and tag.lower() not in (t.lower() for t in entry.tags):
        return False
    if purpose and not entry.purposes & purpose:
        return False
    if owner and entry.owner.lower() != owner.lower():
        return False
    return max_price is None or entry.price <= max_price


def _recently_unanswered(owner: str, url: str) -> bool:
    with _unanswered_lock:
        failed = _unanswered.get((owner.lower(), url))
    return failed is not None and time.monotonic() - failed < RETRY_UNANSWERED_S
