"""A person's wearable data composed with sharing and privacy: their day-to-day patterns
published for a clinician they grant, or privately for researchers (DP answers only)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError, ConfigError

if TYPE_CHECKING:
    from ailedger.health.wearables.feedback import Finding
    from ailedger.health.wearables.vault import WearableVault
    from ailedger.session import Session
    from ailedger.sharing.owner import OwnerNode

AUDIENCES = {
    "clinical-care": ("clinical-care",),
    "research": ("rare-disease-research", "model-training", "public-health"),
}
DELTA = 1e-6  # the delta a research budget is measured at


@dataclass(frozen=True)
class SharedPatterns:
    dataset_id: bytes
    days: int
    audience: str
    private: bool
    tx_hash: str


def vault_of(session: Session, node: OwnerNode) -> WearableVault:
    """This home's wearable vault: its database, blob store and encryption key."""
    from ailedger.health.wearables.vault import WearableVault

    return WearableVault(session.database, node.blobs, session.encryption_key(), session.address)


def share_patterns(
    session: Session,
    node: OwnerNode,
    audience: str,
    *,
    price: int = 0,
    duration_s: int = 30 * 86400,
    title: str = "Daily wearable patterns",
    epsilon_cap: float | None = None,
) -> SharedPatterns:
    """Publish the person's daily patterns (never the readings) for ``audience``; every
    request needs their approval. For research the dataset is made private in the next
    transaction, before anyone can have been granted it: its rows are never served."""
    from ailedger.chain.contracts.data_market import Policy, purpose_mask
    from ailedger.health.wearables.patterns import daily_table
    from ailedger.privacy.owner import set_privacy_cap

    if audience not in AUDIENCES:
        raise ConfigError(f"share for clinical-care or research, not {audience!r}")
    if audience == "research" and epsilon_cap is None:
        raise ConfigError(
            "sharing for research needs --epsilon-cap (e.g. 1.0): the budget every answer "
            "is charged to; without one the rows could be read"
        )
    if audience == "clinical-care" and epsilon_cap is not None:
        raise ConfigError("--epsilon-cap is for research; a clinician you grant sees the patterns")
    policy = Policy(purpose_mask(list(AUDIENCES[audience])), True, price, duration_s, 0)
    table = daily_table(vault_of(session, node).all_observations())
    days = table.count("\n") - 1
    if days < 1:
        raise ConfigError("no wearable data to share yet: `ailedger wearables import` first")
    scratch = Path(tempfile.mkdtemp(prefix="ailedger-patterns-"))
    try:
        source = scratch / "daily-patterns.csv"
        source.write_text(table)
        metadata = {"title": title, "tags": ["wearables", audience], "description": ""}
        published = node.publish(source, policy, metadata, None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if epsilon_cap is not None:
        set_privacy_cap(session, published.dataset_id, epsilon_cap, DELTA)
    return SharedPatterns(
        published.dataset_id, days, audience, epsilon_cap is not None, published.tx_hash
    )


@dataclass(frozen=True)
class FeedbackRun:
    findings: list[Finding]
    receipts: list[dict[str, Any]]  # one per flag, for the person to keep
    anchored: tuple[int, str] | None  # (log size, tx) when the log was anchored now
    not_anchored: str | None  # why not, when anchoring failed (the flags are recorded)


def run_feedback(session: Session, node: OwnerNode, *, record: bool = True) -> FeedbackRun:
    """Every rule's finding over the person's data; with ``record``, each flag in the audit
    log, the log checkpointed and anchored, and a receipt per flag that proves on chain."""
    from ailedger.health.wearables.feedback import assess, feedback_receipt, record_flags

    findings = assess(vault_of(session, node).all_observations())
    if not record:
        return FeedbackRun(findings, [], None, None)
    recorded = record_flags(findings, node.audit)
    anchored, not_anchored = anchor_now(node) if recorded else (None, None)
    receipts = [feedback_receipt(r, node.audit, session.address) for r in recorded]
    return FeedbackRun(findings, receipts, anchored, not_anchored)


def anchor_now(node: OwnerNode) -> tuple[tuple[int, str] | None, str | None]:
    """Checkpoint the audit log and anchor it: ((size, tx), None), or (None, why not) when
    the chain refused (no gas, say); what was logged stays, and the running node anchors
    it later."""
    node.audit.checkpoint_now()
    try:
        return node.anchor(), None
    except AiledgerError as exc:
        return None, str(exc)
