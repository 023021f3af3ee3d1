"""The clinician's page (``/clinic``): a similar-case search (HPO terms observed and
excluded, candidate genes, as ``ailedger health match`` takes them) here or across the
federation, with why each case matched; diagnoses ranked with their evidence; saved
queries and the notifications of new patients that matched them.

Fragments answer the page's htmx forms; each calls one function of
:mod:`ailedger.health.clinic`. Searching here and ranking read (an auditor may); asking
other nodes, saving and deleting queries are the operator's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from ailedger.errors import UnprocessableError
from ailedger.health import clinic
from ailedger.web.api.health import MAX_TERMS, Health, outgoing_log
from ailedger.web.deps import Context, Operator, SignedIn
from ailedger.web.pages.audit import when
from ailedger.web.render import page

Text = Annotated[str, Query(max_length=4000)]
FormText = Annotated[str, Form(max_length=4000)]
_SPLIT = re.compile(r"[\s,;]+")


def terms(text: str) -> list[str]:
    """Terms typed as the CLI's repeated flags would give them: separated by spaces,
    commas or semicolons."""
    found = [t for t in _SPLIT.split(text.strip()) if t]
    if len(found) > MAX_TERMS:
        raise UnprocessableError(f"give at most {MAX_TERMS} terms, not {len(found)}")
    return found


def _saved(request: Request, node: Any) -> Response:
    return page(request, "_health_saved.html", saved=clinic.saved_queries(node))


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/clinic", response_class=HTMLResponse)
    def clinic_page(request: Request, ctx: Context, node: Health, user: SignedIn) -> Response:
        cohort = ctx.matchmaker.cohort if ctx.matchmaker is not None else None
        return page(
            request,
            "clinic.html",
            patients=len(cohort.patients) if cohort is not None else node.store.count(),
            saved=clinic.saved_queries(node),
            notifications=[
                {**n, "when": when(n.get("time"))} for n in clinic.notifications(node, 20)
            ],
            can_write=user.can_write,
        )

    @router.get("/clinic/matches", response_class=HTMLResponse)
    def matches(
        request: Request,
        ctx: Context,
        node: Health,
        user: SignedIn,
        hpo: Text = "",
        exclude: Text = "",
        genes: Text = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> Response:
        document = clinic.query_document(terms(hpo), terms(exclude), terms(genes), "local")
        cohort = ctx.matchmaker.cohort if ctx.matchmaker is not None else None
        rows = clinic.search_here(node, document, limit, cohort=cohort)
        return page(request, "_health_matches.html", results=rows, asked={}, federated=False)

    @router.post("/clinic/matches/federated", response_class=HTMLResponse)
    def federated(
        request: Request,
        ctx: Context,
        user: Operator,
        hpo: FormText = "",
        exclude: FormText = "",
        genes: FormText = "",
        limit: Annotated[int, Form(ge=1, le=100)] = 5,
    ) -> Response:
        s = ctx.session
        document = clinic.query_document(
            terms(hpo), terms(exclude), terms(genes), f"ailedger node {s.address}"
        )
        answer = clinic.search_federation(s, document, limit, outgoing_log(ctx))
        return page(
            request,
            "_health_matches.html",
            results=answer.results,
            asked=answer.asked,
            federated=True,
        )

    @router.get("/clinic/diagnoses", response_class=HTMLResponse)
    def diagnoses(
        request: Request,
        user: SignedIn,
        hpo: Text = "",
        exclude: Text = "",
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Response:
        ranked = clinic.diagnose(terms(hpo), terms(exclude), limit)
        return page(request, "_health_diagnoses.html", **ranked)

    @router.post("/clinic/queries", response_class=HTMLResponse)
    def save(
        request: Request,
        node: Health,
        user: Operator,
        name: Annotated[str, Form(max_length=100)],
        hpo: FormText = "",
        exclude: FormText = "",
        genes: FormText = "",
    ) -> Response:
        document = clinic.query_document(terms(hpo), terms(exclude), terms(genes), "local")
        clinic.save_query(node, name.strip(), document)
        return _saved(request, node)

    @router.delete("/clinic/queries/{name}", response_class=HTMLResponse)
    def delete(request: Request, node: Health, user: Operator, name: str) -> Response:
        clinic.delete_query(node, name)
        return _saved(request, node)

    return router
