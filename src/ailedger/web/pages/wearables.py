"""``/wearables``: a person's wearable data at their own node, for them alone.

The page lists the batches imported (``ailedger wearables import``) with their Merkle
roots and audit entries, and the feedback on them: each rule's finding, explained with
its numbers. Recording the feedback logs each flag as a receipt (a commitment in the
audit log, anchored on chain) that the person can download and show their clinician.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ailedger.web.api.wearables import batches, feedback
from ailedger.web.deps import Context, Operator
from ailedger.web.render import page


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/wearables", response_class=HTMLResponse)
    def overview(request: Request, ctx: Context, user: Operator) -> HTMLResponse:
        return page(
            request,
            "wearables.html",
            batches=batches(ctx),
            findings=feedback(ctx, record=False)["findings"],
        )

    @ui.post("/wearables/feedback", response_class=HTMLResponse)
    def record(request: Request, ctx: Context, user: Operator) -> HTMLResponse:
        with ctx.writing():
            done = feedback(ctx, record=True)
        return page(
            request,
            "_wearables_receipts.html",
            receipts=[json.dumps(r, indent=2, sort_keys=True) for r in done["receipts"]],
            rules=[r["finding"]["rule"] for r in done["receipts"]],
            anchored=done["anchored"],
            not_anchored=done["not_anchored"],
        )

    return ui
