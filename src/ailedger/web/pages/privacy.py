"""``/privacy``: private analytics, for owners and researchers.

An owner sees each of their private datasets' budgets (cap, spend recomputed from the
chain's events, by buyer and by kind, every release) and sets a cap on a dataset; anyone
signed in looks up any dataset's budget; the operator asks a DP query or training of
another node's private dataset. Every figure comes from :mod:`ailedger.privacy.report`,
the same function as ``ailedger privacy budget`` and the API.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from ailedger.errors import RequestRefusedError
from ailedger.privacy.report import BudgetReport, budget_report
from ailedger.sharing.desk import my_datasets
from ailedger.web.api._refusals import as_refusals
from ailedger.web.api.privacy import CapIn, ReleaseIn, ask
from ailedger.web.charts import bar_chart
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.jobs import message
from ailedger.web.render import page

LookUp = Annotated[str, Query(max_length=66, pattern=r"^(0x[0-9a-fA-F]{64})?$")]


def _reports(ctx: Context) -> tuple[list[BudgetReport], list[Any]]:
    """Budgets of this home's private datasets, and its datasets with none yet."""
    private, open_ = [], []
    with as_refusals():
        for row in my_datasets(ctx.session, None, limit=50).items:
            report = budget_report(ctx.session, bytes.fromhex(row.entry.dataset_id[2:]))
            if report.private:
                private.append(report)
            elif not row.entry.retired:
                open_.append(row.entry)
    return private, open_


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "form"
    return f"{where}: {first['msg']}"


def pages() -> APIRouter:
    ui = APIRouter(include_in_schema=False)

    @ui.get("/privacy", response_class=HTMLResponse)
    def privacy(
        request: Request, ctx: Context, user: SignedIn, dataset: LookUp = ""
    ) -> HTMLResponse:
        mine, without = _reports(ctx)
        looked_up = None
        if dataset:
            with as_refusals():
                looked_up = budget_report(ctx.session, bytes.fromhex(dataset[2:]))
        charts = {
            r.dataset: bar_chart("Spent by buyer (epsilon, each alone)", list(r.by_buyer.items()))
            for r in mine
        }
        return page(
            request,
            "privacy.html",
            viewer=user,
            mine=mine,
            without=without,
            looked_up=looked_up,
            charts=charts,
            dataset=dataset,
        )

    @ui.post("/privacy/cap", response_class=HTMLResponse)
    def cap(
        request: Request,
        ctx: Context,
        user: Operator,
        dataset: Annotated[str, Form(max_length=66)] = "",
        epsilon: Annotated[str, Form(max_length=20)] = "",
        delta: Annotated[str, Form(max_length=20)] = "1e-6",
    ) -> HTMLResponse:
        from ailedger.privacy.owner import set_privacy_cap

        try:
            body = CapIn.model_validate({"dataset": dataset, "epsilon": epsilon, "delta": delta})
        except ValidationError as exc:
            return message(request, _invalid(exc), ok=False)
        try:
            with as_refusals(), ctx.writing():
                change = set_privacy_cap(
                    ctx.session, bytes.fromhex(body.dataset[2:]), body.epsilon, body.delta
                )
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        response = message(
            request,
            f"cap set: epsilon {change.epsilon_cap:g} at delta {change.delta:g} "
            f"(tx {change.tx_hash})",
            ok=True,
        )
        response.headers["HX-Refresh"] = "true"
        return response

    @ui.post("/privacy/ask", response_class=HTMLResponse)
    def ask_page(
        request: Request,
        ctx: Context,
        user: Operator,
        dataset: Annotated[str, Form(max_length=66)] = "",
        kind: Annotated[str, Form(max_length=10)] = "query",
        spec: Annotated[str, Form(max_length=60_000)] = "",
        grant: Annotated[str, Form(max_length=80)] = "",
        buy_for: Annotated[str, Form(max_length=40)] = "",
    ) -> HTMLResponse:
        try:
            parsed = json.loads(spec or "null")
            body = ReleaseIn.model_validate(
                {
                    "dataset": dataset,
                    "kind": kind,
                    "spec": parsed,
                    "grant": int(grant) if grant.strip() else None,
                    "buy_for": buy_for or None,
                }
            )
        except ValueError as exc:  # JSON, the grant number, or the model's own checks
            text = _invalid(exc) if isinstance(exc, ValidationError) else f"spec or grant: {exc}"
            return message(request, text, ok=False)
        try:
            answer = ask(ctx, body)
        except RequestRefusedError as exc:
            return message(request, exc.reason, ok=False)
        return page(request, "_privacy_answer.html", answer=answer, dumps=json.dumps)

    return ui
