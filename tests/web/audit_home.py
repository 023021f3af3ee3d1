"""A data owner's home whose gateway has served a researcher, for the audit pages' tests:
one dataset published, one read refused (before approval) and one served (the researcher
keeps its receipt), the chain's decisions logged, more entries appended, and the log's
checkpoint anchored on chain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ailedger.errors import AiledgerError
from ailedger.session import Session
from ailedger.sharing.owner import OwnerNode
from tests.web.homes import Chain, embedded_chain

AIL = 10**18
EXTRA = 30  # entries appended besides the real reads, so history has pages


@dataclass
class AuditedHomes:
    chain: Chain
    owner: Session
    researcher: Session
    node: OwnerNode
    url: str
    dataset: str
    served_index: int


def serve_a_researcher(
    owner: Session, researcher: Session, node: OwnerNode, root: Path
) -> tuple[str, int]:
    """Through ``owner``'s running gateway: publish a dataset, refuse ``researcher`` a read
    before approval, grant, serve one read (the researcher keeps its receipt), log the
    chain's decisions, add :data:`EXTRA` entries, sign and anchor. Returns the dataset id
    and the index of the served read."""
    from ailedger.chain.contracts.data_market import PURPOSES, Policy
    from ailedger.sharing.requester import fetch, request_access

    research = PURPOSES["rare-disease-research"]
    researcher.key_registry.register(researcher.home.encryption_public_key)
    researcher.token.faucet(100 * AIL)
    source = root / "cohort.csv"
    source.write_text("id,phenotype\n1,HP:0001250\n")
    policy = Policy(research, True, 5 * AIL, 30 * 86400, 5)
    published = node.publish(source, policy, {"title": "cohort", "tags": ["rare"]}, None)
    grant, _ = request_access(researcher, published.dataset_id, research)
    with suppress(AiledgerError):  # refused before approval: logged as refused
        fetch(researcher, published.dataset_id, grant, root / "early.csv")
    owner.data_market.grant(grant)
    got = fetch(researcher, published.dataset_id, grant, root / "got.csv")
    node.log_chain_decisions()
    node.audit.extend(
        {"kind": "mme-query", "direction": "incoming", "peer": "p", "n": i,
         "outcome": "200", "results": 0, "time": 1_699_999_200 + 3600 * i}
        for i in range(EXTRA)
    )  # fmt: skip
    node.audit.checkpoint_now()
    node.anchor()
    return "0x" + published.dataset_id.hex(), got.audit_index


@contextmanager
def audited_homes(root: Path, cache: Path) -> Iterator[AuditedHomes]:
    from ailedger.node.app import create_app
    from ailedger.node.service import BackgroundServer, announce

    with embedded_chain(root, cache) as chain:
        owner, researcher = chain.party("owner"), chain.party("researcher")
        with OwnerNode(owner) as node, BackgroundServer(create_app(node.gateway())) as url:
            announce(owner, url)
            dataset, index = serve_a_researcher(owner, researcher, node, root)
            yield AuditedHomes(chain, owner, researcher, node, url, dataset, index)
