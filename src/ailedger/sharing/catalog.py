"""The dataset catalog: an SQLite index of DataMarket events, plus verified metadata.

The chain holds only hashes and policies; titles and tags are served by each owner's
gateway and accepted only if they hash to the ``metadata_hash`` registered on chain.
Indexing resumes from the last block seen, so ``data list`` stays fast as the chain grows.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailedger.session import Session

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync (k TEXT PRIMARY KEY, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id TEXT PRIMARY KEY, owner TEXT NOT NULL, ciphertext_hash TEXT NOT NULL,
    metadata_hash TEXT NOT NULL, purposes INTEGER NOT NULL, needs_approval INTEGER NOT NULL,
    price TEXT NOT NULL, duration INTEGER NOT NULL, max_reads INTEGER NOT NULL,
    retired INTEGER NOT NULL DEFAULT 0, block INTEGER NOT NULL, metadata TEXT
);
CREATE TABLE IF NOT EXISTS requests (
    request_id INTEGER PRIMARY KEY, dataset_id TEXT NOT NULL, requester TEXT NOT NULL,
    owner TEXT NOT NULL, purpose INTEGER NOT NULL, status TEXT NOT NULL, block INTEGER NOT NULL
);
"""
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


class Catalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def sync(self, session: Session) -> int:
        """Index every DataMarket event since the last sync; returns the head indexed."""
        market = session.data_market
        web3 = session.chain.web3
        head = int(web3.eth.block_number)
        row = self._conn.execute("SELECT block FROM sync WHERE k = 'market'").fetchone()
        start = (row[0] + 1) if row else session.deployment.block
        if start > head:
            return head
        events = market._contract.events
        with self._conn:
            for name in (
                "DatasetRegistered",
                "PolicyUpdated",
                "DatasetRetired",
                "RequestCreated",
                *_STATUS_OF_EVENT,
            ):
                for log in getattr(events, name)().get_logs(from_block=start, to_block=head):
                    self._apply(name, dict(log["args"]), int(log["blockNumber"]))
            self._conn.execute("INSERT OR REPLACE INTO sync VALUES ('market', ?)", (head,))
        self._fetch_missing_metadata(session)
        return head

    def _apply(self, name: str, args: dict[str, Any], block: int) -> None:
        if name in ("DatasetRegistered", "PolicyUpdated"):
            dataset = "0x" + bytes(args["dataset_id"]).hex()
            if name == "DatasetRegistered":
                self._conn.execute(
                    "INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?,?,0,?,NULL)",
                    (
                        dataset,
                        args["owner"],
                        bytes(args["ciphertext_hash"]).hex(),
                        bytes(args["metadata_hash"]).hex(),
                        args["purposes"],
                        int(args["needs_approval"]),
                        str(args["price"]),
                        args["duration"],
                        args["max_reads"],
                        block,
                    ),
                )
            else:
                self._conn.execute(
                    "UPDATE datasets SET purposes=?, needs_approval=?, price=?, duration=?, "
                    "max_reads=? WHERE dataset_id=?",
                    (
                        args["purposes"],
                        int(args["needs_approval"]),
                        str(args["price"]),
                        args["duration"],
                        args["max_reads"],
                        dataset,
                    ),
                )
        elif name == "DatasetRetired":
            self._conn.execute(
                "UPDATE datasets SET retired=1 WHERE dataset_id=?",
                ("0x" + bytes(args["dataset_id"]).hex(),),
            )
        elif name == "RequestCreated":
            status = "pending" if args["needs_approval"] else "granted"
            self._conn.execute(
                "INSERT OR REPLACE INTO requests VALUES (?,?,?,?,?,?,?)",
                (
                    args["request_id"],
                    "0x" + bytes(args["dataset_id"]).hex(),
                    args["requester"],
                    args["owner"],
                    args["purpose"],
                    status,
                    block,
                ),
            )
        else:
            self._conn.execute(
                "UPDATE requests SET status=? WHERE request_id=?",
                (_STATUS_OF_EVENT[name], args["request_id"]),
            )

    def _fetch_missing_metadata(self, session: Session) -> None:
        import httpx

        from ailedger.peer import wire
        from ailedger.peer.client import shared_client

        rows = self._conn.execute(
            "SELECT dataset_id, owner, metadata_hash FROM datasets WHERE metadata IS NULL"
        ).fetchall()
        registry = session.node_registry
        for dataset_id, owner, metadata_hash in rows:
            url = registry.url_of(owner)
            if url is None:
                continue
            try:
                path = wire.path(wire.DATASET_METADATA, dataset_id=dataset_id)
                raw = shared_client().get(url + path, timeout=5).content
                metadata = json.loads(raw)
            except (httpx.HTTPError, ValueError):
                continue  # owner offline: try again at the next sync
            canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
            if sha256(canonical).hexdigest() != metadata_hash:
                continue  # not what the owner registered: never shown
            with self._conn:
                self._conn.execute(
                    "UPDATE datasets SET metadata=? WHERE dataset_id=?",
                    (json.dumps(metadata), dataset_id),
                )

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
        rows = self._conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM datasets ORDER BY block")
        entries = (_entry(r) for r in rows.fetchall())
        return [
            e for e in entries if _matches(e, text, tag, purpose, owner, max_price, include_retired)
        ]

    def get(self, dataset_id: str) -> CatalogEntry | None:
        row = self._conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM datasets WHERE dataset_id = ?", (dataset_id.lower(),)
        ).fetchone()
        return None if row is None else _entry(row)

    def requests(self, *, owner: str = "", requester: str = "") -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT request_id, dataset_id, requester, owner, purpose, status FROM requests "
            "ORDER BY request_id"
        ).fetchall()
        keys = ("request_id", "dataset_id", "requester", "owner", "purpose", "status")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        if owner:
            out = [r for r in out if r["owner"].lower() == owner.lower()]
        if requester:
            out = [r for r in out if r["requester"].lower() == requester.lower()]
        return out


_ENTRY_COLUMNS = (
    "dataset_id, owner, purposes, needs_approval, price, duration, max_reads, retired, metadata"
)


def _entry(r: Any) -> CatalogEntry:
    metadata = json.loads(r[8]) if r[8] else None
    return CatalogEntry(r[0], r[1], r[2], bool(r[3]), int(r[4]), r[5], r[6], bool(r[7]), metadata)


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
