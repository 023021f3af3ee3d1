"""Profiles resolved against the ontology, and the evidence two of them share: the term
pairs with their most informative common ancestor, and observed-versus-excluded conflicts.
Internal to matching and diagnosis.

An id the ontology does not know (malformed, or not in this release and no alternate id of
it) is skipped with a logged warning and listed in ``Resolved.skipped``, so one stale id in a
long profile does not refuse the whole query or patient; a profile left with no observed term
is refused, with the reason for each id."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from ailedger.health.phenotype import Ontology, PhenotypeError, UnknownTermError, format_hpo
from ailedger.health.profile import Conflict, PhenotypeProfile, TermMatch


@dataclass(frozen=True)
class Resolved:
    observed: frozenset[int]
    excluded: frozenset[int]
    closure: frozenset[int]
    closure_ic: float
    genes: frozenset[str]
    skipped: tuple[str, ...] = ()


_log = logging.getLogger("ailedger.health")


def _known(onto: Ontology, ids: Iterable[str], reasons: dict[str, str]) -> frozenset[int]:
    found = set()
    for hpo_id in sorted(ids):
        try:
            found.add(onto.term_id(hpo_id))
        except UnknownTermError as exc:
            reasons[hpo_id] = str(exc)
    return frozenset(found)


def resolve(onto: Ontology, profile: PhenotypeProfile) -> Resolved:
    reasons: dict[str, str] = {}
    observed = _known(onto, profile.observed, reasons)
    if not observed and reasons:
        raise UnknownTermError("; ".join(reasons.values()))
    excluded = _known(onto, profile.excluded, reasons)
    if reasons:
        _log.warning("skipped HPO ids this release does not know: %s", ", ".join(reasons))
    if not observed:
        raise PhenotypeError("a profile needs at least one observed HPO term")
    both = observed & excluded
    if both:
        raise PhenotypeError(
            f"{', '.join(map(format_hpo, sorted(both)))} is both observed and excluded; "
            "keep one of the two"
        )
    closure = onto.closure(observed)
    closure_ic = sum(map(onto.ic, closure))
    return Resolved(observed, excluded, closure, closure_ic, profile.genes, tuple(reasons))


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
