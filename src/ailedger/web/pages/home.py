"""The sign-in page and the home page: who is signed in, their balances, the home's chain
and contracts, and where each role works."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ailedger.web.deps import Context, SignedIn
from ailedger.web.render import page

# (path, who, what they do there): the home page's map of the app.
ROLES: Final = (
    (
        "/owner",
        "Data owner",
        "publish datasets, approve or deny requests, revoke grants, "
        "see who read what and what you earned",
    ),
    (
        "/research",
        "Researcher",
        "search the catalog, request access, fetch data, submit "
        "jobs and follow their logs and results",
    ),
    (
        "/provider",
        "GPU owner",
        "your machine and offers, stake, the jobs you ran, earnings and slashing",
    ),
    (
        "/clinic",
        "Clinician",
        "similar-case search and diagnosis with explanations, saved "
        "queries and their notifications",
    ),
    (
        "/audit",
        "Auditor or patient",
        "verify a receipt against its on-chain anchor, with "
        "the Merkle path drawn; the log's anchors over time",
    ),
)


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login(request: Request) -> Response:
        if getattr(request.state, "user", None) is not None:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html")

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, ctx: Context, user: SignedIn) -> Response:
        from dataclasses import replace

        from ailedger.account import shown_chain
        from ailedger.chain.status import home_overview
        from ailedger.units import format_amount

        overview = home_overview(ctx.session, user.address)
        overview = replace(overview, chain=shown_chain(overview.chain))
        return page(
            request,
            "home.html",
            overview=overview,
            ether=format_amount(overview.ether_wei, "ETH"),
            tokens=None
            if overview.token_base_units is None
            else format_amount(overview.token_base_units),
            roles=ROLES,
        )

    return router
