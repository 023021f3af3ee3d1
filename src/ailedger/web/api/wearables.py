"""A person's wearable data over the REST API (``/api/v1/wearables/...``): the batches
imported at this node, the feedback on them, and recording that feedback as receipts.

Each route calls what ``ailedger wearables`` calls (:mod:`ailedger.node.wearables`).
Everything here is the person's own health data, decrypted at their node: only the
operator (the person) reads it; an auditor of the home does not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ailedger.errors import ConfigError
from ailedger.web.api._refusals import as_refusals
from ailedger.web.deps import Context, Operator, WebContext

PREFIX = "/api/v1/wearables"


def batches(ctx: WebContext) -> list[dict[str, Any]]:
    from ailedger.node.wearables import vault_of

    return [vars(b) for b in vault_of(ctx.session, _node(ctx)).batches()]


def feedback(ctx: WebContext, record: bool) -> dict[str, Any]:
    """The findings; with ``record``, each flag logged and its receipt returned."""
    from ailedger.node.wearables import run_feedback

    with as_refusals():
        done = run_feedback(ctx.session, _node(ctx), record=record)
    return {
        "findings": [vars(f) for f in done.findings],
        "receipts": done.receipts,
        "anchored": list(done.anchored) if done.anchored else None,
        "not_anchored": done.not_anchored,
    }


def _node(ctx: WebContext) -> Any:
    if ctx.node is None:
        raise ConfigError("this web app serves no node: start it with `ailedger node start`")
    return ctx.node


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["wearables"])

    @api.get("/batches")
    def batch_list(ctx: Context, user: Operator) -> dict[str, Any]:
        """The batches imported here, oldest first (``ailedger wearables list --json``)."""
        return {"batches": batches(ctx)}

    @api.get("/feedback")
    def findings(ctx: Context, user: Operator) -> dict[str, Any]:
        """Every rule's finding over the data held here; nothing is recorded."""
        return feedback(ctx, record=False)

    @api.post("/feedback")
    def record(ctx: Context, user: Operator) -> dict[str, Any]:
        """The findings, each flag recorded in the audit log (a commitment, no value) and
        the log anchored; the receipts are the person's to keep."""
        with ctx.writing():
            return feedback(ctx, record=True)

    return api
