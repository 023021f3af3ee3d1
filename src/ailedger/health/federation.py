"""Asking other nodes for matches: peers come from the on-chain NodeRegistry.

A query goes to every registered node's ``/mme/match`` with a node token (signed by this
node's account, addressed to that node), and the answers are merged best first. A node
that is down or refuses is reported, not fatal: matchmaking is best effort by nature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.health.mme import merge_results
from ailedger.health.mme_schema import MME_CONTENT_TYPE
from ailedger.peer import wire
from ailedger.peer.client import AnswerTooLargeError, bounded_request
from ailedger.peer.signing import node_token

if TYPE_CHECKING:
    from ailedger.session import Session

TIMEOUT_S = 15
# An MME answer holds at most a few dozen results; a peer that sends more is refused.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FederatedAnswer:
    results: list[dict[str, Any]]
    asked: dict[str, str]  # node address -> "ok: N results" or the failure


def registered_nodes(session: Session) -> dict[str, str]:
    """Every node with a gateway URL on chain (latest registration wins), but this one."""
    registry = session.node_registry
    events = registry._contract.events.NodeRegistered().get_logs(
        from_block=session.deployment.block
    )
    urls: dict[str, str] = {}
    for event in events:
        urls[str(event["args"]["node"])] = str(event["args"]["url"])
    me = session.address.lower()
    return {node: url for node, url in urls.items() if url and node.lower() != me}


def known_party(session: Session) -> Callable[[str], bool]:
    """Who may query us with a node token: an account that registered itself on chain
    (a gateway URL in NodeRegistry or an encryption key in KeyRegistry), so every query
    comes from an accountable, on-chain identity."""
    nodes, keys = session.node_registry, session.key_registry

    def known(account: str) -> bool:
        return nodes.url_of(account) is not None or keys.key_of(account) is not None

    return known


def federated_match(session: Session, query: dict[str, Any], limit: int = 10) -> FederatedAnswer:
    import httpx

    account = session.require_account()
    answers: dict[str, list[dict[str, Any]]] = {}
    asked: dict[str, str] = {}
    for node, url in registered_nodes(session).items():
        headers = {
            "Content-Type": MME_CONTENT_TYPE,
            "Accept": MME_CONTENT_TYPE,
            wire.AUTH_TOKEN_HEADER: node_token(account, node),
        }
        try:
            status, body = bounded_request(
                "POST",
                url + wire.MME_MATCH,
                MAX_ANSWER_BYTES,
                json=query,
                headers=headers,
                timeout=TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            asked[node] = f"unreachable ({type(exc).__name__})"
            continue
        except AnswerTooLargeError:
            asked[node] = f"refused: the answer is over {MAX_ANSWER_BYTES} bytes"
            continue
        if status != 200:
            asked[node] = f"refused: HTTP {status}"
            continue
        results = _results_of(body)
        if results is None:
            asked[node] = "refused: the answer is not an MME response"
            continue
        answers[node] = results
        asked[node] = f"ok: {len(results)} results"
    return FederatedAnswer(merge_results(answers, limit), asked)


def _results_of(body: bytes) -> list[dict[str, Any]] | None:
    """The ``results`` of a peer's MME response, or None if it sent something else."""
    from ailedger.untrusted_json import parse_untrusted

    try:
        document = parse_untrusted(body)
    except ValueError:
        return None
    results = document.get("results", []) if isinstance(document, dict) else None
    if not isinstance(results, list) or not all(_well_formed(r) for r in results):
        return None
    return results


def _well_formed(result: object) -> bool:
    """What this node reads of a result (MME API v1.1): a numeric patient score, and a
    patient with an id and a contact object."""
    if not isinstance(result, dict):
        return False
    score, patient = result.get("score"), result.get("patient")
    return (
        isinstance(score, dict)
        and isinstance(score.get("patient"), int | float)
        and not isinstance(score.get("patient"), bool)
        and isinstance(patient, dict)
        and isinstance(patient.get("id"), str)
        and isinstance(patient.get("contact"), dict)
    )
