"""What a clinician does at this node: find similar cases (here, or across the nodes
registered on chain) with the evidence for each, rank diagnoses, keep saved queries and
read their notifications. ``ailedger health match``/``diagnose`` and the web app's clinic
page call these same functions.

A query is a Matchmaker Exchange API v1.1 request document (``{"patient": {...}}``);
results name the clinician to contact and a keyed surrogate id, never the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError, NotFoundError, UnprocessableError
from ailedger.health.phenotype import PhenotypeError, load_ontology
from ailedger.health.profile import PhenotypeProfile

if TYPE_CHECKING:
    from ailedger.health.federation import FederatedAnswer
    from ailedger.health.matching import Match
    from ailedger.health.mme import MatchableCohort
    from ailedger.health.mme_peers import OutsidePeer
    from ailedger.health.node import HealthNode
    from ailedger.session import Session

QUERY_NAME = re.compile(r"[\w .,:()+-]{1,100}")
# What an outgoing query leaves in this node's audit log: counts, never phenotype data.
OutgoingLog = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class SavedQuery:
    name: str
    observed: list[str]
    excluded: list[str]
    genes: list[str]


def query_document(
    hpo: Iterable[str], exclude: Iterable[str], genes: Iterable[str], contact: str
) -> dict[str, Any]:
    """The MME request for observed ``hpo`` terms, ``exclude``\\ d ones and candidate
    ``genes``; ``contact`` is who the answering clinicians reply to."""
    hpo, exclude, genes = list(hpo), list(exclude), list(genes)
    if not hpo and not genes:
        raise ConfigError("give --hpo terms (and optionally --gene), or --query FILE")
    features = [{"id": t, "observed": "yes"} for t in hpo]
    features += [{"id": t, "observed": "no"} for t in exclude]
    patient: dict[str, Any] = {
        "id": "query",
        "contact": {"name": contact, "href": contact},
        "features": features,
    }
    if genes:
        patient["genomicFeatures"] = [{"gene": {"id": g}} for g in genes]
    return {"patient": patient}


def profile_of(document: dict[str, Any]) -> PhenotypeProfile:
    """The query's profile, every HPO term checked against the loaded release: a term
    that is malformed or unknown is refused with what to fix (before any search)."""
    profile = PhenotypeProfile.from_mme(document["patient"])
    onto = load_ontology()
    try:
        for term in sorted(profile.observed | profile.excluded):
            onto.term_id(term)
    except PhenotypeError as exc:
        raise UnprocessableError(str(exc)) from exc
    if not profile.observed and not profile.genes:
        raise UnprocessableError("a query needs an observed HPO term (HP:0001250) or a gene (FBN1)")
    both = profile.observed & profile.excluded
    if both:
        raise UnprocessableError(
            f"{', '.join(sorted(both))} is both observed and excluded; keep one of the two"
        )
    return profile


def explain(match: Match) -> dict[str, Any]:
    """Why a patient matched: the query terms and their best matches with their most
    informative common ancestor and its share of the score, shared genes, conflicts."""
    return {
        "matched_terms": [
            [t.query_term, t.match_term, t.common_ancestor_name, round(t.contribution, 3)]
            for t in match.matched_terms[:5]
        ],
        "shared_genes": sorted(match.shared_genes),
        "conflicts": len(match.conflicts),
    }


def search_here(
    node: HealthNode,
    document: dict[str, Any],
    limit: int,
    *,
    save: str | None = None,
    cohort: MatchableCohort | None = None,
) -> list[dict[str, Any]]:
    """The ``limit`` most similar consented patients at this node (of ``cohort``, default
    the node's), best first, each with its explanation; ``save`` keeps the query under
    that name, re-run when new patients are imported."""
    profile = profile_of(document)
    if save:
        save_query(node, save, document)
    cohort = cohort if cohort is not None else node.cohort
    try:
        matches = cohort.search(profile, limit, 0.0)
    except PhenotypeError as exc:
        raise UnprocessableError(str(exc)) from exc
    return [{**cohort.result_here(m), "explanation": explain(m)} for m in matches]


def search_federation(
    session: Session,
    document: dict[str, Any],
    limit: int,
    log: OutgoingLog,
    *,
    outside: Iterable[OutsidePeer] | None = None,
    chain: bool = True,
) -> FederatedAnswer:
    """Ask the nodes registered on chain (unless ``chain`` is False: outside peers only)
    and the ``outside`` MME peers (None: every one configured in the home), merge the
    answers best first, and record the outgoing query with ``log`` (peers asked and
    results, no phenotype). The query names this node's MME contact (`ailedger health
    contact`) for the answering clinicians."""
    from ailedger.health.federation import federated_match
    from ailedger.health.node import outside_peers

    profile_of(document)
    outside = list(outside_peers(session.home.layout.health).all() if outside is None else outside)
    asking = session if chain else None
    # Each result is already what federation reads of a peer's answer (score, patient,
    # node, source), checked against the official MME schema: never fields of its own.
    answer = federated_match(asking, _with_contact(session, document), limit, outside)
    log(
        {
            "kind": "mme-query",
            "direction": "outgoing",
            "peers": len(answer.asked),
            "outside_peers": len(outside),
            "results": len(answer.results),
            "outcome": "asked",
        }
    )
    return answer


def _with_contact(session: Session, document: dict[str, Any]) -> dict[str, Any]:
    """The query naming a contact peers can reach: the node's MME contact if one is set,
    else the query's own if its ``href`` is a URL or ``mailto:``, else this node's gateway
    URL on chain; with none of these the query is not sent."""
    from ailedger.health.mme_schema import valid_href
    from ailedger.health.node import contact_path, load_contact

    patient = dict(document["patient"])
    raw = patient.get("contact")
    given: dict[str, Any] = raw if isinstance(raw, dict) else {}
    contact = load_contact(contact_path(session.home.layout.health))
    if contact is not None:
        patient["contact"] = contact.as_mme()
    elif not valid_href(given.get("href")):
        url = session.node_registry.url_of(session.address)
        if not url or not valid_href(url):
            raise ConfigError(
                "this node has no MME contact for answering clinicians to reach: set one "
                "with `ailedger health contact NAME HREF` (an https URL or mailto:)"
            )
        patient["contact"] = {"name": str(given.get("name") or "ailedger node"), "href": url}
    return {**document, "patient": patient}


def diagnose(hpo: Iterable[str], exclude: Iterable[str], limit: int) -> dict[str, Any]:
    """Diseases ranked by likelihood ratios for the observed and excluded terms (as
    ``health diagnose`` does), each with the parts of its score and what was skipped."""
    from ailedger.health.likelihood import default_ranker
    from ailedger.health.phenotype import check_hpo_form

    hpo, exclude = list(hpo), list(exclude)
    try:
        for term in [*hpo, *exclude]:
            check_hpo_form(term)  # a typo is refused; a term of another release is skipped
        ranking = default_ranker().rank(PhenotypeProfile.of(hpo, exclude), limit=limit)
    except PhenotypeError as exc:
        raise UnprocessableError(str(exc)) from exc
    return {
        "candidates": ranking.candidates,
        "notes": list(ranking.notes),
        "diseases": [
            {
                "disease": d.disease_id,
                "name": d.name,
                "probability": d.probability,
                "score": d.score,
                "pretest_log10_odds": d.pretest_log10_odds,
                "parts": [
                    {
                        "kind": p.kind,
                        "term": p.term,
                        "term_name": p.term_name,
                        "log10_lr": p.log10_lr,
                        "relation": p.relation,
                        "disease_term": p.disease_term,
                        "frequency": p.frequency,
                        "conflict": p.conflict,
                    }
                    for p in sorted(d.parts, key=lambda p: -abs(p.log10_lr))
                ],
            }
            for d in ranking.diagnoses
        ],
    }


# -- saved queries and their notifications -------------------------------------------


def save_query(node: HealthNode, name: str, document: dict[str, Any]) -> None:
    if not QUERY_NAME.fullmatch(name):
        raise UnprocessableError(
            f"name a saved query in 1 to 100 letters, digits, spaces or .,:()+-, not {name[:40]!r}"
        )
    profile_of(document)
    node.save_query(name, document)


def saved_queries(node: HealthNode) -> list[SavedQuery]:
    """The saved queries, by name: what each asks for (the contact is this node's)."""
    found = []
    for name, document in sorted(node.saved_queries().items()):
        profile = PhenotypeProfile.from_mme(document.get("patient", {}))
        found.append(
            SavedQuery(
                name, sorted(profile.observed), sorted(profile.excluded), sorted(profile.genes)
            )
        )
    return found


def delete_query(node: HealthNode, name: str) -> None:
    if not node.delete_query(name):
        raise NotFoundError(f"no saved query named {name!r}; list them first")


def notifications(node: HealthNode, limit: int = 100) -> list[dict[str, Any]]:
    """The latest ``limit`` notifications of new patients matching a saved query, newest
    first (query, surrogate id, score, contact, time)."""
    path = node.notifications_path
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[-limit:]
    found = []
    for line in reversed(lines):
        try:
            note = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write: the others still count
        if (
            isinstance(note, dict)
            and isinstance(note.get("query"), str)
            and isinstance(note.get("surrogate"), str)
            and isinstance(note.get("score"), int | float)
            and isinstance(note.get("contact"), dict)
        ):
            found.append(note)
    return found
