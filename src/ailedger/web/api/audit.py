"""The audit API: the home's log a page at a time with inclusion proofs, its signed
checkpoints and on-chain anchors over time, the receipts it holds, and receipts checked
step by step against the chain (``/api/v1/audit/...``).

Every route reads; none changes the home, so an auditor (read-only) may call them all.
Each calls one method of :class:`ailedger.audit.home.HomeAudit`, as ``ailedger audit``
does.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ailedger.audit.browse import MAX_PAGE, EntryReceipt, HistoryPage
from ailedger.audit.home import HomeAudit
from ailedger.audit.receipt import ReceiptVerdict
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, SignedIn

PREFIX = "/api/v1/audit"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
DATASET = r"^0x[0-9a-fA-F]{64}$"
BUCKETS = {"hour": 3600, "day": 86400}
MAX_RECEIPT_BYTES = 256 * 1024  # a receipt is a few kilobytes: an entry and ~40 hashes


def home_audit(ctx: Context) -> HomeAudit:
    """The home's log, read with the key its checkpoints are signed with."""
    from ailedger.sharing.owner import audit_signing_key

    return HomeAudit(ctx.session, audit_signing_key(ctx.session).public_key())


Audit = Annotated[HomeAudit, Depends(home_audit)]
Node = Annotated[
    str | None,
    Query(pattern=ADDRESS, description="Another node's account (0x...); default: this home."),
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class EntryRow(BaseModel):
    index: int
    entry: dict[str, Any]
    proof_ok: bool = Field(description="Its inclusion proof verifies under the checkpoint.")
    proof_length: int


class HistoryOut(BaseModel):
    checkpoint_size: int = Field(description="Entries the latest signed checkpoint covers.")
    checkpoint_root: str = Field(description="Its Merkle root, hex.")
    checkpoint_time: int
    size: int = Field(description="Entries stored, an unsigned tail included.")
    total: int = Field(description="Entries under the checkpoint matching the filter.")
    offset: int
    limit: int
    entries: list[EntryRow]

    @classmethod
    def of(cls, page: HistoryPage, limit: int) -> HistoryOut:
        return cls(
            checkpoint_size=page.checkpoint_size,
            checkpoint_root=page.checkpoint_root.hex(),
            checkpoint_time=page.checkpoint_time,
            size=page.size,
            total=page.total,
            offset=page.offset,
            limit=limit,
            entries=[
                EntryRow(
                    index=h.index, entry=h.entry, proof_ok=h.proof_ok, proof_length=len(h.proof)
                )
                for h in page.entries
            ],
        )


class CheckpointOut(BaseModel):
    size: int
    root: str = Field(description="Merkle root, base64 (as in the signed note).")
    time: int


class Receipt(BaseModel):
    """An audit receipt: the logged entry, a C2SP signed checkpoint and the RFC 6962
    inclusion path (base64 hashes, deepest sibling first)."""

    index: int
    entry: str
    checkpoint: str
    inclusion_proof: list[str]


class EntryOut(BaseModel):
    index: int
    entry: dict[str, Any]
    leaf_hash: str = Field(description="SHA-256(0x00 || entry bytes), base64.")
    proof_ok: bool
    anchored: bool = Field(description="The receipt's checkpoint is anchored on chain.")
    checkpoint: CheckpointOut
    receipt: Receipt

    @classmethod
    def of(cls, got: EntryReceipt) -> EntryOut:
        cp = got.checkpoint
        return cls(
            index=got.index,
            entry=got.entry,
            leaf_hash=_b64(got.leaf_hash),
            proof_ok=got.proof_ok,
            anchored=got.anchored,
            checkpoint=CheckpointOut(size=cp.size, root=_b64(cp.root), time=cp.timestamp),
            receipt=Receipt(**got.receipt),
        )


class Point(BaseModel):
    time: int
    entries: int


class TimelineOut(BaseModel):
    bucket: Literal["hour", "day"]
    points: list[Point]


class AnchorOut(BaseModel):
    size: int
    root: str = Field(description="Merkle root anchored, base64.")
    block: int
    time: int


class AnchorsOut(BaseModel):
    node: str
    anchors: list[AnchorOut]
    checkpoints: list[CheckpointOut] = Field(
        description="This home's signed checkpoints (empty for another node)."
    )


class CheckOut(BaseModel):
    name: Literal["format", "entry", "signature", "inclusion", "anchor"]
    ok: bool | None = Field(description="null: not decided yet (not anchored so far).")
    detail: str


class VerifyIn(BaseModel):
    receipt: Any = Field(description="The receipt, as the gateway or this API gave it.")
    node: str | None = Field(
        default=None, pattern=ADDRESS, description="Whose log (0x...); default: this home."
    )


class VerdictOut(BaseModel):
    ok: bool = Field(description="No check failed.")
    failed: list[str] = Field(description="The names of the checks that failed.")
    checks: list[CheckOut]
    node: str
    index: int | None
    leaf_hash: str | None
    sides: list[str] | None = Field(description="Each path hash joins on this side.")
    computed_root: str | None
    checkpoint_size: int | None
    checkpoint_root: str | None
    anchor: AnchorOut | None

    @classmethod
    def of(cls, v: ReceiptVerdict, node: str) -> VerdictOut:
        def b64(data: bytes | None) -> str | None:
            return None if data is None else _b64(data)

        return cls(
            ok=v.ok,
            failed=v.failed,
            checks=[CheckOut(name=c.name, ok=c.ok, detail=c.detail) for c in v.checks],  # type: ignore[arg-type]
            node=node,
            index=v.index,
            leaf_hash=b64(v.leaf_hash),
            sides=v.sides,
            computed_root=b64(v.computed_root),
            checkpoint_size=v.checkpoint_size,
            checkpoint_root=b64(v.checkpoint_root),
            anchor=None
            if v.anchor is None
            else AnchorOut(size=v.anchor[0], root=_b64(v.anchor[1]), block=0, time=0),
        )


class HeldOut(BaseModel):
    dataset: str
    index: int
    entry: dict[str, Any]


class HeldListOut(BaseModel):
    receipts: list[HeldOut]


class HeldReceiptOut(HeldOut):
    owner: str
    receipt: dict[str, Any] = Field(description="As the owner's gateway serves it: verify it.")


class CoverageOut(BaseModel):
    """What ``ailedger audit verify`` (or ``--node``) reports."""

    ok: bool
    node: str
    url: str | None
    message: str
    size: int = Field(description="Entries in the log (served, for another node).")
    signed_size: int
    anchored_size: int
    anchored: int = Field(description="Anchors on chain.")
    checkpoints: int | None
    unsigned_tail: int | None
    first_bad_index: int | None
    checkpoint_key_on_chain: str | None
    problems: list[str]
    notes: list[str]


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["audit"])

    @api.get("/entries", response_model=HistoryOut)
    def entries(
        audit: Audit,
        user: SignedIn,
        dataset: Annotated[str | None, Query(pattern=DATASET)] = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> HistoryOut:
        """Who accessed (or was refused) what, newest first, a page at a time, each entry
        proved under the latest signed checkpoint."""
        return HistoryOut.of(
            audit.history(dataset=dataset, kind=kind, offset=offset, limit=limit), limit
        )

    @api.get("/entries/{index}", response_model=EntryOut)
    def entry(
        audit: Audit, user: SignedIn, index: Annotated[int, Path(ge=0, le=2**62)]
    ) -> EntryOut:
        """One entry with its receipt, under the latest anchored checkpoint covering it."""
        return EntryOut.of(audit.entry(index))

    @api.get("/timeline", response_model=TimelineOut)
    def timeline(
        audit: Audit, user: SignedIn, bucket: Literal["hour", "day"] = "hour"
    ) -> TimelineOut:
        """Entries logged per hour or per day."""
        points = audit.timeline(BUCKETS[bucket])
        return TimelineOut(bucket=bucket, points=[Point(time=t, entries=n) for t, n in points])

    @api.get("/anchors", response_model=AnchorsOut)
    def anchors(audit: Audit, user: SignedIn, node: Node = None) -> AnchorsOut:
        """The (size, root) pairs a node anchored on chain (AuditAnchor), with block
        and time; for this home also its signed checkpoints."""
        who = node or audit.session.address
        found = audit.anchors(who)
        own = node is None or node.lower() == audit.session.address.lower()
        return AnchorsOut(
            node=who,
            anchors=[
                AnchorOut(size=a.size, root=_b64(a.root), block=a.block, time=a.time) for a in found
            ],
            checkpoints=[
                CheckpointOut(size=s, root=_b64(r), time=t) for t, s, r in audit.checkpoints()
            ]
            if own
            else [],
        )

    @api.get("/verify", response_model=CoverageOut)
    def verify(audit: Audit, user: SignedIn, node: Node = None) -> CoverageOut:
        """Re-derive this home's whole log and check it against its checkpoints, anchors
        and key on chain; with ``node``, audit another node's log through its gateway."""
        if node is None:
            r = audit.verify()
            return CoverageOut(
                ok=r.ok,
                node=audit.session.address,
                url=None,
                message=r.message,
                size=r.size,
                signed_size=r.signed_size,
                anchored_size=r.anchored_size,
                anchored=r.anchored,
                checkpoints=r.checkpoints,
                unsigned_tail=r.unsigned_tail,
                first_bad_index=r.first_bad_index,
                checkpoint_key_on_chain=r.checkpoint_key_on_chain,
                problems=r.problems,
                notes=r.notes,
            )
        n = audit.verify_node(node)
        return CoverageOut(
            ok=n.result.ok,
            node=n.node,
            url=n.url,
            message=n.result.message,
            size=n.result.served_size,
            signed_size=n.result.signed_size,
            anchored_size=n.result.anchored_size,
            anchored=n.result.anchors,
            checkpoints=None,
            unsigned_tail=None,
            first_bad_index=None,
            checkpoint_key_on_chain=n.checkpoint_key,
            problems=n.result.problems,
            notes=n.result.notes,
        )

    @api.get("/receipts", response_model=HeldListOut)
    def receipts(audit: Audit, user: SignedIn) -> HeldListOut:
        """Receipts this home holds: what owners' gateways logged when they served it."""
        return HeldListOut(
            receipts=[
                HeldOut(dataset=h.dataset, index=h.index, entry=h.entry)
                for h in audit.held_receipts()
            ]
        )

    @api.get("/receipts/{dataset}/{index}", response_model=HeldReceiptOut)
    def receipt(
        audit: Audit,
        user: SignedIn,
        dataset: Annotated[str, Path(pattern=DATASET)],
        index: Annotated[int, Path(ge=0, le=2**62)],
    ) -> HeldReceiptOut:
        """A held receipt with the full proof its owner's gateway gives for it now."""
        held, owner, full = audit.held_receipt(dataset, index)
        return HeldReceiptOut(
            dataset=held.dataset, index=held.index, entry=held.entry, owner=owner, receipt=full
        )

    @api.post("/receipts/verify", response_model=VerdictOut, openapi_extra=documented(VerifyIn))
    def verify_receipt(
        audit: Audit,
        user: SignedIn,
        body: Annotated[VerifyIn, Depends(json_body(VerifyIn, MAX_RECEIPT_BYTES))],
    ) -> VerdictOut:
        """Check a receipt against the chain, each step named: format, entry, signature
        (by the key the node bound on chain), inclusion (the path to the checkpoint's
        root) and anchor (that root, or a later one consistent with it, on chain). A
        receipt that is not one at all is refused (422); one that fails a check comes back
        with ``ok`` false and the failed checks named."""
        node = body.node or audit.session.address
        return VerdictOut.of(audit.verify_receipt(body.receipt, node), node)

    return api
