"""The clinician's API: similar cases here or across the federation, diagnoses, saved
queries and their notifications (``/api/v1/health/...``).

Each route calls one function of :mod:`ailedger.health.clinic`, as ``ailedger health``
does. Searching here and ranking diagnoses read; asking other nodes (it speaks for this
home and is logged), saving and deleting queries are the operator's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from ailedger.health import clinic
from ailedger.health.node import HealthNode
from ailedger.web.api.bodies import documented, json_body
from ailedger.web.deps import Context, Operator, SignedIn

PREFIX = "/api/v1/health"
MAX_TERMS = 100
MAX_BODY = 64 * 1024

Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Gene = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
QueryName = Annotated[str, Path(min_length=1, max_length=100)]


def health_node(ctx: Context) -> Iterator[HealthNode]:
    """This home's patients and saved queries, for one request."""
    from ailedger.health.consent import chain_consent

    s = ctx.session
    oracle = chain_consent(s)  # linked patients: the chain's consent, per query
    with HealthNode(s.home.path, s.settings.database_url, consent_oracle=oracle) as node:
        yield node


Health = Annotated[HealthNode, Depends(health_node)]
Observed = Annotated[
    list[Term], Query(max_length=MAX_TERMS, description="Observed HPO term (HP:0001250).")
]
Excluded = Annotated[list[Term], Query(max_length=MAX_TERMS, description="Excluded HPO term.")]
Genes = Annotated[list[Gene], Query(max_length=MAX_TERMS, description="Candidate gene symbol.")]


class CaseQuery(BaseModel):
    hpo: list[Term] = Field(max_length=MAX_TERMS, description="Observed HPO terms.")
    exclude: list[Term] = Field(default=[], max_length=MAX_TERMS)
    genes: list[Gene] = Field(default=[], max_length=MAX_TERMS)


class FederatedQuery(CaseQuery):
    limit: int = Field(default=5, ge=1, le=100)


class Explanation(BaseModel):
    matched_terms: list[tuple[str, str, str, float]] = Field(
        description="[query term, its best match, their common ancestor, share of the score]"
    )
    shared_genes: list[str]
    conflicts: int


class MatchOut(BaseModel):
    score: dict[str, float] = Field(description='{"patient": calibrated score in [0, 1]}')
    patient: dict[str, Any] = Field(description="A surrogate id and the contact; never the record.")
    node: str | None = Field(default=None, description="The node that holds it (federated).")
    source: str | None = Field(
        default=None,
        description="chain (an ailedger node registered on chain) or outside (an MME peer "
        "added by URL); federated searches only",
    )
    explanation: Explanation | None = None


class MatchesOut(BaseModel):
    results: list[MatchOut]
    asked: dict[str, str] = Field(default={}, description="Each node asked, and its answer.")


class PartOut(BaseModel):
    kind: str = Field(description="observed, excluded, onset, inheritance or unreported")
    term: str
    term_name: str
    log10_lr: float = Field(description="This item's part of the score (log10 likelihood ratio)")
    relation: str = Field(description="How the case's term meets the disease's annotation")
    disease_term: str | None
    frequency: float | None = Field(description="The annotation's frequency in the disease")
    conflict: bool = Field(description="Evidence against the disease from a contradiction")


class DiagnosisOut(BaseModel):
    disease: str
    name: str
    probability: float = Field(description="Post-test probability, normalised over candidates")
    score: float = Field(description="Post-test log10 odds: pretest plus the parts, exactly")
    pretest_log10_odds: float
    parts: list[PartOut] = Field(description="Largest first")


class DiagnosesOut(BaseModel):
    candidates: int = Field(description="How many diseases were ranked")
    notes: list[str] = Field(description="Terms skipped or not used, and why")
    diseases: list[DiagnosisOut]


class SavedOut(BaseModel):
    name: str
    observed: list[str]
    excluded: list[str]
    genes: list[str]


class SavedListOut(BaseModel):
    queries: list[SavedOut]


class NotificationOut(BaseModel):
    query: str
    surrogate: str
    score: float
    contact: dict[str, Any]
    time: int | None = None


class NotificationsOut(BaseModel):
    notifications: list[NotificationOut]


def _document(q: CaseQuery, contact: str) -> dict[str, Any]:
    return clinic.query_document(q.hpo, q.exclude, q.genes, contact)


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["health"])

    @api.get("/matches", response_model=MatchesOut)
    def matches(
        ctx: Context,
        node: Health,
        user: SignedIn,
        hpo: Observed,
        exclude: Excluded = [],  # noqa: B006 - FastAPI copies defaults per request
        gene: Genes = [],  # noqa: B006
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> MatchesOut:
        """Consented patients at this node most like the query, best first, each with
        why it matched."""
        document = clinic.query_document(hpo, exclude, gene, "local")
        cohort = ctx.matchmaker.cohort if ctx.matchmaker is not None else None
        rows = clinic.search_here(node, document, limit, cohort=cohort)
        return MatchesOut(results=[MatchOut(**r) for r in rows])

    @api.post(
        "/matches/federated", response_model=MatchesOut, openapi_extra=documented(FederatedQuery)
    )
    def federated(
        ctx: Context,
        user: Operator,
        body: Annotated[FederatedQuery, Depends(json_body(FederatedQuery, MAX_BODY))],
    ) -> MatchesOut:
        """Ask every node registered on chain (MME /match, signed by this home); the query
        is logged in this home's audit log (counts only)."""
        s = ctx.session
        document = _document(body, f"ailedger node {s.address}")
        answer = clinic.search_federation(s, document, body.limit, outgoing_log(ctx))
        return MatchesOut(results=[MatchOut(**r) for r in answer.results], asked=dict(answer.asked))

    @api.get("/diagnoses", response_model=DiagnosesOut)
    def diagnoses(
        user: SignedIn,
        hpo: Observed,
        exclude: Excluded = [],  # noqa: B006
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> DiagnosesOut:
        """OMIM, Orphanet and DECIPHER diseases ranked by likelihood ratios for the observed
        and excluded terms, each with the parts of its score."""
        return DiagnosesOut(**clinic.diagnose(hpo, exclude, limit))

    @api.get("/queries", response_model=SavedListOut)
    def queries(node: Health, user: SignedIn) -> SavedListOut:
        """Saved queries: each re-runs when new patients are imported here."""
        return SavedListOut(queries=[SavedOut(**q.__dict__) for q in clinic.saved_queries(node)])

    @api.put("/queries/{name}", status_code=204, openapi_extra=documented(CaseQuery))
    def save(
        node: Health,
        user: Operator,
        name: QueryName,
        body: Annotated[CaseQuery, Depends(json_body(CaseQuery, MAX_BODY))],
    ) -> Response:
        """Save (or replace) the query ``name``."""
        clinic.save_query(node, name, _document(body, "local"))
        return Response(status_code=204)

    @api.delete("/queries/{name}", status_code=204)
    def delete(node: Health, user: Operator, name: QueryName) -> Response:
        """Forget the saved query ``name``."""
        clinic.delete_query(node, name)
        return Response(status_code=204)

    @api.get("/notifications", response_model=NotificationsOut)
    def notifications(
        node: Health, user: SignedIn, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> NotificationsOut:
        """New patients that matched a saved query when they were imported, newest first."""
        return NotificationsOut(
            notifications=[NotificationOut(**n) for n in clinic.notifications(node, limit)]
        )

    return api


def outgoing_log(ctx: Context) -> clinic.OutgoingLog:
    """Where an outgoing query is logged: the home's log, held by the running node."""
    if ctx.node is not None:
        return ctx.node.append_own

    def append(entry: dict[str, Any]) -> None:
        from ailedger.sharing.owner import OwnerNode

        with OwnerNode(ctx.session) as node:
            node.append_own(entry)

    return append
