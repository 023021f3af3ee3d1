"""Profiles resolved against the ontology, and the evidence two of them share: the term
pairs with their most informative common ancestor, and observed-versus-excluded conflicts.
Internal to matching and diagnosis."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from ailedger.health.phenotype import Ontology, PhenotypeError, format_hpo
from ailedger.health.profile import Conflict, PhenotypeProfile, TermMatch


@dataclass(frozen=True)
class Resolved:
    observed: frozenset[int]
    excluded: frozenset[int]
    closure: frozenset[int]
    closure_ic: float
    genes: frozenset[str]


def resolve(onto: Ontology, profile: PhenotypeProfile) -> Resolved:
    observed = frozenset(onto.term_id(t) for t in profile.observed)
    excluded = frozenset(onto.term_id(t) for t in profile.excluded)
    if not observed:
        raise PhenotypeError("a profile needs at least one observed HPO term")
    both = observed & excluded
    if both:
        raise PhenotypeError(
            f"{', '.join(map(format_hpo, sorted(both)))} is both observed and excluded; "
            "keep one of the two"
        )
    closure = onto.closure(observed)
    return Resolved(observed, excluded, closure, sum(map(onto.ic, closure)), profile.genes)


def conflicts(onto: Ontology, q: Resolved, p: Resolved) -> list[Conflict]:
    out: list[Conflict] = []
    sides: tuple[tuple[frozenset[int], Resolved, Literal["query", "match"]], ...] = (
        (p.excluded, q, "match"),
        (q.excluded, p, "query"),
    )
    for excluded, observed, side in sides:
        for e in sorted(excluded & observed.closure):
            hit = min(t for t in observed.observed if onto.is_ancestor(e, t))
            out.append(Conflict(format_hpo(hit), format_hpo(e), side, onto.ic(e)))
    return out


def term_matches(
    onto: Ontology, query: Iterable[int], other: Collection[int], denominator: float
) -> tuple[TermMatch, ...]:
    out = []
    for qt in query:
        best = max(((onto.mica(qt, t), t) for t in other), key=lambda x: (x[0][1], -x[1]))
        (ancestor, ic), match_term = best
        if ic > 0:
            share = ic / denominator if denominator > 0 else 0.0
            out.append(
                TermMatch(
                    format_hpo(qt),
                    format_hpo(match_term),
                    format_hpo(ancestor),
                    onto.name(ancestor),
                    ic,
                    share,
                )
            )
    return tuple(sorted(out, key=lambda m: (-m.ic, m.query_term)))
