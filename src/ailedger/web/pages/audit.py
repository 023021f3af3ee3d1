"""The audit page (``/audit``), for an auditor or a patient: paste or upload a receipt and
see it verified in this browser against the root anchored on chain, with its Merkle path
drawn (``static/verify.js``), beside the server's check; the log's timeline and anchors
over time; its entries a page at a time, each with a receipt to verify.

Read-only throughout: an auditor can use all of it. Routes read through
:class:`ailedger.audit.home.HomeAudit` (the API's ``home_audit`` dependency) and render.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from ailedger.audit.browse import HistoryPage
from ailedger.web.api.audit import BUCKETS, DATASET, Audit
from ailedger.web.charts import bar_chart, line_chart
from ailedger.web.deps import SignedIn
from ailedger.web.render import page

PAGE = 25


def when(epoch_s: object) -> str:
    if not isinstance(epoch_s, int) or isinstance(epoch_s, bool) or epoch_s < 0:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(min(epoch_s, 2**35)))


def _rows(found: HistoryPage) -> list[dict[str, Any]]:
    """What the entries table shows of each entry (free text stays text: autoescaped)."""
    rows = []
    for h in found.entries:
        e = h.entry
        who = e.get("requester") or e.get("peer") or e.get("by") or ""
        rows.append(
            {
                "index": h.index,
                "when": when(e.get("time")),
                "kind": str(e.get("kind", "")),
                "outcome": str(e.get("outcome", "")),
                "who": str(who),
                "dataset": str(e.get("dataset", "")),
                "reason": str(e.get("reason", "")),
                "proof_ok": h.proof_ok,
            }
        )
    return rows


def _entries(
    request: Request,
    audit: Audit,
    offset: int,
    dataset: str | None,
    kind: str | None,
) -> dict[str, Any]:
    found = audit.history(dataset=dataset, kind=kind, offset=offset, limit=PAGE)
    return {
        "history": found,
        "rows": _rows(found),
        "offset": offset,
        "page_size": PAGE,
        "dataset": dataset or "",
        "kind": kind or "",
    }


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/audit", response_class=HTMLResponse)
    def audit_page(
        request: Request,
        audit: Audit,
        user: SignedIn,
        bucket: Literal["hour", "day"] = "hour",
    ) -> Response:
        timeline = audit.timeline(BUCKETS[bucket])
        anchors = audit.anchors()
        anchored = [(float(a.time), float(a.size)) for a in anchors]
        if anchored and timeline and timeline[0][0] < anchored[0][0]:
            anchored.insert(0, (float(timeline[0][0]), 0.0))  # before: nothing anchored
        return page(
            request,
            "audit.html",
            address=audit.session.address,
            bucket=bucket,
            timeline_chart=bar_chart(
                f"Audit entries per {bucket}",
                [(when(t)[: 13 if bucket == "hour" else 10], float(n)) for t, n in timeline[-24:]],
            ),
            anchors_chart=line_chart(
                "Entries anchored on chain over time",
                anchored,
                "entries anchored",
            ),
            anchors=[
                {"size": a.size, "root": a.root.hex(), "block": a.block, "when": when(a.time)}
                for a in anchors[-10:]
            ][::-1],
            anchor_count=len(anchors),
            held=audit.held_receipts(),
            **_entries(request, audit, 0, None, None),
        )

    @router.get("/audit/entries", response_class=HTMLResponse)
    def audit_entries(
        request: Request,
        audit: Audit,
        user: SignedIn,
        offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
        dataset: Annotated[str | None, Query(pattern=DATASET + "|^$")] = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        return page(
            request,
            "_audit_entries.html",
            **_entries(request, audit, offset, dataset or None, kind or None),
        )

    @router.get("/audit/coverage", response_class=HTMLResponse)
    def audit_coverage(request: Request, audit: Audit, user: SignedIn) -> Response:
        return page(request, "_audit_coverage.html", result=audit.verify())

    return router
