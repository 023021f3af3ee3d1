"""Asking other MME nodes for matches: ailedger nodes registered on chain, and outside
MME peers configured in the home (:mod:`ailedger.health.mme_peers`).

A registered node is asked at its ``/mme/match`` with a node token (signed by this node's
account, addressed to that node) in MME v1.1; an outside peer at its own URL and path, with
the token it issued, in the version it speaks. All are asked at once and the answers merged
best first, each result marked with the node that holds it and its ``source`` (``chain`` or
``outside``).

Every answer is untrusted. It must come back within :data:`TIMEOUT_S` in all, in at most
:data:`MAX_ANSWER_BYTES`, as JSON (``application/json`` or an MME v1.x type), with status
200, and be an MME response by the official schema; each result is checked on its own and
only the parts this node reads are kept (:func:`_read_parts`): a result invalid only in
parts it leaves behind is kept ("repaired"), one invalid in what it reads is dropped, each
with the reason. A node that fails any of this is reported in
``asked`` with what went wrong, and the others' results still count: matchmaking is best
effort by nature. No token is ever part of what is reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ailedger.errors import ConfigError
from ailedger.health.mme_peers import OutsidePeer
from ailedger.health.mme_schema import (
    MME_CONTENT_TYPE,
    mme_version,
    result_errors,
    validation_errors,
)
from ailedger.peer import wire
from ailedger.peer.signing import node_token

if TYPE_CHECKING:
    from ailedger.session import Session

TIMEOUT_S = 15  # the whole answer of one peer, connection included
# An MME answer holds at most a few dozen results; a peer that sends more is refused.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_RESULTS = 100
MAX_PEERS_AT_ONCE = 8
Source = Literal["chain", "outside"]


@dataclass(frozen=True)
class FederatedAnswer:
    results: list[dict[str, Any]]
    asked: dict[str, str]  # node address or peer name -> "ok: N results" or the failure
    sources: dict[str, str] = field(default_factory=dict)  # the same keys -> chain/outside


@dataclass(frozen=True)
class PeerTarget:
    """Where and how to send one peer the query; ``token`` never appears in its ``repr``."""

    name: str
    source: Source
    url: str
    media_type: str
    token: str = field(repr=False)


class _Refused(Exception):
    """What a peer's answer did wrong, as ``asked`` reports it."""


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


def chain_targets(session: Session) -> list[PeerTarget]:
    """The ailedger nodes registered on chain, each with a node token addressed to it."""
    account = session.require_account()
    return [
        PeerTarget(node, "chain", url + wire.MME_MATCH, MME_CONTENT_TYPE, node_token(account, node))
        for node, url in registered_nodes(session).items()
    ]


def outside_targets(peers: Iterable[OutsidePeer]) -> list[PeerTarget]:
    return [PeerTarget(p.name, "outside", p.match_url, p.media_type, p.token) for p in peers]


def federated_match(
    session: Session | None,
    query: dict[str, Any],
    limit: int = 10,
    outside: Iterable[OutsidePeer] = (),
) -> FederatedAnswer:
    """Ask the nodes registered on chain (none without a ``session``) and the ``outside``
    peers; the merged results, best first, and how each peer answered."""
    targets = (chain_targets(session) if session is not None else []) + outside_targets(outside)
    return ask_peers(targets, query, limit)


def ask_peers(targets: list[PeerTarget], query: dict[str, Any], limit: int) -> FederatedAnswer:
    """Send ``query`` (a valid MME request: it names a reachable contact) to every target
    at once; see the module's doc for what an answer must be."""
    errors = validation_errors(query)
    if errors:
        raise ConfigError(f"the query is not an MME request peers would take: {errors[0]}")
    if not targets:
        return FederatedAnswer([], {})
    with ThreadPoolExecutor(min(MAX_PEERS_AT_ONCE, len(targets))) as pool:
        answers = list(pool.map(lambda t: _ask(t, query), targets))
    merged: list[dict[str, Any]] = []
    asked: dict[str, str] = {}
    for target, (results, status) in zip(targets, answers, strict=True):
        asked[target.name] = status
        merged += [{**r, "node": target.name, "source": target.source} for r in results]
    merged.sort(key=lambda r: -float(r["score"]["patient"]))
    return FederatedAnswer(merged[:limit], asked, {t.name: t.source for t in targets})


def _ask(target: PeerTarget, query: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(valid results, status line) of one peer; never raises for what the peer does."""
    import httpx

    try:
        results, notes = _results_of(_post(target, query))
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        # A URL on chain is anyone's to write; a header httpx cannot encode is a ValueError.
        # Only the type is told: the message could quote the token.
        return [], f"unreachable ({type(exc).__name__})"
    except _Refused as exc:
        return [], f"refused: {exc}"
    status = f"ok: {len(results)} results"
    if notes:
        status += f" ({len(notes)} not valid by the MME schema: {'; '.join(notes[:3])})"
    return results, status


def _post(target: PeerTarget, query: dict[str, Any]) -> bytes:
    """The body of the peer's 200 answer in JSON, read within the time and size
    limits; anything else raises :class:`_Refused`."""
    from ailedger.peer.client import shared_client

    headers = {
        "Content-Type": target.media_type,
        "Accept": target.media_type,
        wire.AUTH_TOKEN_HEADER: target.token,
    }
    deadline = time.monotonic() + TIMEOUT_S
    with shared_client().stream(
        "POST", target.url, json=query, headers=headers, timeout=TIMEOUT_S
    ) as response:
        if response.status_code != 200:
            raise _Refused(f"HTTP {response.status_code}")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        version = mme_version(kind)
        if kind != "application/json" and (version is None or version[0] != 1):
            raise _Refused(f"answered {kind[:60] or 'no content type'!r}, not MME JSON")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise _Refused(f"the answer is over {MAX_ANSWER_BYTES} bytes")
            if time.monotonic() > deadline:
                raise _Refused(f"the answer took over {TIMEOUT_S} s")
    return bytes(body)


def _results_of(body: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The results of an MME response as this node reads them, and a note for each result
    that was repaired or dropped; an answer that is not an MME response raises
    :class:`_Refused`."""
    from ailedger.untrusted_json import parse_untrusted

    try:
        document = parse_untrusted(body)
    except ValueError:
        raise _Refused("the answer is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("results", []), list):
        raise _Refused("the answer is not an MME response (no results list)")
    found = document.get("results", [])
    if len(found) > MAX_RESULTS:
        raise _Refused(f"{len(found)} results; at most {MAX_RESULTS} are read")
    results, notes = [], []
    for i, result in enumerate(found):
        kept = _read_parts(result)
        errors = result_errors(kept) if kept is not None else []
        if kept is None or errors:
            reason = (errors or result_errors(result) or ["not a result"])[0]
            notes.append(f"results/{i} dropped: {reason[:200]}")
            continue
        score = _score(kept["score"]["patient"])
        if score is None:  # the schema sets no range: NaN, 1e400 or 5 would sort first
            notes.append(f"results/{i} dropped: score/patient is not a number from 0 to 1")
            continue
        repaired = result_errors(result) if kept != result else []
        if repaired:
            notes.append(f"results/{i} repaired: {repaired[0][:200]}")
        results.append({**kept, "score": {**kept["score"], "patient": score}})
    return results, notes


def _score(value: object) -> float | None:
    """A peer's score as a float in [0, 1], or None (an int of 400 digits overflows float)."""
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return score if math.isfinite(score) and 0.0 <= score <= 1.0 else None


def _read_parts(result: Any) -> dict[str, Any] | None:
    """What this node reads and shows of a peer's result: score, patient id and label,
    contact, features (id, label, observed), genes (id, label), disorders (id, label).
    Everything else is left behind, so a field this node does not use (a variant without
    a start, as two of the MME benchmark patients have) neither breaks a match nor reaches
    a clinician's screen. None if the result is not even shaped like one."""
    if not isinstance(result, dict):
        return None
    score, patient = result.get("score"), result.get("patient")
    if not isinstance(score, dict) or not isinstance(patient, dict):
        return None
    kept: dict[str, Any] = {"id": patient.get("id"), "contact": _pick(patient.get("contact"))}
    if "label" in patient:
        kept["label"] = patient["label"]
    for name, parts in (("features", ("id", "label", "observed")), ("disorders", ("id", "label"))):
        entries = patient.get(name)
        if isinstance(entries, list):
            kept[name] = [_pick(e, parts) for e in entries]
    genomic = patient.get("genomicFeatures")
    if isinstance(genomic, list):
        kept["genomicFeatures"] = [
            {"gene": _pick(g.get("gene"), ("id", "label"))} if isinstance(g, dict) else g
            for g in genomic
        ]
    return {"score": {"patient": score.get("patient")}, "patient": kept}


def _pick(value: Any, parts: tuple[str, ...] = ("name", "institution", "href")) -> Any:
    """``value``'s ``parts`` if it is an object (others dropped), else ``value`` itself
    (so the schema refuses it)."""
    if not isinstance(value, dict):
        return value
    return {k: value[k] for k in parts if k in value}
