"""A patient's phenotype profile and the evidence a comparison reports.

Profiles read Matchmaker Exchange API v1.1 patients (``features`` with ``observed`` "yes" or
"no", ``genomicFeatures[].gene.id``): :meth:`PhenotypeProfile.from_mme`. Both patient matching
(:mod:`ailedger.health.matching`) and disease ranking (:mod:`ailedger.health.diagnosis`)
explain their scores with :class:`TermMatch` and :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class PhenotypeProfile:
    """What is known of one patient: observed and excluded HPO terms, candidate genes."""

    observed: frozenset[str]
    excluded: frozenset[str] = frozenset()
    genes: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, observed: Iterable[str], excluded: Iterable[str] = (), genes: Iterable[str] = ()
    ) -> PhenotypeProfile:
        """Build a profile from any iterables of ``HP:`` ids and gene symbols."""
        return cls(frozenset(observed), frozenset(excluded), frozenset(genes))

    @classmethod
    def from_mme(cls, patient: Mapping[str, Any], *, with_genes: bool = True) -> PhenotypeProfile:
        """Read an MME API v1.1 ``patient`` object (``observed`` defaults to "yes")."""
        features = patient.get("features") or []
        observed = [f["id"] for f in features if f.get("observed", "yes") != "no"]
        excluded = [f["id"] for f in features if f.get("observed", "yes") == "no"]
        genes = (
            [g["gene"]["id"] for g in patient.get("genomicFeatures") or [] if "gene" in g]
            if with_genes
            else []
        )
        return cls.of(observed, excluded, genes)


@dataclass(frozen=True)
class TermMatch:
    """A query term, its best-matching term on the other side and their most informative
    common ancestor (MICA). For patients, ``contribution`` is the term's share of the simGIC
    score: the IC of the ancestors both patients share, each split evenly between the query
    terms under it, over the pair's union IC (they add up to the phenotype score before
    conflicts); for diseases, the MICA's IC over the number of query terms."""

    query_term: str
    match_term: str
    common_ancestor: str
    common_ancestor_name: str
    ic: float
    contribution: float


@dataclass(frozen=True)
class Conflict:
    """An observed term on one side under a term the other side excludes."""

    observed_term: str
    excluded_term: str
    excluded_by: Literal["query", "match"]
    ic: float
