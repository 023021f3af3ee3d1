"""What a person does with sharing, one function per action, for the CLI and the web app.

A data owner lists its datasets with their reads and earnings, answers requests (grant,
deny, revoke), sees who read what with inclusion proofs, and publishes; a researcher
searches the catalog, requests access and downloads under a grant. Each function checks
what the chain would refuse *before* sending (someone else's request, a request no longer
pending, a purpose the dataset does not allow, too few tokens) and says so with a
refusal kind of :mod:`ailedger.errors`: a person gets a reason and a status, never a
reverted transaction, and nothing changes.

Lists are pages (``offset``, ``limit``): a home with thousands of datasets, requests or
audit entries shows one page at a time, never the whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ailedger.errors import (
    BackPressureError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
)
from ailedger.sharing.catalog import Catalog, CatalogEntry

if TYPE_CHECKING:
    from ailedger.audit.log import AuditLog
    from ailedger.chain.contracts import Policy
    from ailedger.session import Session
    from ailedger.sharing.owner import Published
    from ailedger.sharing.requester import Fetched
    from ailedger.sharing.stats import DatasetNumbers, OwnerStats

T = TypeVar("T")
Action = Literal["grant", "deny", "revoke"]
MAX_PAGE = 200
_SCAN_CHUNK = 500  # audit entries read at once while looking for one dataset's
_MAX_SCAN = 50_000  # entries one page of a dataset's history reads at most
SHARING_KINDS = frozenset({"read", "compute-read", "publish", "grant", "deny", "revoke"})


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        after = self.offset + self.limit
        return after if after < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def _bounded(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise UnprocessableError(f"a page is offset >= 0 and 1 <= limit <= {MAX_PAGE}")
    return offset, limit


def synced_catalog(session: Session) -> Catalog:
    """The catalog, brought up to the chain's head first."""
    catalog = Catalog(session.database)
    catalog.sync(session)
    return catalog


def catalog_metadata(title: str, tags: Sequence[str], description: str) -> dict[str, Any]:
    """The metadata a dataset's catalog entry shows (hashed on chain): nothing personal."""
    return {"title": title, "tags": sorted(set(tags)), "description": description}


# ---------------------------------------------------------------------- data owner


@dataclass(frozen=True)
class OwnedRow:
    entry: CatalogEntry
    numbers: DatasetNumbers


@dataclass(frozen=True)
class RequestRow:
    request_id: int
    dataset_id: str
    title: str
    requester: str
    owner: str
    purpose: str
    status: str


@dataclass(frozen=True)
class Decision:
    request_id: int
    action: Action
    tx_hash: str
    block: int


@dataclass(frozen=True)
class AccessRow:
    index: int
    entry: dict[str, Any]
    proof: list[str]  # hex hashes, leaf to root (RFC 6962 audit path)
    proved: bool | None  # None: appended after the latest checkpoint, not provable yet


@dataclass(frozen=True)
class AccessPage:
    entries: list[AccessRow]
    checkpoint_size: int
    checkpoint_root: str
    next_before: int | None  # pass as ``before`` for the older entries


@dataclass(frozen=True)
class Earnings:
    total: int
    over_time: list[tuple[int, int]]  # (unix time, cumulative base units)
    per_dataset: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(dataset id, title, reads, earned), the page's datasets."""


_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_GRANT_DURATION_S = 100 * 365 * 86400  # DataMarket's MAX_DURATION
MAX_READS = 2**63 - 1  # what every store (a SQL BIGINT) can count


def grant_duration(text: str) -> int:
    """``90s``, ``30m``, ``12h``, ``30d`` -> seconds, at least 1 and at most a century."""
    found = _DURATION.fullmatch(text)
    if found is None or int(found[1]) == 0:
        raise UnprocessableError(
            f"{text[:40]!r} is not a duration; write e.g. 90s, 30m, 12h or 30d"
        )
    seconds = int(found[1]) * _UNITS[found[2]]
    if seconds > MAX_GRANT_DURATION_S:
        raise UnprocessableError(f"{text} is longer than the longest grant, 36500d")
    return seconds


def offer_policy(
    purposes: Sequence[str], needs_approval: bool, price: str, duration_s: int, max_reads: int
) -> Policy:
    """The policy a publish form asks for, checked before any file is read."""
    from ailedger.chain.contracts.data_market import Policy, purpose_mask
    from ailedger.units import parse_amount

    try:
        mask, amount = purpose_mask(list(purposes)), parse_amount(price)
    except ConfigError as exc:
        raise UnprocessableError(str(exc)) from exc
    if not 0 <= max_reads <= MAX_READS:
        raise UnprocessableError(f"max reads must be 0 (unlimited) .. {MAX_READS}")
    return Policy(mask, needs_approval, amount, duration_s, max_reads)


def publish_file(
    session: Session, source: Path, policy: Policy, metadata: dict[str, Any]
) -> Published:
    """Encrypt ``source`` here and register it on chain (see ``owner.publish``); a chain
    that refuses it is an :class:`UnprocessableError` and leaves nothing behind."""
    from ailedger.errors import TransactionRevertedError
    from ailedger.sharing.owner import publish

    try:
        return publish(session, source, policy, metadata)
    except (ConfigError, TransactionRevertedError) as exc:
        raise UnprocessableError(f"not published: {exc}") from exc


def my_datasets(
    session: Session, stats: OwnerStats | None, *, offset: int = 0, limit: int = 50
) -> Page[OwnedRow]:
    """This home's datasets on chain, each with its reads, grants and earnings (zeros
    when ``stats`` is None: no audit log here)."""
    from ailedger.sharing.stats import DatasetNumbers

    offset, limit = _bounded(offset, limit)
    found, total = synced_catalog(session).search_page(
        owner=session.address, include_retired=True, offset=offset, limit=limit
    )
    none = DatasetNumbers(0, 0, 0)
    rows = [OwnedRow(e, stats.numbers(e.dataset_id) if stats else none) for e in found]
    return Page(rows, total, offset, limit)


def requests_to_me(
    session: Session, *, status: str = "", offset: int = 0, limit: int = 50
) -> Page[RequestRow]:
    """Requests to this home's datasets (``pending`` ones await a decision), newest first."""
    return _request_page(session, {"owner": session.address}, status, offset, limit)


def requests_by_me(
    session: Session, *, status: str = "", offset: int = 0, limit: int = 50
) -> Page[RequestRow]:
    """Requests this home made (``granted`` ones can be fetched), newest first."""
    return _request_page(session, {"requester": session.address}, status, offset, limit)


def _request_page(
    session: Session, who: dict[str, str], status: str, offset: int, limit: int
) -> Page[RequestRow]:
    from ailedger.chain.contracts.data_market import purpose_names

    offset, limit = _bounded(offset, limit)
    catalog = synced_catalog(session)
    rows = catalog.requests(**who, status=status, offset=offset, limit=limit, newest_first=True)
    total = catalog.count_requests(**who, status=status)
    titles = catalog.get_many(r["dataset_id"] for r in rows)
    items = [
        RequestRow(
            int(r["request_id"]),
            r["dataset_id"],
            entry.title if (entry := titles.get(r["dataset_id"])) else "(unknown dataset)",
            r["requester"],
            r["owner"],
            ", ".join(purpose_names(int(r["purpose"]))) or "none",
            r["status"],
        )
        for r in rows
    ]
    return Page(items, total, offset, limit)


_NEEDS = {"grant": "PENDING", "deny": "PENDING", "revoke": "GRANTED"}


def decide(session: Session, request_id: int, action: Action) -> Decision:
    """Grant, deny or revoke request ``request_id`` to one of this home's datasets.

    A request to another owner's dataset is :class:`NotFoundError` (the same answer as
    an unknown id: whose requests exist is not told), one in the wrong state an
    :class:`UnprocessableError`; either way nothing is sent."""
    market = session.data_market
    grant = market.grant_info(request_id)
    record = market.dataset(grant.dataset_id) if grant is not None else None
    if grant is None or record is None or record.owner.lower() != session.address.lower():
        raise NotFoundError(
            f"no request {request_id} to a dataset of this home; list them with "
            "`ailedger data requests` or on the data owner page"
        )
    if grant.status.name != _NEEDS[action]:
        done = {"grant": "granted", "deny": "denied", "revoke": "revoked"}[action]
        raise UnprocessableError(
            f"request {request_id} is {grant.status.name.lower()}: only a "
            f"{_NEEDS[action].lower()} request can be {done}"
        )
    send: Callable[[int], Any] = {
        "grant": market.grant,
        "deny": market.deny,
        "revoke": market.revoke,
    }[action]
    result = send(request_id)
    return Decision(request_id, action, result.tx_hash, result.block_number)


def who_read(
    audit: AuditLog, *, dataset: str | None = None, before: int | None = None, limit: int = 50
) -> AccessPage:
    """The newest sharing entries of the log (reads, refusals, decisions) older than
    ``before``, only ``dataset``'s if given, each with its inclusion proof under the
    latest signed checkpoint (RFC 9162 section 2.1.3). Reads backwards a chunk at a time
    and stops at ``limit`` entries (or after ``_MAX_SCAN``, with ``next_before`` set to
    go on): never the whole log."""
    from ailedger.audit.merkle import leaf_hash, verify_inclusion

    _bounded(0, limit)
    size = audit.size
    stop = size if before is None else max(0, min(before, size))
    wanted = dataset.lower() if dataset else None
    found: list[tuple[int, bytes, dict[str, Any]]] = []
    scanned = 0
    while stop > 0 and len(found) < limit and scanned < _MAX_SCAN:
        start = max(0, stop - _SCAN_CHUNK)
        raw = audit.entries_bytes(start, stop)
        for offset in range(len(raw) - 1, -1, -1):
            entry = _parsed(raw[offset])
            if entry.get("kind") not in SHARING_KINDS:
                continue
            if wanted and str(entry.get("dataset", "")).lower() != wanted:
                continue
            found.append((start + offset, raw[offset], entry))
            if len(found) == limit:
                break
        scanned += stop - start
        stop = found[-1][0] if len(found) == limit else start
    checkpoint = audit.latest_checkpoint()
    rows = []
    for index, data, entry in found:
        if checkpoint is None or index >= checkpoint.size:
            rows.append(AccessRow(index, entry, [], None))
            continue
        proof = audit.inclusion_proof(index, checkpoint.size)
        ok = verify_inclusion(leaf_hash(data), index, checkpoint.size, proof, checkpoint.root)
        rows.append(AccessRow(index, entry, [p.hex() for p in proof], ok))
    return AccessPage(
        rows,
        checkpoint.size if checkpoint else 0,
        checkpoint.root.hex() if checkpoint else "",
        stop if stop > 0 else None,
    )


def _parsed(data: bytes) -> dict[str, Any]:
    import json

    entry = json.loads(data)
    return entry if isinstance(entry, dict) else {}


def earnings(session: Session, stats: OwnerStats, *, offset: int = 0, limit: int = 50) -> Earnings:
    """Tokens earned in all, over time, and reads and earnings per dataset (one page)."""
    owned = my_datasets(session, stats, offset=offset, limit=limit)
    per_dataset = [
        (row.entry.dataset_id, row.entry.title, row.numbers.reads, row.numbers.earned)
        for row in owned.items
    ]
    return Earnings(stats.total_earned(), stats.earnings_over_time(), per_dataset)


# ---------------------------------------------------------------------- researcher


@dataclass(frozen=True)
class RequestMade:
    request_id: int
    status: str
    tx_hash: str


def find_datasets(
    session: Session,
    *,
    text: str = "",
    tag: str = "",
    purpose: str = "",
    owner: str = "",
    offset: int = 0,
    limit: int | None = 50,
) -> Page[CatalogEntry]:
    """Datasets on chain matching ``text`` (title, tags), ``tag``, ``purpose`` (a name)
    and ``owner``: one page, or all of them with ``limit=None`` (the command line)."""
    from ailedger.chain.contracts.data_market import purpose_bit

    if limit is not None:
        offset, limit = _bounded(offset, limit)
    try:
        bit = purpose_bit(purpose) if purpose else 0
    except ConfigError as exc:
        raise UnprocessableError(str(exc)) from exc
    found, total = synced_catalog(session).search_page(
        text=text, tag=tag, purpose=bit, owner=owner, offset=offset, limit=limit
    )
    return Page(found, total, offset, total if limit is None else limit)


def dataset_detail(session: Session, dataset_id: bytes) -> CatalogEntry:
    entry = synced_catalog(session).get("0x" + dataset_id.hex())
    if entry is None:
        raise NotFoundError(
            f"no dataset 0x{dataset_id.hex()} on chain; find ids with `ailedger data list`"
        )
    return entry


def ask_access(session: Session, dataset_id: bytes, purpose: str) -> RequestMade:
    """Request access to ``dataset_id`` for ``purpose`` (a name), paying its price into
    escrow; refused before sending if the dataset is unknown or retired, the purpose not
    allowed, or the account's tokens do not cover the price."""
    from ailedger.chain.contracts.data_market import purpose_bit, purpose_names
    from ailedger.sharing.requester import request_access
    from ailedger.units import format_amount

    try:
        bit = purpose_bit(purpose)
    except ConfigError as exc:
        raise UnprocessableError(str(exc)) from exc
    market = session.data_market
    record = market.dataset(dataset_id)
    if record is None:
        raise NotFoundError(f"no dataset 0x{dataset_id.hex()} on chain; check the id")
    if record.retired:
        raise UnprocessableError(f"dataset 0x{dataset_id.hex()} is retired: it takes no request")
    if not record.policy.purposes & bit:
        allowed = ", ".join(purpose_names(record.policy.purposes))
        raise UnprocessableError(f"this dataset allows only: {allowed}; not {purpose}")
    held = session.token.balance_of(session.address)
    if held < record.policy.price:
        raise UnprocessableError(
            f"access costs {format_amount(record.policy.price)} and the account holds "
            f"{format_amount(held)}; get tokens first"
        )
    request_id, tx_hash = request_access(session, dataset_id, bit)
    grant = market.grant_info(request_id)
    status = grant.status.name.lower() if grant else "pending"
    return RequestMade(request_id, status, tx_hash)


def download(session: Session, grant_id: int, into: Path) -> Fetched:
    """Fetch the dataset of this home's grant ``grant_id`` from its owner's gateway into
    the new directory ``into`` (verified against the chain, decrypted). Someone else's
    grant is :class:`NotFoundError`; a grant not in force (pending, denied, revoked,
    expired) or out of reads a :class:`ForbiddenError` saying which."""
    from ailedger.errors import PeerUnreachableError
    from ailedger.sharing.requester import AccessRefusedError, fetch

    grant = session.data_market.grant_info(grant_id)
    if grant is None or grant.requester.lower() != session.address.lower():
        raise NotFoundError(f"no grant {grant_id} of this home; list yours on the research page")
    if grant.status.name != "GRANTED":
        raise ForbiddenError(
            f"grant {grant_id} is {grant.status.name.lower()}: it allows no read; "
            "request access again"
        )
    try:
        return fetch(session, grant.dataset_id, grant_id, into / "data")
    except AccessRefusedError as exc:
        raise ForbiddenError(f"the owner's gateway refused: {exc}") from exc
    except PeerUnreachableError as exc:
        raise BackPressureError(f"{exc}; try again later", retry_after=30) from exc
    except ConfigError as exc:
        raise UnprocessableError(str(exc)) from exc


# ---------------------------------------------------------------------- whole pages


@dataclass(frozen=True)
class OwnerView:
    """What the data owner's page shows, one page of each list."""

    datasets: Page[OwnedRow]
    pending: Page[RequestRow]
    grants: Page[RequestRow]
    history: AccessPage | None  # None: no audit log at this home's web app
    total_earned: int
    earnings_over_time: list[tuple[int, int]]


@dataclass(frozen=True)
class OwnerRequests:
    pending: Page[RequestRow]
    grants: Page[RequestRow]


@dataclass(frozen=True)
class ResearchView:
    """What the researcher's page shows: one page of search results and of requests."""

    results: Page[CatalogEntry]
    requests: Page[RequestRow]
    token_balance: int


def owner_requests(
    session: Session, *, pending_offset: int = 0, grants_offset: int = 0, limit: int = 50
) -> OwnerRequests:
    """Pending requests to this home's datasets and the grants in force, a page each."""
    return OwnerRequests(
        requests_to_me(session, status="pending", offset=pending_offset, limit=limit),
        requests_to_me(session, status="granted", offset=grants_offset, limit=limit),
    )


def owner_view(
    session: Session,
    stats: OwnerStats | None,
    audit: AuditLog | None,
    *,
    datasets_offset: int = 0,
    pending_offset: int = 0,
    grants_offset: int = 0,
    history_before: int | None = None,
    history_dataset: str | None = None,
    limit: int = 50,
) -> OwnerView:
    requests = owner_requests(
        session, pending_offset=pending_offset, grants_offset=grants_offset, limit=limit
    )
    return OwnerView(
        my_datasets(session, stats, offset=datasets_offset, limit=limit),
        requests.pending,
        requests.grants,
        None
        if audit is None
        else who_read(audit, dataset=history_dataset, before=history_before, limit=limit),
        stats.total_earned() if stats else 0,
        stats.earnings_over_time() if stats else [],
    )


def research_view(
    session: Session,
    *,
    text: str = "",
    tag: str = "",
    purpose: str = "",
    owner: str = "",
    offset: int = 0,
    requests_offset: int = 0,
    limit: int = 50,
) -> ResearchView:
    return ResearchView(
        find_datasets(
            session, text=text, tag=tag, purpose=purpose, owner=owner, offset=offset, limit=limit
        ),
        requests_by_me(session, offset=requests_offset, limit=limit),
        session.token.balance_of(session.address),
    )
